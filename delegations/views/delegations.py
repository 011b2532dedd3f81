"""Active delegations: the owners' list, an owner revoking one after a preview of the signed
tags it would un-sign, and a member giving up their own."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from .. import selectors, services
from ..exceptions import IllegalTransition, InvalidInput
from ..forms import RevokeForm
from ..models import Delegation
from .signed_in import SignedInRequest


@login_required
def delegation_list(request: SignedInRequest) -> HttpResponse:
    owned = selectors.repositories_owned_by(request.user)
    auditor = selectors.is_auditor(request.user)
    if not auditor and not owned.exists():
        raise PermissionDenied("Only repository owners see the delegations of their repositories.")
    context = {
        "delegations": selectors.active_delegations_visible_to(request.user, everything=auditor),
        # Revoking stays with the owners: an auditor reads the other repositories' rows only.
        "owned_ids": set(owned.values_list("pk", flat=True)),
        "auditor": auditor,
    }
    return render(request, "delegations/delegation_list.html", context)


@sensitive_post_parameters("comment")
@login_required
def delegation_revoke(request: SignedInRequest, delegation_id: int) -> HttpResponse:
    delegation = selectors.delegation_owned_by(request.user, delegation_id)
    form = RevokeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.delegation_revoke(
                delegation_id=delegation.pk,
                acting_user=request.user,
                comment=form.cleaned_data["comment"],
            )
        except IllegalTransition as error:
            messages.error(request, error.message)
            return redirect("delegations:delegation_list")
        except InvalidInput as error:
            form.add_error("comment", error.message)
        else:
            messages.success(
                request,
                f"Revoking {delegation.member.get_username()}'s delegation on "
                f"{delegation.repository.path} (team {delegation.team}): the portal is taking key "
                f"{delegation.short_key_id} out of {' and '.join(delegation.roles)}.",
            )
            return redirect("delegations:delegation_list")
    can_revoke = delegation.is_active and not delegation.is_ending
    context = {
        "delegation": delegation,
        "form": form,
        "can_revoke": can_revoke,
        "preview": selectors.revocation_preview(delegation) if can_revoke else None,
        "shared_with": selectors.other_delegations_of_key(delegation) if can_revoke else [],
    }
    return render(
        request, "delegations/revoke_confirm.html", context, status=400 if form.errors else 200
    )


@sensitive_post_parameters("comment")
@login_required
@require_POST
def delegation_give_up(request: SignedInRequest, delegation_id: int) -> HttpResponse:
    try:
        delegation = services.delegation_give_up(
            delegation_id=delegation_id,
            acting_user=request.user,
            comment=request.POST.get("comment", ""),
        )
    except (IllegalTransition, InvalidInput) as error:
        # The service let the member through, so this is their own delegation.
        messages.error(request, error.message)
        request_id = Delegation.objects.values_list("request_id", flat=True).get(pk=delegation_id)
        return redirect("delegations:request_detail", request_id)
    messages.success(
        request,
        f"You gave up signing {delegation.repository.path} as team {delegation.team}: the portal "
        f"is taking your key out of {' and '.join(delegation.roles)}, and the owners are told.",
    )
    return redirect("delegations:request_detail", delegation.request_id)

"""Ending active delegations: an owner revokes one after a preview of the signed tags it would
un-sign, and a member gives up their own. Each view checks its input and calls one service."""

from __future__ import annotations

from dataclasses import dataclass, field

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from . import clock, selectors, services, trust
from .exceptions import IllegalTransition, InvalidInput, NotAllowed, TrustSetupError
from .instructions import witness_command
from .models import Delegation
from .notary import ChangeImpact, NotaryError
from .services.delegation_endings import MAX_COMMENT

NOT_AN_OWNER = "Only the owners of a delegation's repository revoke it."


class RevokeForm(forms.Form):
    comment = forms.CharField(
        label="Comment",
        max_length=MAX_COMMENT,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why you revoke it: the member gets this in the email telling them.",
        error_messages={"required": "Say why you revoke this delegation; the member reads it."},
    )


@dataclass(frozen=True)
class RevocationPreview:
    """What revoking would do, read from the live Notary server; `error` when it could not be
    read (revoking still works: the worker retries)."""

    impact: ChangeImpact | None = None
    error: str = ""
    # The roles whose file would stop verifying, in the delegation's order, and the command the
    # remaining signers run to vouch for those files again.
    losing_roles: list[str] = field(default_factory=list)
    witness_command: str = ""
    # The delegation's roles that keep the key because another role still delegates it, and
    # those other roles.
    kept_in: list[str] = field(default_factory=list)
    also_in: list[str] = field(default_factory=list)
    # Who can still sign each role afterwards: {role: [member name or short key ID]}.
    remaining_signers: dict[str, list[str]] = field(default_factory=dict)


@sensitive_post_parameters("comment")
@login_required
def delegation_revoke(request: HttpRequest, delegation_id: int) -> HttpResponse:
    delegation = _owned_delegation(request.user, delegation_id)
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
                f"{delegation.canonical_key_id[:12]} out of {' and '.join(delegation.roles)}.",
            )
            return redirect("delegations:delegation_list")
    can_revoke = delegation.is_active and not delegation.ending
    context = {
        "delegation": delegation,
        "form": form,
        "can_revoke": can_revoke,
        "preview": _preview(delegation) if can_revoke else None,
        "shared_with": _other_delegations_of_key(delegation) if can_revoke else [],
    }
    return render(
        request, "delegations/revoke_confirm.html", context, status=400 if form.errors else 200
    )


@sensitive_post_parameters("comment")
@login_required
@require_POST
def delegation_give_up(request: HttpRequest, delegation_id: int) -> HttpResponse:
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


def _owned_delegation(user: AbstractBaseUser, delegation_id: int) -> Delegation:
    """A delegation of a repository `user` owns; 403 alike for others' and for none, so that
    delegation numbers reveal nothing."""
    delegation = (
        Delegation.objects.select_related("repository", "member", "request", "ending_requested_by")
        .filter(pk=delegation_id, repository__in=selectors.repositories_owned_by(user))
        .first()
    )
    if delegation is None:
        raise NotAllowed(NOT_AN_OWNER)
    return delegation


def _other_delegations_of_key(delegation: Delegation) -> list[Delegation]:
    return list(
        Delegation.objects.filter(
            repository=delegation.repository,
            canonical_key_id=delegation.canonical_key_id,
            ended_at__isnull=True,
        )
        .exclude(pk=delegation.pk)
        .select_related("member")
    )


def _preview(delegation: Delegation) -> RevocationPreview:
    certificate_pem = delegation.request.certificate_pem
    try:
        impact = trust.impact(
            delegation.repository,
            trust.removing(certificate_pem, delegation.roles),
            now=clock.now(),
        )
        keeping = impact.roles_keeping(trust.certificate_key(certificate_pem))
    except (NotaryError, TrustSetupError) as error:
        return RevocationPreview(error=error.message)
    losing = {role.name for role in impact.losing}
    losing_roles = [name for name in delegation.roles if name in losing]
    return RevocationPreview(
        impact=impact,
        losing_roles=losing_roles,
        witness_command=witness_command(delegation.repository, losing_roles)
        if losing_roles
        else "",
        kept_in=[name for name in delegation.roles if name in keeping],
        also_in=[name for name in keeping if name not in delegation.roles],
        remaining_signers=_remaining_signers(delegation, impact),
    )


def _remaining_signers(delegation: Delegation, impact: ChangeImpact) -> dict[str, list[str]]:
    after = {change.name: change.after for change in impact.plan.role_changes}
    members = dict(
        Delegation.objects.filter(repository=delegation.repository, ended_at__isnull=True)
        .exclude(pk=delegation.pk)
        .values_list("canonical_key_id", "member__username")
    )
    return {
        name: [members.get(key.canonical_id, key.canonical_id[:12]) for key in role.keys]
        for name, role in after.items()
        if role is not None
    }

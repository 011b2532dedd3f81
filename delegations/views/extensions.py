"""Extensions: a member asks for more time on their delegation, its owners decide."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from .. import selectors, services
from ..exceptions import NotAnOwner, PortalError
from ..forms import DecisionForm, ExtensionForm
from .approvals import back_to
from .signed_in import SignedInRequest


@login_required
def delegation_extend(request: SignedInRequest, delegation_id: int) -> HttpResponse:
    delegation = selectors.delegation_of_member(request.user, delegation_id)
    form = ExtensionForm(request.POST or None, delegation=delegation)
    if request.method == "POST" and form.is_valid():
        try:
            extension = services.extension_request(
                delegation_id=delegation.pk,
                acting_user=request.user,
                until=form.cleaned_data["until"],
                reason=form.cleaned_data["reason"],
            )
        except PortalError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(
                request,
                f"Extension to {extension.until:%Y-%m-%d} asked for. The owners of "
                f"{delegation.repository.path} are told.",
            )
            return redirect("delegations:request_detail", delegation.request_id)
    context = {
        "form": form,
        "delegation": delegation,
        "pending": selectors.open_extension_of(delegation),
    }
    return render(
        request, "delegations/extension_form.html", context, status=400 if form.errors else 200
    )


@login_required
@require_POST
def extension_approve(request: SignedInRequest, extension_id: int) -> HttpResponse:
    return _decide(request, extension_id, approve=True)


@login_required
@require_POST
def extension_reject(request: SignedInRequest, extension_id: int) -> HttpResponse:
    return _decide(request, extension_id, approve=False)


def _decide(request: SignedInRequest, extension_id: int, *, approve: bool) -> HttpResponse:
    try:
        selectors.extension_for_viewer(request.user, extension_id)
    except Http404:
        raise NotAnOwner() from None
    back = back_to(request, reverse("delegations:approval_queue"))
    form = DecisionForm(request.POST)
    if not form.is_valid():
        for error in form.errors.get("comment", []):
            messages.error(request, f"Comment: {error}")
        return redirect(back)
    decide = services.extension_approve if approve else services.extension_reject
    try:
        extension = decide(
            extension_id=extension_id,
            acting_user=request.user,
            comment=form.cleaned_data["comment"],
        )
    except PortalError as error:
        messages.error(request, error.message)
    else:
        if extension.status == "pending":
            messages.success(
                request,
                f"Your approval of extension #{extension.pk} is counted; more owners must approve.",
            )
        else:
            messages.success(
                request, f"Extension #{extension.pk} {extension.get_status_display().lower()}."
            )
    return redirect(back)

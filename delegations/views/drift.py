"""The drift report: what the Notary server holds that the portal does not (or the other way
round), for the owners of each repository, with what they can do about each finding."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .. import selectors, services
from ..exceptions import PortalError
from ..models import DriftAction
from .signed_in import SignedInRequest


@login_required
def drift_list(request: SignedInRequest) -> HttpResponse:
    if not selectors.repositories_owned_by(request.user).exists():
        raise PermissionDenied("Only repository owners see the drift of their repositories.")
    findings = selectors.drift_open_for(request.user)
    return render(request, "delegations/drift_list.html", {"findings": findings})


@login_required
@require_POST
def drift_adopt(request: SignedInRequest, finding_id: int) -> HttpResponse:
    member = request.POST.get("member", "")
    team = request.POST.get("team", "")
    try:
        services.drift_adopt(
            finding_id=finding_id,
            acting_user=request.user,
            member_username=member,
            team=team.strip(),
            comment=request.POST.get("comment", ""),
        )
    except PortalError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            f"Adopted as {member}'s delegation in team {team}: the portal publishes it in both "
            "roles, and it is listed under Delegations.",
        )
    return redirect("delegations:drift_list")


@login_required
@require_POST
def drift_remove(request: SignedInRequest, finding_id: int) -> HttpResponse:
    return _act(request, finding_id, DriftAction.REMOVE, "Removing the key from every role.")


@login_required
@require_POST
def drift_republish(request: SignedInRequest, finding_id: int) -> HttpResponse:
    return _act(request, finding_id, DriftAction.REPUBLISH, "Publishing the delegation again.")


def _act(request: SignedInRequest, finding_id: int, action: DriftAction, done: str) -> HttpResponse:
    try:
        services.drift_action_request(
            finding_id=finding_id, acting_user=request.user, action=action
        )
    except PortalError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{done} The finding closes once the worker has published.")
    return redirect("delegations:drift_list")

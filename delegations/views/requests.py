"""A member's pages: asking for a delegation (and renewing one), their requests, a request's
page (which owners decide from), and withdrawing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from .. import clock, selectors, services
from ..exceptions import IllegalTransition, PortalError
from ..forms import DelegationRequestForm
from ..instructions import signing_steps
from ..intake.certificates import EXPIRY_WARNING
from ..intake.identity import expected_subject
from ..intake.possession import (
    SIGNATURE_FIELD,
    challenge_issue,
    challenge_still_valid,
    openssl_command,
)
from ..models import Delegation, RequestStatus
from .paging import page_of
from .signed_in import SignedInRequest

if TYPE_CHECKING:
    from django.contrib.auth.models import User


# While the worker is busy with a request, its page refreshes itself to show the outcome.
IN_PROGRESS = {RequestStatus.APPROVED, RequestStatus.APPLYING}


@login_required
def home(request: SignedInRequest) -> HttpResponse:
    return redirect("delegations:request_list")


# Should a page fail, its error report leaves out what a member may have pasted by mistake.
@sensitive_post_parameters("possession_signature", "reason")
@login_required
def request_create(request: SignedInRequest) -> HttpResponse:
    return _request_form_page(request, renewing=None)


@sensitive_post_parameters("possession_signature", "reason")
@login_required
def delegation_renew(request: SignedInRequest, delegation_id: int) -> HttpResponse:
    renewing = selectors.delegation_of_member(request.user, delegation_id)
    return _request_form_page(request, renewing=renewing)


def _request_form_page(request: SignedInRequest, *, renewing: Delegation | None) -> HttpResponse:
    form = DelegationRequestForm(
        request.POST or None, request.FILES or None, user=request.user, renewing=renewing
    )
    error_link = None
    if request.method == "POST" and form.is_valid():
        try:
            created = services.request_submit(
                requester=request.user,
                repository=form.cleaned_data["repository"],
                team=form.cleaned_data["team"],
                certificate=form.checked_certificate,
                reason=form.cleaned_data["reason"],
                proof=form.proof,
                renews=renewing,
                until=form.cleaned_data["until"],
            )
        except PortalError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
            error_link = {"url": error.link[0], "text": error.link[1]} if error.link else None
        else:
            messages.success(
                request,
                f"Request #{created.pk} sent. The owners of {created.repository.path} are told.",
            )
            now = clock.now()
            if form.checked_certificate.expires_soon(now):
                messages.warning(request, form.checked_certificate.expiry_warning(now))
            return redirect("delegations:request_detail", created.pk)
    challenge = _challenge_for(form, request.user)
    context = {
        "form": form,
        "renewing": renewing,
        "error_link": error_link,
        "openssl_command": openssl_command(challenge),
        "proof_required": settings.PORTAL_REQUIRE_PROOF_OF_POSSESSION,
        "subject_attribute": settings.PORTAL_CERTIFICATE_SUBJECT_ATTRIBUTE,
        "subject_expected": expected_subject(request.user),
        "expiry_warning_days": EXPIRY_WARNING.days,
    }
    status = 400 if form.errors else 200
    return render(request, "delegations/request_form.html", context, status=status)


def _challenge_for(form: DelegationRequestForm, user: User) -> str:
    """The challenge the page shows: the posted one while it still holds, so a signature the
    requester already made survives an unrelated error; a new one otherwise."""
    posted = form.data.get("challenge", "") if form.is_bound else ""
    signature_refused = SIGNATURE_FIELD in form.errors
    if posted and not signature_refused and challenge_still_valid(posted, user, now=clock.now()):
        challenge = posted
    else:
        challenge = challenge_issue(user, now=clock.now())
    if form.is_bound:
        form.show_challenge(challenge, keep_signature=challenge == posted)
    else:
        form.initial["challenge"] = challenge
    return challenge


@login_required
def request_list(request: SignedInRequest) -> HttpResponse:
    page = page_of(request, selectors.requests_of(request.user))
    return render(request, "delegations/request_list.html", {"page": page})


@login_required
def request_detail(request: SignedInRequest, request_id: int) -> HttpResponse:
    delegation_request = selectors.request_for_viewer(request.user, request_id)
    is_owner = selectors.is_owner(request.user, delegation_request.repository)
    pending = delegation_request.status == RequestStatus.PENDING
    cannot_decide = selectors.why_cannot_decide(request.user, delegation_request, owns=is_owner)
    delegation = getattr(delegation_request, "delegation", None)
    context = {
        "delegation_request": delegation_request,
        "is_requester": delegation_request.requester_id == request.user.pk,
        "is_owner": is_owner,
        "can_decide": cannot_decide is None,
        # Owners are told why they cannot decide; other viewers have nothing to decide.
        "cannot_decide": cannot_decide if is_owner and pending else None,
        "approvals": len(selectors.approvals_of(delegation_request)),
        "requester_teams": selectors.teams_of(delegation_request.requester) if is_owner else [],
        "dry_run": selectors.request_dry_run(delegation_request) if is_owner and pending else None,
        "renewable": selectors.renewable_delegation(request.user, delegation_request),
        "decisions": delegation_request.decisions.select_related("owner"),
        "extensions": (
            delegation.extensions.prefetch_related("decisions__owner")
            if delegation is not None
            else []
        ),
        "history": delegation_request.audit_events.order_by("id"),
        "steps": signing_steps(delegation_request)
        if delegation_request.status == RequestStatus.DELEGATED
        else [],
        "refresh": delegation_request.status in IN_PROGRESS
        or bool(delegation and delegation.is_ending),
        "expires_soon": delegation_request.certificate_expires_soon(clock.now()),
        "team_access": selectors.team_access_of(
            repository_id=delegation_request.repository_id, team=delegation_request.team
        )
        if delegation_request.status == RequestStatus.DELEGATED
        else None,
    }
    return render(request, "delegations/request_detail.html", context)


@login_required
@require_POST
def request_withdraw(request: SignedInRequest, request_id: int) -> HttpResponse:
    selectors.request_for_viewer(request.user, request_id)
    try:
        services.request_withdraw(request_id=request_id, acting_user=request.user)
    except IllegalTransition as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Request #{request_id} withdrawn.")
    return redirect("delegations:request_detail", request_id)

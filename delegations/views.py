"""Pages. Each view checks its input and calls one selector or service."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from . import clock, selectors, services
from .certificates import EXPIRY_WARNING
from .exceptions import IllegalTransition, InvalidInput, NotAnOwner, PortalError
from .forms import DecisionForm, DelegationRequestForm
from .identity import expected_subject
from .instructions import signing_steps
from .models import DelegationRequest, RequestStatus
from .possession import SIGNATURE_FIELD, challenge_issue, challenge_still_valid, openssl_command

PAGE_SIZE = 50
# While the worker is busy with a request, its page refreshes itself to show the outcome.
IN_PROGRESS = {RequestStatus.APPROVED, RequestStatus.APPLYING}


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("delegations:request_list")


# Should a page fail, its error report leaves out what a member may have pasted by mistake.
@sensitive_post_parameters("possession_signature", "reason")
@login_required
def request_create(request: HttpRequest) -> HttpResponse:
    form = DelegationRequestForm(request.POST or None, request.FILES or None, user=request.user)
    error_link = None
    if request.method == "POST" and form.is_valid():
        try:
            created = services.request_submit(
                requester=request.user,
                repository=form.cleaned_data["repository"],
                team=form.cleaned_data["team"],
                certificate=form.certificate_info,
                reason=form.cleaned_data["reason"],
                proof=form.proof,
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
            if form.certificate_info.expires_soon(now):
                messages.warning(request, form.certificate_info.expiry_warning(now))
            return redirect("delegations:request_detail", created.pk)
    challenge = _challenge_for(form, request.user)
    context = {
        "form": form,
        "error_link": error_link,
        "openssl_command": openssl_command(challenge),
        "proof_required": settings.PORTAL_REQUIRE_PROOF_OF_POSSESSION,
        "subject_attribute": settings.PORTAL_CERTIFICATE_SUBJECT_ATTRIBUTE,
        "subject_expected": expected_subject(request.user),
        "expiry_warning_days": EXPIRY_WARNING.days,
    }
    status = 400 if form.errors else 200
    return render(request, "delegations/request_form.html", context, status=status)


def _challenge_for(form: DelegationRequestForm, user: AbstractBaseUser) -> str:
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
def request_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.requests_of(request.user), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "delegations/request_list.html", {"page": page})


@login_required
def request_detail(request: HttpRequest, request_id: int) -> HttpResponse:
    delegation_request = selectors.request_for_viewer(request.user, request_id)
    is_owner = selectors.is_owner(request.user, delegation_request.repository)
    context = {
        "delegation_request": delegation_request,
        "is_requester": delegation_request.requester_id == request.user.pk,
        "is_owner": is_owner,
        "can_decide": selectors.may_decide(request.user, delegation_request)
        and delegation_request.status == RequestStatus.PENDING,
        "decisions": delegation_request.decisions.select_related("owner"),
        "history": delegation_request.audit_events.order_by("id"),
        "steps": signing_steps(delegation_request)
        if delegation_request.status == RequestStatus.DELEGATED
        else [],
        "refresh": delegation_request.status in IN_PROGRESS,
        "expires_soon": delegation_request.certificate_expires_soon(clock.now()),
    }
    return render(request, "delegations/request_detail.html", context)


@login_required
def approval_queue(request: HttpRequest) -> HttpResponse:
    if not selectors.repositories_owned_by(request.user).exists():
        raise PermissionDenied("Only repository owners have an approval queue.")
    page = Paginator(selectors.approval_queue_for(request.user), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "delegations/approval_queue.html", {"page": page})


@login_required
def delegation_list(request: HttpRequest) -> HttpResponse:
    if not selectors.repositories_owned_by(request.user).exists():
        raise PermissionDenied("Only repository owners see the delegations of their repositories.")
    delegations = selectors.active_delegations_owned_by(request.user)
    return render(request, "delegations/delegation_list.html", {"delegations": delegations})


@login_required
@require_POST
def request_approve(request: HttpRequest, request_id: int) -> HttpResponse:
    return _decide(request, request_id, services.request_approve, "approved")


@login_required
@require_POST
def request_reject(request: HttpRequest, request_id: int) -> HttpResponse:
    return _decide(request, request_id, services.request_reject, "rejected")


def _decide(request: HttpRequest, request_id: int, service, verb: str) -> HttpResponse:
    try:
        selectors.request_for_viewer(request.user, request_id)
    except Http404:
        # The same answer whether the request exists or not, so its number reveals nothing.
        raise NotAnOwner() from None
    form = DecisionForm(request.POST)
    if not form.is_valid():
        for error in form.errors.get("comment", []):
            messages.error(request, f"Comment: {error}")
        return redirect(_back(request, request_id))
    try:
        decided: DelegationRequest = service(
            request_id=request_id, acting_user=request.user, comment=form.cleaned_data["comment"]
        )
    except (IllegalTransition, InvalidInput) as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Request #{decided.pk} {verb}.")
    return redirect(_back(request, request_id))


def _back(request: HttpRequest, request_id: int) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("delegations:request_detail", args=[request_id])

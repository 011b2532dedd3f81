"""Pages. Each view checks its input and calls one selector or service."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from . import selectors, services
from .exceptions import IllegalTransition, InvalidInput, NotAnOwner, PortalError
from .forms import DecisionForm, DelegationRequestForm
from .instructions import signing_steps
from .models import DelegationRequest, RequestStatus

PAGE_SIZE = 50
# While the worker is busy with a request, its page refreshes itself to show the outcome.
IN_PROGRESS = {RequestStatus.APPROVED, RequestStatus.APPLYING}


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("delegations:request_list")


@login_required
def request_create(request: HttpRequest) -> HttpResponse:
    form = DelegationRequestForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            created = services.request_submit(
                requester=request.user,
                repository=form.cleaned_data["repository"],
                team=form.cleaned_data["team"],
                certificate=form.certificate_info,
                reason=form.cleaned_data["reason"],
            )
        except PortalError as error:
            form.add_error(None, error.message)
        else:
            messages.success(
                request,
                f"Request #{created.pk} sent. The owners of {created.repository.path} are told.",
            )
            return redirect("delegations:request_detail", created.pk)
    status = 400 if form.errors else 200
    return render(request, "delegations/request_form.html", {"form": form}, status=status)


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

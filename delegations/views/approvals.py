"""The owners' pages: the approval queue with its filters, and decisions, one or in bulk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from .. import selectors, services
from ..exceptions import IllegalTransition, InvalidInput, NotAnOwner
from ..forms import BulkDecisionForm, DecisionForm, QueueFilterForm
from ..models import DelegationRequest, RequestStatus, Verdict
from .paging import page_of, query_without_page
from .signed_in import SignedInRequest

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@login_required
def approval_queue(request: SignedInRequest) -> HttpResponse:
    owned = selectors.repositories_owned_by(request.user)
    if not owned.exists():
        raise PermissionDenied("Only repository owners have an approval queue.")
    queue = selectors.approval_queue_for(request.user)
    filters = QueueFilterForm(request.GET or None, queue=queue, repositories=owned)
    shown = selectors.approval_queue_narrowed(queue, **filters.selector_filters())
    context = {
        "page": page_of(request, shown),
        "extensions": selectors.extensions_waiting_for(request.user),
        "filters": filters,
        "bulk": BulkDecisionForm(),
        # The pager keeps the filters.
        "keep": query_without_page(request),
    }
    return render(request, "delegations/approval_queue.html", context)


@login_required
@require_POST
def requests_bulk_decide(request: SignedInRequest) -> HttpResponse:
    form = BulkDecisionForm(request.POST)
    back = back_to(request, reverse("delegations:approval_queue"))
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect(back)
    verdict = form.cleaned_data["verdict"]
    outcomes = services.requests_decide(
        request_ids=form.cleaned_data["request_ids"],
        acting_user=request.user,
        verdict=verdict,
        comment=form.cleaned_data["comment"],
    )
    decided = [outcome.request for outcome in outcomes if outcome.request is not None]
    if decided:
        messages.success(request, _summary(decided, verdict))
    for outcome in outcomes:
        if outcome.error:
            messages.error(request, f"Request #{outcome.request_id}: {outcome.error}")
    return redirect(back)


@login_required
@require_POST
def request_approve(request: SignedInRequest, request_id: int) -> HttpResponse:
    return _decide(request, request_id, services.request_approve)


@login_required
@require_POST
def request_reject(request: SignedInRequest, request_id: int) -> HttpResponse:
    return _decide(request, request_id, services.request_reject)


class Decide(Protocol):
    """`services.request_approve` or `services.request_reject`."""

    def __call__(
        self, *, request_id: int, acting_user: User, comment: str
    ) -> DelegationRequest: ...


def _decide(request: SignedInRequest, request_id: int, service: Decide) -> HttpResponse:
    try:
        selectors.request_for_viewer(request.user, request_id)
    except Http404:
        # The same answer whether the request exists or not, so its number reveals nothing.
        raise NotAnOwner() from None
    back = back_to(request, reverse("delegations:request_detail", args=[request_id]))
    form = DecisionForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            for error in errors:
                messages.error(request, f"{form.fields[field].label}: {error}")
        return redirect(back)
    shortening = (
        {"until": form.cleaned_data["until"]} if service is services.request_approve else {}
    )
    try:
        decided: DelegationRequest = service(
            request_id=request_id,
            acting_user=request.user,
            comment=form.cleaned_data["comment"],
            **shortening,
        )
    except (IllegalTransition, InvalidInput) as error:
        messages.error(request, error.message)
    else:
        verdict = Verdict.REJECT if service is services.request_reject else Verdict.APPROVE
        messages.success(request, _summary([decided], verdict))
    return redirect(back)


def _summary(decided: list[DelegationRequest], verdict: str) -> str:
    """ "Request #5 approved.", "Requests #5, #6 rejected.", and which approvals still wait."""

    def numbered(requests: list[DelegationRequest]) -> str:
        noun = "Request" if len(requests) == 1 else "Requests"
        return f"{noun} {', '.join(f'#{request.pk}' for request in requests)}"

    if verdict == Verdict.REJECT:
        return f"{numbered(decided)} rejected."
    waiting = [request for request in decided if request.status == RequestStatus.PENDING]
    done = [request for request in decided if request.status != RequestStatus.PENDING]
    parts = [f"{numbered(done)} approved."] if done else []
    if waiting:
        parts.append(
            f"Your approval of {numbered(waiting).lower()} is counted; more owners must approve."
        )
    return " ".join(parts)


def back_to(request: SignedInRequest, default: str) -> str:
    """Where a decision's form asked to go back to, when it is this site; else `default`."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default

"""Requests: whose they are, who may see and decide them, what they would change, and when a
pending one expires."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypedDict, Unpack

from django.db.models import Case, Exists, OuterRef, Q, QuerySet, Value, When
from django.http import Http404

from .. import trust
from ..models import (
    OPEN_STATUSES,
    Decision,
    Delegation,
    DelegationRequest,
    Notification,
    Repository,
    RequestStatus,
    Verdict,
    pending_lifetime,
)
from ..notary import DelegationChange
from .people import is_auditor, owners_of, repositories_owned_by

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def requests_of(user: User) -> QuerySet[DelegationRequest]:
    return DelegationRequest.objects.filter(requester=user).select_related("repository")


def approval_queue_for(user: User) -> QuerySet[DelegationRequest]:
    """Pending requests for the repositories `user` owns, oldest first."""
    return (
        DelegationRequest.objects.filter(
            status=RequestStatus.PENDING, repository__in=repositories_owned_by(user)
        )
        .select_related("repository", "requester")
        .order_by("created_at", "id")
    )


class QueueFilters(TypedDict, total=False):
    """What the owners' queue can be narrowed to; a filter left out or empty narrows nothing."""

    repository: Repository | None
    team: str
    # A username, in any case.
    requester: str


def approval_queue_narrowed(
    queue: QuerySet[DelegationRequest], **filters: Unpack[QueueFilters]
) -> QuerySet[DelegationRequest]:
    """`queue` narrowed to one repository, team or requester."""
    if repository := filters.get("repository"):
        queue = queue.filter(repository=repository)
    if team := filters.get("team"):
        queue = queue.filter(team=team)
    if requester := filters.get("requester"):
        queue = queue.filter(requester__username__iexact=requester)
    return queue


def request_for_viewer(user: User, request_id: int) -> DelegationRequest:
    """A request its requester, an owner of its repository, staff or an auditor may see; 404
    otherwise.

    404 rather than 403, so that request numbers do not reveal what exists.
    """
    visible = Q(requester=user) | Q(repository__in=repositories_owned_by(user))
    queryset = DelegationRequest.objects.select_related("repository", "requester")
    if not (user.is_staff or is_auditor(user)):
        queryset = queryset.filter(visible)
    request = queryset.filter(pk=request_id).first()
    if request is None:
        raise Http404("No such request")
    return request


def conflicting_request(
    *,
    repository: Repository,
    requester: User,
    team: str,
    canonical_key_id: str,
    renewing_request_id: int | None = None,
) -> DelegationRequest | None:
    """What a new request on `repository` would repeat: an open request of the same member and
    team, or the same key in an open request or an active delegation. The member's own
    same-team request comes first."""
    open_requests = Q(status__in=OPEN_STATUSES) & (
        Q(requester=requester, team=team) | Q(canonical_key_id=canonical_key_id)
    )
    delegated_key = Q(
        canonical_key_id=canonical_key_id,
        delegation__isnull=False,
        delegation__ended_at__isnull=True,
    )
    candidates = DelegationRequest.objects.filter(repository=repository).filter(
        open_requests | delegated_key
    )
    if renewing_request_id is not None:
        candidates = candidates.exclude(pk=renewing_request_id)
    return (
        candidates.annotate(
            same_member_and_team=Case(
                When(requester=requester, team=team, status__in=OPEN_STATUSES, then=Value(0)),
                default=Value(1),
            )
        )
        .order_by("same_member_and_team", "-id")
        .first()
    )


# -- decisions ------------------------------------------------------------------------------------


def approvals_of(
    request: DelegationRequest, *, owner_ids: Collection[int] | None = None
) -> list[Decision]:
    """The approvals counted toward the repository's threshold, in the order they were given:
    only those of people who still own the repository (`owner_ids`, read by the caller before
    it locks anything; read here when not given). Someone who left the owners group since
    approving no longer vouches for the request."""
    if owner_ids is None:
        owner_ids = set(owners_of(request.repository).values_list("pk", flat=True))
    return list(
        request.decisions.filter(verdict=Verdict.APPROVE, owner_id__in=owner_ids)
        .select_related("owner")
        .order_by("id")
    )


def approvals_missing(request: DelegationRequest) -> int:
    """How many more owners must approve before the request is approved."""
    return max(request.repository.approvals_required - len(approvals_of(request)), 0)


def why_cannot_decide(user: User, request: DelegationRequest, *, owns: bool) -> str | None:
    """Why `user` cannot decide on `request` now, in words for them; None when they can.

    `owns` is whether they own the request's repository (`is_owner`): the caller reads it,
    so that a decision asks the directory before it locks anything.
    """
    if request.requester_id == user.pk:
        return "You asked for it, so you cannot decide on your own request: another owner has to."
    if not owns:
        return "Only the owners of the request's repository decide on it."
    if request.status != RequestStatus.PENDING:
        return f"Request #{request.pk} is {request.get_status_display().lower()} now."
    if any(decision.owner_id == user.pk for decision in approvals_of(request)):
        more = approvals_missing(request)
        return (
            f"You approved request #{request.pk}; {more} more approval"
            f"{'s' if more != 1 else ''} from other owners of {request.repository.path} "
            "are needed."
        )
    return None


# -- what a request changes -----------------------------------------------------------------------


def request_change(request: DelegationRequest) -> DelegationChange:
    """What approving `request` does to the trust data: its key into both roles, in place of the
    key of the delegation it renews when that one is still active."""
    renewed = delegation_renewed_by(request)
    if renewed is None:
        return trust.adding(request.certificate_pem, request.role_names)
    return trust.replacing(
        renewed.request.certificate_pem, request.certificate_pem, request.role_names
    )


def delegation_renewed_by(request: DelegationRequest) -> Delegation | None:
    """The still active delegation `request` renews: its key is the one to replace."""
    if request.renews_id is None:
        return None
    renewed = Delegation.objects.select_related("request").get(pk=request.renews_id)
    # Ended meanwhile (revoked, say): the new key simply goes in.
    return renewed if renewed.is_active else None


# -- expiry ---------------------------------------------------------------------------------------


def expired_request_ids(*, now: datetime) -> list[int]:
    """Pending requests older than their lifetime (`models.pending_lifetime`)."""
    return list(
        DelegationRequest.objects.filter(
            status=RequestStatus.PENDING, created_at__lt=now - pending_lifetime()
        )
        .order_by("id")
        .values_list("pk", flat=True)
    )


def requests_owing_expiry_reminder(
    *, now: datetime, remind_before: timedelta, kind: str, occasion: str
) -> QuerySet[DelegationRequest]:
    """Pending requests that expire within `remind_before` and have not yet, whose reminder was
    not owed already."""
    owed = Notification.objects.filter(request=OuterRef("pk"), kind=kind, occasion=occasion)
    return (
        DelegationRequest.objects.filter(
            status=RequestStatus.PENDING,
            created_at__gt=now - pending_lifetime(),
            created_at__lte=now - pending_lifetime() + remind_before,
        )
        .exclude(Exists(owed))
        .select_related("repository", "requester")
        .order_by("created_at", "id")
    )

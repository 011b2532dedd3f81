"""Owners' decisions on pending requests: approve (up to the repository's threshold) or reject.

A decision locks its request row, so two owners deciding at once are taken one after the other:
the second finds the request no longer pending (or their approval already counted) and is told,
instead of both winning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from django.db import transaction

from .. import clock, lifetimes, queueing, selectors
from ..audit.chain import audit_record
from ..exceptions import IllegalTransition, InvalidInput, NotAnOwner, PortalError, SelfApproval
from ..models import (
    AuditAction,
    Decision,
    DelegationRequest,
    NotificationKind,
    RequestStatus,
    Verdict,
)
from .comments import checked_comment
from .notifications import notifications_create
from .state import request_facts, transition

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def request_approve(
    *,
    request_id: int,
    acting_user: User,
    comment: str = "",
    until: date | None = None,
    now: datetime | None = None,
) -> DelegationRequest:
    """Count `acting_user`'s approval; the request is approved once enough owners have. With
    `until`, the owner shortens the delegation to that last day (never lengthens it)."""
    return _decide(
        request_id=request_id,
        acting_user=acting_user,
        verdict=Verdict.APPROVE,
        comment=checked_comment(comment),
        until=until,
        now=now or clock.now(),
    )


def request_reject(
    *,
    request_id: int,
    acting_user: User,
    comment: str,
    now: datetime | None = None,
) -> DelegationRequest:
    """Reject the request; one owner's rejection ends it, whatever approvals it had."""
    comment = checked_comment(comment)
    if not comment:
        raise InvalidInput(
            "Say why you reject the request: the requester will read it.", field="comment"
        )
    return _decide(
        request_id=request_id,
        acting_user=acting_user,
        verdict=Verdict.REJECT,
        comment=comment,
        now=now or clock.now(),
    )


@dataclass(frozen=True)
class Outcome:
    """What became of one request of a bulk decision."""

    request_id: int
    request: DelegationRequest | None = None
    error: str = ""


def requests_decide(
    *,
    request_ids: list[int],
    acting_user: User,
    verdict: str,
    comment: str,
    now: datetime | None = None,
) -> list[Outcome]:
    """Decide several requests alike. Each is its own decision (its own transaction, checks and
    audit event), so one that someone else decided first does not undo the others."""
    decide = request_approve if verdict == Verdict.APPROVE else request_reject
    # The approved ones are published together, once all are decided.
    with queueing.publishes_gathered():
        return [
            _decide_one(decide, request_id, acting_user=acting_user, comment=comment, now=now)
            for request_id in sorted(set(request_ids))
        ]


def _decide_one(
    decide: Callable[..., DelegationRequest],
    request_id: int,
    *,
    acting_user: User,
    comment: str,
    now: datetime | None,
) -> Outcome:
    try:
        decided = decide(request_id=request_id, acting_user=acting_user, comment=comment, now=now)
    except PortalError as error:
        return Outcome(request_id, error=error.message)
    except DelegationRequest.DoesNotExist:
        return Outcome(request_id, error=NotAnOwner().message)
    return Outcome(request_id, request=decided)


def _decide(
    *,
    request_id: int,
    acting_user: User,
    verdict: str,
    comment: str,
    now: datetime,
    until: date | None = None,
) -> DelegationRequest:
    # What the directory says (who owns the repository, who is in the team) is read before the
    # request row is locked: a slow directory must not hold up other writers.
    unlocked = DelegationRequest.objects.select_related("repository", "requester").get(
        pk=request_id
    )
    # Nobody decides on their own request, whatever the directory says: not asked then.
    asking_for_themselves = unlocked.requester_id == acting_user.pk
    owns = not asking_for_themselves and selectors.is_owner(acting_user, unlocked.repository)
    still_in_team = (
        verdict != Verdict.APPROVE
        or asking_for_themselves
        or unlocked.team in selectors.teams_of(unlocked.requester)
    )
    owner_ids = (
        set(selectors.owners_of(unlocked.repository).values_list("pk", flat=True))
        if verdict == Verdict.APPROVE and owns
        else set()
    )
    with transaction.atomic():
        request = (
            DelegationRequest.objects.select_for_update(of=("self",))
            .select_related("repository", "requester")
            .get(pk=request_id)
        )
        _require_can_decide(request, acting_user, owns=owns)
        if not still_in_team:
            # They left the team (or the company) since they asked: approving would hand out
            # rights the directory sync would take back at its next run.
            raise IllegalTransition(
                f"{request.requester.get_username()} is no longer in team {request.team}, so "
                f"request #{request.pk} cannot be approved; reject it instead."
            )
        shortened = _shortened(request, until, now=now)
        Decision.objects.create(
            request=request, owner=acting_user, verdict=verdict, comment=comment, until=shortened
        )
        if verdict == Verdict.REJECT:
            return _conclude(request, RequestStatus.REJECTED, acting_user, comment, now=now)
        if shortened is not None:
            DelegationRequest.objects.filter(pk=request.pk).update(until=shortened)
            request.until = shortened
        approvals = [
            decision.owner.get_username()
            for decision in selectors.approvals_of(request, owner_ids=owner_ids | {acting_user.pk})
        ]
        required = request.repository.approvals_required
        if len(approvals) >= required:
            return _conclude(
                request,
                RequestStatus.APPROVED,
                acting_user,
                comment,
                now=now,
                approvals=approvals,
                until=shortened,
            )
        audit_record(
            action=AuditAction.REQUEST_APPROVAL_COUNTED,
            actor=acting_user,
            now=now,
            request=request,
            details={
                **request_facts(request),
                "comment": comment,
                "approvals": approvals,
                "required": required,
                **({"until": shortened.isoformat()} if shortened else {}),
            },
        )
        return request


def _shortened(request: DelegationRequest, until: date | None, *, now: datetime) -> date | None:
    """The earlier last day an approving owner sets, checked; None when they set none (or the
    same one). Inside the request's lock, so two owners shortening at once both count."""
    if until is None or until == request.until:
        return None
    return lifetimes.shortened_until(
        until,
        asked=request.until,
        limits=request.repository,
        certificate_not_after=request.not_after,
        now=now,
    )


# What concluding a pending request is called in the audit log.
_CONCLUDED = {
    RequestStatus.APPROVED: AuditAction.REQUEST_APPROVED,
    RequestStatus.REJECTED: AuditAction.REQUEST_REJECTED,
}


def _conclude(
    request: DelegationRequest,
    target: RequestStatus,
    acting_user: User,
    comment: str,
    *,
    now: datetime,
    approvals: list[str] | None = None,
    until: date | None = None,
) -> DelegationRequest:
    details: dict[str, object] = {"comment": comment}
    if approvals is not None:
        details["approvals"] = approvals
    if until is not None:
        details["until"] = until.isoformat()
    request = transition(
        request.pk,
        source={RequestStatus.PENDING},
        target=target,
        actor=acting_user,
        action=_CONCLUDED[target],
        now=now,
        details=details,
    )
    notifications_create(kind=NotificationKind.REQUEST_DECIDED, request=request, now=now)
    if target == RequestStatus.APPROVED:
        queueing.enqueue_after_commit(queueing.enqueue_repository_publish, request.repository_id)
    return request


def _require_can_decide(request: DelegationRequest, user: User, *, owns: bool) -> None:
    reason = selectors.why_cannot_decide(user, request, owns=owns)
    if reason is None:
        return
    if request.requester_id == user.pk:
        raise SelfApproval(reason)
    if not owns:
        raise NotAnOwner()
    raise IllegalTransition(reason)

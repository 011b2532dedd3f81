"""Active delegations that end early: revoked by an owner, or given up by their member.

Asking sets the delegation's `ending` marker by compare-and-set, with an audit event, and queues
the repository's publish once that has committed. The worker (`publishing`) takes the key out of
both roles (never a role: product.md §4 rule 5; a key another team's role still holds stays in
`targets/releases`, rule 3) in the repository's next batch, then records the end
(`delegation_end_record`): the request becomes revoked, the delegation ended, and the people
concerned told. The publish is idempotent, so a run after a crash finds the key gone and records
that instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction

from .. import clock, emails, queueing, selectors, trust
from ..audit.chain import DIRECTORY_SYNC_ACTOR, SYSTEM_ACTOR, audit_record
from ..exceptions import IllegalTransition, InvalidInput, NotAllowed
from ..models import (
    DIRECTORY_END_REASONS,
    AuditAction,
    Delegation,
    EndReason,
    NotificationKind,
    RequestStatus,
)
from ..notary import DelegationChange, PublishResult
from .accounts import repository_owners_or_known
from .comments import checked_comment
from .extensions import extensions_withdraw_for_end
from .notifications import notifications_create
from .state import request_facts, transition

if TYPE_CHECKING:
    from django.contrib.auth.models import User


# What the request's history calls each end, when it is asked for and when it is done, and who
# is told once it is done.
_ASKED = {
    EndReason.REVOKED: AuditAction.DELEGATION_REVOKE_REQUESTED,
    EndReason.GIVEN_UP: AuditAction.DELEGATION_GIVE_UP_REQUESTED,
    EndReason.LEFT_TEAM: AuditAction.DELEGATION_LEFT_TEAM,
    EndReason.DISABLED: AuditAction.DELEGATION_ACCOUNT_DISABLED,
    EndReason.BUNDLE_DELETED: AuditAction.DELEGATION_BUNDLE_DELETED,
    EndReason.EXPIRED: AuditAction.DELEGATION_EXPIRED,
    EndReason.NOT_RECERTIFIED: AuditAction.DELEGATION_NOT_RECERTIFIED,
}
_DONE = {
    EndReason.REVOKED: AuditAction.REQUEST_REVOKED,
    EndReason.GIVEN_UP: AuditAction.REQUEST_GIVEN_UP,
    EndReason.LEFT_TEAM: AuditAction.REQUEST_REVOKED,
    EndReason.DISABLED: AuditAction.REQUEST_REVOKED,
    EndReason.BUNDLE_DELETED: AuditAction.REQUEST_REVOKED,
    EndReason.EXPIRED: AuditAction.REQUEST_REVOKED,
    EndReason.NOT_RECERTIFIED: AuditAction.REQUEST_REVOKED,
}
_TOLD = {
    EndReason.REVOKED: NotificationKind.DELEGATION_REVOKED,
    EndReason.GIVEN_UP: NotificationKind.DELEGATION_GIVEN_UP,
    EndReason.LEFT_TEAM: NotificationKind.DELEGATION_DIRECTORY_REVOKED,
    EndReason.DISABLED: NotificationKind.DELEGATION_DIRECTORY_REVOKED,
    EndReason.BUNDLE_DELETED: NotificationKind.DELEGATION_DIRECTORY_REVOKED,
    # Ended by itself, as the portal's rules say: the same email, with the rule as its reason.
    EndReason.EXPIRED: NotificationKind.DELEGATION_EXPIRED,
    EndReason.NOT_RECERTIFIED: NotificationKind.DELEGATION_EXPIRED,
}


def delegation_revoke(
    *,
    delegation_id: int,
    acting_user: User,
    comment: str,
    now: datetime | None = None,
) -> Delegation:
    """An owner of the repository takes a member's key out of both roles; the member is told
    who did it and why, so the comment is required."""
    delegation = _delegation(delegation_id)
    if delegation is None or not selectors.is_owner(acting_user, delegation.repository):
        raise NotAllowed(selectors.NOT_AN_OWNER)
    comment = checked_comment(comment)
    if not comment:
        raise InvalidInput(
            "Say why you revoke this delegation; the member reads it.", field="comment"
        )
    return _ending_ask(
        delegation, reason=EndReason.REVOKED, acting_user=acting_user, comment=comment, now=now
    )


def delegation_give_up(
    *,
    delegation_id: int,
    acting_user: User,
    comment: str = "",
    now: datetime | None = None,
) -> Delegation:
    """The member ends their own delegation; no owner needs to agree, the owners are told."""
    delegation = _delegation(delegation_id)
    if delegation is None or delegation.member_id != acting_user.pk:
        raise NotAllowed("Only the member who holds a delegation can give it up.")
    return _ending_ask(
        delegation,
        reason=EndReason.GIVEN_UP,
        acting_user=acting_user,
        comment=checked_comment(comment),
        now=now,
    )


def delegation_end_for_directory(
    *, delegation_id: int, reason: EndReason, comment: str, now: datetime | None = None
) -> Delegation:
    """The directory sync ends a delegation whose member left its team, whose account was
    disabled, or whose client bundle UCP no longer lists: the key leaves both roles as in a
    revoke, with the sync as the actor."""
    if reason not in DIRECTORY_END_REASONS:
        raise ValueError(f"{reason!r} is not an end the directory decides")
    delegation = _delegation(delegation_id)
    if delegation is None:
        raise IllegalTransition(f"Delegation {delegation_id} does not exist.")
    return _ending_ask(delegation, reason=reason, acting_user=None, comment=comment, now=now)


def delegation_end_for_review(
    *,
    delegation_id: int,
    reason: EndReason,
    acting_user: User | None,
    comment: str,
    now: datetime,
) -> Delegation:
    """An access review ends a delegation: an owner revokes it there (`acting_user`, whose
    ownership the review checked before it locked anything), or the deadline ends one nobody
    re-certified (the repository's choice, the portal as the actor). Either is a revoke."""
    if reason not in (EndReason.REVOKED, EndReason.NOT_RECERTIFIED):
        raise ValueError(f"{reason!r} is not an end a review decides")
    delegation = _delegation(delegation_id)
    if delegation is None:
        raise IllegalTransition(f"Delegation {delegation_id} does not exist.")
    return _ending_ask(delegation, reason=reason, acting_user=acting_user, comment=comment, now=now)


def delegations_expire(*, now: datetime | None = None) -> list[int]:
    """End every delegation whose last day is over or whose certificate has expired, as a
    revoke does (both roles, one publish per repository for all of them), with the portal as
    the actor. Run every minute by the scheduler. An end the worker gave up on is not asked
    again (the owners were told, and revoke by hand), so a failing one mails once. Returns the
    ids of the delegations asked to end."""
    now = now or clock.now()
    asked: list[int] = []
    with queueing.publishes_gathered():
        for delegation in selectors.delegations_expired(now=now):
            why = (
                f"Its last day, {delegation.until.isoformat()}, is over."
                if delegation.ends_before_certificate and delegation.until
                else "Its certificate expired on "
                f"{delegation.certificate_expires_at:%Y-%m-%d %H:%M %Z}."
            )
            try:
                _ending_ask(
                    delegation, reason=EndReason.EXPIRED, acting_user=None, comment=why, now=now
                )
            except IllegalTransition:
                continue  # ended, or asked to end, since it was read
            asked.append(delegation.pk)
    return asked


def _delegation(delegation_id: int) -> Delegation | None:
    return (
        Delegation.objects.select_related("repository", "request__repository", "member")
        .filter(pk=delegation_id)
        .first()
    )


def _ending_ask(
    delegation: Delegation,
    *,
    reason: EndReason,
    acting_user: User | None,
    comment: str,
    now: datetime | None,
) -> Delegation:
    now = now or clock.now()
    with transaction.atomic():
        asked = (
            Delegation.objects.steady()
            .filter(pk=delegation.pk, request__status=RequestStatus.DELEGATED)
            .update(
                ending=reason,
                ending_requested_by=acting_user,
                ending_requested_at=now,
                ending_comment=comment,
                **Delegation.publish_bookkeeping_reset(),
            )
        )
        if not asked:
            raise IllegalTransition(_why_not_active(delegation.pk))
        request = delegation.request
        audit_record(
            action=_ASKED[reason],
            actor=acting_user,
            now=now,
            request=request,
            details={**request_facts(request), "end_reason": reason, "comment": comment},
            system_actor=_system_actor(reason),
        )
        if end_carries_to_renewal(delegation, reason):
            _renewal_end(delegation, reason=reason, acting_user=acting_user, now=now)
        extensions_withdraw_for_end(delegation, now=now)
        queueing.enqueue_after_commit(queueing.enqueue_repository_publish, delegation.repository_id)
    delegation.refresh_from_db()
    return delegation


def end_carries_to_renewal(delegation: Delegation, reason: str) -> bool:
    """Whether ending `delegation` for `reason` ends its renewal too. Every end does but one: an
    expired certificate is what a renewal answers, so a renewal on its way goes on and, once
    approved, delegates the new certificate's key."""
    return not (reason == EndReason.EXPIRED and not delegation.ends_before_certificate)


def _renewal_end(
    delegation: Delegation, *, reason: EndReason, acting_user: User | None, now: datetime
) -> None:
    """An ending delegation's renewal must not put a new key in afterwards (an owner revokes
    bob's delegation because his laptop was stolen; another approves his pending renewal):
    a pending renewal is withdrawn, an approved one not yet taken up fails. One the worker is
    publishing right now inherits the end when it is recorded (`ending_carry_over`)."""
    renewal = selectors.open_renewal_of(delegation)
    if renewal is None:
        return
    why = f"The delegation it renews is being ended ({EndReason(reason).label.lower()})."
    if renewal.status == RequestStatus.PENDING:
        transition(
            renewal.pk,
            source={RequestStatus.PENDING},
            target=RequestStatus.WITHDRAWN,
            actor=acting_user,
            system_actor=_system_actor(reason),
            action=AuditAction.REQUEST_WITHDRAWN,
            now=now,
            details={"comment": why},
        )
    elif renewal.status == RequestStatus.APPROVED:
        transition(
            renewal.pk,
            source={RequestStatus.APPROVED},
            target=RequestStatus.FAILED,
            actor=None,
            action=AuditAction.REQUEST_FAILED,
            now=now,
            details={"reason": why},
            failure_reason=why,
        )


def ending_carry_over(renewed: Delegation, successor_id: int, *, now: datetime) -> None:
    """A renewal published while the delegation it renews was being ended: the end applies to
    the new key too (the next batch takes it out). Inside the transaction recording it."""
    reason = EndReason(renewed.ending)
    Delegation.objects.filter(pk=successor_id).update(
        ending=reason,
        ending_requested_by=renewed.ending_requested_by,
        ending_requested_at=now,
        ending_comment=renewed.ending_comment,
        **Delegation.publish_bookkeeping_reset(),
    )
    successor = Delegation.objects.select_related("request__repository").get(pk=successor_id)
    audit_record(
        action=_ASKED[reason],
        actor=renewed.ending_requested_by,
        now=now,
        request=successor.request,
        details={
            **request_facts(successor.request),
            "end_reason": reason,
            "comment": renewed.ending_comment,
            "carried_over_from_delegation": renewed.pk,
        },
        system_actor=_system_actor(reason),
    )
    queueing.enqueue_after_commit(queueing.enqueue_repository_publish, successor.repository_id)


def _system_actor(reason: EndReason) -> str:
    return DIRECTORY_SYNC_ACTOR if reason in DIRECTORY_END_REASONS else SYSTEM_ACTOR


def _why_not_active(delegation_id: int) -> str:
    delegation = Delegation.objects.select_related("member").get(pk=delegation_id)
    whose = f"{delegation.member.get_username()}'s delegation (team {delegation.team})"
    if delegation.ended_at is not None:
        return f"{whose} has ended already ({delegation.get_end_reason_display().lower()})."
    if delegation.ending:
        return (
            f"{whose} is being ended already ({delegation.get_ending_display().lower()}): the "
            "portal is taking the key out of the trust data."
        )
    return f"{whose} is not active."


def removal_of(delegation: Delegation) -> DelegationChange:
    """The change that ends `delegation`: its key out of its roles."""
    return trust.removing(delegation.request.certificate_pem, delegation.roles)


def delegation_end_record(
    delegation: Delegation,
    result: PublishResult,
    *,
    changed: bool,
    published_in: int | None,
    owners: list[User] | None,
    now: datetime,
) -> Delegation | None:
    """Record that an ending delegation's key is out of its roles, inside the transaction that
    records its publish (`publishing`); None when it was recorded already. `owners` were read
    beforehand, for the ends the owners are told of."""
    reason = EndReason(delegation.ending)
    versions = {
        "targets_version_before": result.version_before,
        "targets_version_after": result.version_after,
    }
    try:
        with transaction.atomic():
            ended = Delegation.objects.filter(
                pk=delegation.pk, ended_at__isnull=True, ending=reason
            ).update(ended_at=now, end_reason=reason)
            if not ended:
                raise IllegalTransition(_why_not_active(delegation.pk))
            request = delegation.request
            facts = {**request_facts(request), "roles": delegation.roles}
            if not changed:
                # The key was gone from the roles already: a run before a crash took it out, or
                # someone did outside the portal. That is on the record instead of a publish.
                audit_record(
                    action=AuditAction.NOTARY_FOUND_REMOVED,
                    actor=None,
                    now=now,
                    request=request,
                    details={**facts, "change": "remove", **versions},
                )
            request = transition(
                request.pk,
                source={RequestStatus.DELEGATED},
                target=RequestStatus.REVOKED,
                # Attributed to the person who asked (or the sync); the worker carried it out.
                actor=delegation.ending_requested_by,
                system_actor=_system_actor(reason),
                action=_DONE[reason],
                now=now,
                details={
                    **facts,
                    "end_reason": reason,
                    "comment": delegation.ending_comment,
                    **versions,
                    **({"published_in": published_in} if published_in else {}),
                },
            )
            told = _TOLD[reason]
            notifications_create(
                kind=told,
                request=request,
                owners=owners if emails.KINDS[told].tells_owners else None,
                now=now,
            )
    except IllegalTransition:
        return None  # another run recorded it first (the publish itself was idempotent)
    delegation.refresh_from_db()
    return delegation


def delegation_end_fail(
    *, delegation_id: int, reason: str, now: datetime | None = None
) -> Delegation:
    """Give up taking a delegation's key out: it stays active and may be ended again; the person
    who asked and the owners are told why."""
    now = now or clock.now()
    delegation = Delegation.objects.select_related("repository").get(pk=delegation_id)
    owners = repository_owners_or_known(repository=delegation.repository)
    with transaction.atomic():
        delegation = Delegation.objects.select_related("request__repository").get(pk=delegation_id)
        cleared = (
            Delegation.objects.ending()
            .filter(pk=delegation_id, ending=delegation.ending)
            .update(
                ending="",
                failed_ending=delegation.ending,
                failed_ending_reason=reason,
                failed_ending_at=now,
                **(
                    {"directory_end_failed_at": now}
                    if delegation.ending in DIRECTORY_END_REASONS
                    else {}
                ),
            )
        )
        if not cleared:
            return delegation
        audit_record(
            action=AuditAction.DELEGATION_END_FAILED,
            actor=None,
            now=now,
            request=delegation.request,
            details={
                **request_facts(delegation.request),
                "end_reason": delegation.ending,
                "reason": reason,
            },
        )
        notifications_create(
            kind=NotificationKind.DELEGATION_END_FAILED,
            request=delegation.request,
            owners=owners,
            now=now,
        )
    delegation.refresh_from_db()
    return delegation

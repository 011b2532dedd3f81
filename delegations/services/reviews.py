"""Access reviews (product: signing rights get re-certified). A repository with a review interval
gets a review that often: one page listing every active delegation, which its owners keep or
revoke, with a comment, before a deadline. The owners are mailed when it opens and before the
deadline. At the deadline, what nobody reviewed is kept (and the repository flagged) or ended
as not re-certified, as the repository chose. Every step is audited; a closed review is the
record of who kept what and why.

Run by the scheduler (`reviews_run`, hourly): open the reviews that are due, remind, close the
ones past their deadline. Revoking from a review is a revoke (`delegation_endings`): the key
leaves both roles in the repository's next publish.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction

from .. import clock, selectors
from ..audit.chain import SYSTEM_ACTOR, audit_record
from ..exceptions import IllegalTransition, InvalidInput, NotAnOwner, SelfApproval
from ..models import (
    AccessReview,
    AuditAction,
    Delegation,
    EndReason,
    NotificationKind,
    Repository,
    ReviewItem,
    ReviewOutcome,
    ReviewVerdict,
    UnreviewedPolicy,
)
from .accounts import repository_owners_or_known
from .comments import checked_comment
from .delegation_endings import delegation_end_for_review
from .notifications import review_notifications_create

if TYPE_CHECKING:
    from django.contrib.auth.models import User

DUE = NotificationKind.REVIEW_DUE


def reviews_run(*, now: datetime | None = None) -> dict[str, list[int]]:
    """Open the reviews due, remind the owners of those near their deadline, close those past
    it. Returns the ids of the reviews each step touched."""
    now = now or clock.now()
    return {
        "opened": [
            review.pk
            for repository in selectors.repositories_due_for_review(now=now)
            if (review := review_open(repository_id=repository.pk, now=now)) is not None
        ],
        "reminded": reviews_remind(now=now),
        "closed": [
            review.pk
            for review in selectors.reviews_past_deadline(now=now)
            if review_close(review_id=review.pk, now=now)
        ],
    }


def review_open(*, repository_id: int, now: datetime | None = None) -> AccessReview | None:
    """Open a review of every steady delegation of the repository; None when one is open
    already or there is nothing to review. What each key signs now is read from the Notary
    server first (outside the transaction), where the verified read can tell."""
    now = now or clock.now()
    repository = Repository.objects.get(pk=repository_id)
    delegations = list(selectors.delegations_to_review(repository))
    if not delegations:
        return None
    signs = {delegation.pk: selectors.roles_signed_by(delegation) for delegation in delegations}
    owners = repository_owners_or_known(repository=repository, now=now)
    try:
        with transaction.atomic():
            review = AccessReview.objects.create(
                repository=repository,
                opened_at=now,
                deadline=now + timedelta(days=repository.review_deadline_days),
                unreviewed=repository.review_unreviewed,
            )
            ReviewItem.objects.bulk_create(
                ReviewItem(review=review, delegation=delegation, signs=signs[delegation.pk])
                for delegation in delegations
            )
            audit_record(
                action=AuditAction.REVIEW_OPENED,
                actor=None,
                now=now,
                repository=repository,
                details={
                    "review": review.pk,
                    "delegations": len(delegations),
                    "deadline": review.deadline.isoformat(),
                    "unreviewed": review.unreviewed,
                },
                system_actor=SYSTEM_ACTOR,
            )
            review_notifications_create(
                kind=NotificationKind.REVIEW_OPENED, review=review, owners=owners, now=now
            )
    except IntegrityError:
        return None  # another run opened it first
    return review


def review_decide(
    *,
    item_id: int,
    acting_user: User,
    verdict: str,
    comment: str = "",
    now: datetime | None = None,
) -> ReviewItem:
    """An owner keeps or revokes one delegation of an open review, saying why (required to
    revoke: the member reads it). Nobody decides on their own delegation."""
    now = now or clock.now()
    comment = checked_comment(comment)
    if verdict not in ReviewVerdict.values:
        raise InvalidInput("Keep or revoke.", field="verdict")
    unlocked = (
        ReviewItem.objects.select_related("review__repository", "delegation").filter(pk=item_id)
    ).first()
    if unlocked is None or not selectors.is_owner(acting_user, unlocked.review.repository):
        raise NotAnOwner("Only the owners of the repository review its delegations.")
    if unlocked.delegation.member_id == acting_user.pk:
        raise SelfApproval("This is your own delegation: another owner reviews it.")
    if verdict == ReviewVerdict.REVOKE and not comment:
        raise InvalidInput(
            "Say why you revoke this delegation; the member reads it.", field="comment"
        )
    with transaction.atomic():
        item = (
            ReviewItem.objects.select_for_update(of=("self",))
            .select_related("review__repository", "delegation__request")
            .get(pk=item_id)
        )
        _require_undecided(item)
        if verdict == ReviewVerdict.REVOKE:
            # The same revoke as the Delegations page's: both roles, one publish, the member told.
            delegation_end_for_review(
                delegation_id=item.delegation_id,
                reason=EndReason.REVOKED,
                acting_user=acting_user,
                comment=comment,
                now=now,
            )
        elif not Delegation.objects.steady().filter(pk=item.delegation_id).exists():
            raise IllegalTransition("This delegation is ending or has ended already.")
        ReviewItem.objects.filter(pk=item.pk).update(
            verdict=verdict, decided_by=acting_user, decided_at=now, comment=comment
        )
        item.refresh_from_db()
        audit_record(
            action=AuditAction.REVIEW_KEPT
            if verdict == ReviewVerdict.KEEP
            else AuditAction.REVIEW_REVOKED,
            actor=acting_user,
            now=now,
            request=item.delegation.request,
            repository=item.review.repository,
            details={
                "review": item.review_id,
                "member": item.delegation.member.get_username(),
                "team": item.delegation.team,
                "canonical_key_id": item.delegation.canonical_key_id,
                "comment": comment,
            },
        )
        if not item.review.items.filter(verdict="", outcome="").exists():
            _close(item.review, now=now)
    return item


def review_close(*, review_id: int, now: datetime | None = None) -> bool:
    """The deadline: what nobody reviewed is kept (the repository flagged) or ended as not
    re-certified, as the review says; then the review closes. False when it was closed."""
    now = now or clock.now()
    with transaction.atomic():
        review = (
            AccessReview.objects.select_for_update()
            .select_related("repository")
            .filter(pk=review_id, closed_at__isnull=True)
            .first()
        )
        if review is None:
            return False
        for item in review.items.filter(verdict="", outcome="").select_related(
            "delegation__request"
        ):
            outcome = _deadline_outcome(review, item, now)
            ReviewItem.objects.filter(pk=item.pk).update(outcome=outcome)
        _close(review, now=now)
    return True


def _deadline_outcome(review: AccessReview, item: ReviewItem, now: datetime) -> str:
    if not Delegation.objects.steady().filter(pk=item.delegation_id).exists():
        return ReviewOutcome.ENDED_MEANWHILE
    if review.unreviewed == UnreviewedPolicy.END:
        delegation_end_for_review(
            delegation_id=item.delegation_id,
            reason=EndReason.NOT_RECERTIFIED,
            acting_user=None,
            comment=f"Nobody re-certified it in access review #{review.pk} by its deadline.",
            now=now,
        )
        return ReviewOutcome.ENDED_UNREVIEWED
    return ReviewOutcome.KEPT_UNREVIEWED


def _close(review: AccessReview, *, now: datetime) -> None:
    items = list(review.items.all())
    flagged = any(item.outcome == ReviewOutcome.KEPT_UNREVIEWED for item in items)
    AccessReview.objects.filter(pk=review.pk).update(closed_at=now, flagged=flagged)
    count = {
        "kept": sum(item.verdict == ReviewVerdict.KEEP for item in items),
        "revoked": sum(item.verdict == ReviewVerdict.REVOKE for item in items),
        "kept_unreviewed": sum(item.outcome == ReviewOutcome.KEPT_UNREVIEWED for item in items),
        "ended_unreviewed": sum(item.outcome == ReviewOutcome.ENDED_UNREVIEWED for item in items),
        "ended_meanwhile": sum(item.outcome == ReviewOutcome.ENDED_MEANWHILE for item in items),
    }
    audit_record(
        action=AuditAction.REVIEW_CLOSED,
        actor=None,
        now=now,
        repository=review.repository,
        details={"review": review.pk, "flagged": flagged, **count},
        system_actor=SYSTEM_ACTOR,
    )


def reviews_remind(*, now: datetime | None = None) -> list[int]:
    """Remind the owners of each open review PORTAL_REVIEW_REMINDER_DAYS before its deadline,
    once."""
    now = now or clock.now()
    reminded: list[int] = []
    before = timedelta(days=settings.PORTAL_REVIEW_REMINDER_DAYS)
    for review in selectors.reviews_near_deadline(now=now, before=before):
        owners = repository_owners_or_known(repository=review.repository, now=now)
        with transaction.atomic():
            if review_notifications_create(
                kind=DUE, review=review, owners=owners, now=now, occasion="before-deadline"
            ):
                reminded.append(review.pk)
    return reminded


def _require_undecided(item: ReviewItem) -> None:
    if item.review.closed_at is not None:
        raise IllegalTransition(f"Review #{item.review_id} is closed.")
    if item.verdict:
        who = item.decided_by.get_username() if item.decided_by else "someone"
        raise IllegalTransition(
            f"{who} reviewed this delegation already ({item.get_verdict_display().lower()})."
        )

"""Owing and sending notification emails (the outbox)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.db.models import F

from .. import clock, emails, queueing
from ..models import (
    AccessReview,
    DelegationRequest,
    DriftFinding,
    Extension,
    Notification,
    NotificationKind,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def notifications_create(
    *,
    kind: NotificationKind,
    request: DelegationRequest,
    now: datetime,
    owners: Sequence[User] | None = None,
    occasion: str = "",
    extension: Extension | None = None,
) -> list[Notification]:
    """Owe an email to each person concerned. Call inside the change's transaction: the rows
    commit with the change, and the worker is asked to send them once it has committed.

    A kind that tells the repository's owners needs `owners`, read before the transaction began
    (`repository_owners_provision`): the directory is never asked while rows are locked.

    With an `occasion` ("30d", …) the email is owed at most once per person and occasion, however
    often or concurrently this is called: people already owed it are skipped."""
    people = emails.recipients(kind, request, owners=owners)
    if occasion:
        created = [
            notification
            for person in people
            if (notification := _owe_once(kind, request, person, now, occasion)) is not None
        ]
    else:
        created = Notification.objects.bulk_create(
            Notification(
                request=request, extension=extension, kind=kind, recipient=person, created_at=now
            )
            for person in people
        )
    for notification in created:
        queueing.enqueue_after_commit(queueing.enqueue_notification_send, notification.pk)
    return created


def notifications_create_many(
    *, kind: NotificationKind, requests: Sequence[DelegationRequest], now: datetime
) -> list[Notification]:
    """`notifications_create` for many requests of a kind that tells no owners, in one insert
    and one round trip to Redis (the batch worker's)."""
    if emails.KINDS[kind].tells_owners:
        raise ValueError(f"{kind} tells the owners: owe it one request at a time")
    created = Notification.objects.bulk_create(
        Notification(request=request, kind=kind, recipient=person, created_at=now)
        for request in requests
        for person in emails.recipients(kind, request, owners=None)
    )
    queueing.enqueue_many_after_commit(
        queueing.enqueue_new_notifications_send, [notification.pk for notification in created]
    )
    return created


def drift_notifications_create(
    *, finding: DriftFinding, owners: Sequence[User], now: datetime
) -> list[Notification]:
    """Owe each owner (read before the transaction) an email about a new drift finding."""
    created = Notification.objects.bulk_create(
        Notification(
            finding=finding, kind=NotificationKind.DRIFT_FOUND, recipient=owner, created_at=now
        )
        for owner in owners
        if owner.email
    )
    queueing.enqueue_many_after_commit(
        queueing.enqueue_new_notifications_send, [notification.pk for notification in created]
    )
    return created


def review_notifications_create(
    *,
    kind: NotificationKind,
    review: AccessReview,
    owners: Sequence[User],
    now: datetime,
    occasion: str = "",
) -> list[Notification]:
    """Owe each owner (read before the transaction) an email about an access review; with an
    `occasion`, at most once per owner and occasion however often this runs."""
    created: list[Notification] = []
    for owner in owners:
        if not owner.email:
            continue
        try:
            with transaction.atomic():
                created.append(
                    Notification.objects.create(
                        review=review, kind=kind, recipient=owner, created_at=now, occasion=occasion
                    )
                )
        except IntegrityError:
            continue  # owed already, by an earlier or concurrent run
    queueing.enqueue_many_after_commit(
        queueing.enqueue_new_notifications_send, [notification.pk for notification in created]
    )
    return created


def _owe_once(
    kind: NotificationKind,
    request: DelegationRequest,
    person: User,
    now: datetime,
    occasion: str,
) -> Notification | None:
    # The unique constraint decides, not a read before the write: a concurrent run that owed it
    # first makes this insert fail, and the savepoint keeps the caller's transaction usable.
    try:
        with transaction.atomic():
            return Notification.objects.create(
                request=request, kind=kind, recipient=person, created_at=now, occasion=occasion
            )
    except IntegrityError:
        return None


def notification_send(*, notification_id: int, now: datetime | None = None) -> bool:
    """Send one owed email; False when it was sent already. Failures are recorded, then raised
    for the job to retry."""
    notification = Notification.objects.select_related(
        "recipient",
        "request__repository",
        "request__requester",
        "finding__repository",
        "review__repository",
    ).get(pk=notification_id)
    if notification.sent_at is not None:
        return False
    try:
        emails.message(notification).send()
    except Exception as error:
        Notification.objects.filter(pk=notification_id).update(
            attempts=F("attempts") + 1, last_error=str(error)[:500]
        )
        raise
    Notification.objects.filter(pk=notification_id, sent_at__isnull=True).update(
        sent_at=now or clock.now(), attempts=F("attempts") + 1, last_error=""
    )
    return True

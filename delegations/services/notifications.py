"""Owing and sending notification emails (the outbox)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import F

from .. import clock, emails, tasks
from ..models import DelegationRequest, Notification
from .state import enqueue_after_commit


def notifications_create(
    *, kind: str, request: DelegationRequest, now: datetime
) -> list[Notification]:
    """Owe an email to each person concerned. Call inside the change's transaction: the rows
    commit with the change, and the worker is asked to send them once it has committed."""
    created = Notification.objects.bulk_create(
        Notification(request=request, kind=kind, recipient=person, created_at=now)
        for person in emails.recipients(kind, request)
    )
    for notification in created:
        enqueue_after_commit(lambda pk=notification.pk: tasks.enqueue_notification(pk))
    return created


def notification_send(*, notification_id: int, now: datetime | None = None) -> bool:
    """Send one owed email; False when it was sent already. Failures are recorded, then raised
    for the job to retry."""
    notification = Notification.objects.select_related(
        "recipient", "request__repository", "request__requester"
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

"""Work whose job may have been lost (a crash of the web process, Redis or the worker), for the
cron sweeps to queue again."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q

from ..models import Delegation, DelegationRequest, Notification, PublishLease, RequestStatus


def waiting_repository_ids(*, now: datetime) -> list[int]:
    """Repositories with changes due to be published (approved requests, asked-for ends, their
    back-off over) and no live publish lease: nobody is working on them."""
    due = Q(publish_retry_at__isnull=True) | Q(publish_retry_at__lte=now)
    adding = DelegationRequest.objects.filter(
        due, status__in=[RequestStatus.APPROVED, RequestStatus.APPLYING]
    ).values_list("repository_id", flat=True)
    ending = Delegation.objects.ending().filter(due).values_list("repository_id", flat=True)
    leased = PublishLease.objects.filter(until__gte=now).values_list("repository_id", flat=True)
    return sorted((set(adding) | set(ending)) - set(leased))


def unsent_notification_ids(*, now: datetime, quiet_for: timedelta, max_attempts: int) -> list[int]:
    """Emails owed for `quiet_for` and not sent, that have attempts left."""
    return list(
        Notification.objects.filter(
            sent_at__isnull=True, created_at__lt=now - quiet_for, attempts__lt=max_attempts
        )
        .order_by("id")
        .values_list("id", flat=True)
    )

"""Work whose job may have been lost (a crash of the web process, Redis or the worker), for the
cron sweeps to queue again."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..models import Delegation, DelegationRequest, Notification, RequestStatus


def stalled_request_ids(*, now: datetime, quiet_for: timedelta) -> list[int]:
    """Approved requests not yet delegated, untouched for `quiet_for`."""
    return list(
        DelegationRequest.objects.filter(
            status__in=[RequestStatus.APPROVED, RequestStatus.APPLYING],
            updated_at__lt=now - quiet_for,
        )
        .order_by("id")
        .values_list("id", flat=True)
    )


def stalled_ending_ids(*, now: datetime, quiet_for: timedelta) -> list[int]:
    """Delegations whose end was asked `quiet_for` ago and not done."""
    return list(
        Delegation.objects.ending()
        .filter(ending_requested_at__lt=now - quiet_for)
        .order_by("id")
        .values_list("id", flat=True)
    )


def unsent_notification_ids(*, now: datetime, quiet_for: timedelta, max_attempts: int) -> list[int]:
    """Emails owed for `quiet_for` and not sent, that have attempts left."""
    return list(
        Notification.objects.filter(
            sent_at__isnull=True, created_at__lt=now - quiet_for, attempts__lt=max_attempts
        )
        .order_by("id")
        .values_list("id", flat=True)
    )

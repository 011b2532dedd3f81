"""Queueing again the work whose job was lost: a repository's waiting changes or an email whose
job a crash of the web process, Redis or the worker took with it. Publishing and sending are
idempotent, so queueing one that was only slow is safe; a job already on its way is not
doubled (`queueing`). Run by the cron scheduler (`cron`)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings

from .. import clock, queueing, selectors

logger = logging.getLogger(__name__)


def waiting_publishes_resume(*, now: datetime | None = None) -> list[int]:
    """Queue a publish for each repository whose changes are due and that nobody is publishing:
    its job was lost (Redis flushed, the web process killed before it queued it), its worker
    died (the lease ran out), or its back-off is over."""
    waiting = selectors.waiting_repository_ids(now=now or clock.now())
    queued = [pk for pk in waiting if queueing.enqueue_repository_publish(pk)]
    if queued:
        logger.info("queued publishes of repositories with waiting changes: %s", queued)
    return queued


def unsent_notifications_resend(*, now: datetime | None = None) -> list[int]:
    """Queue again the emails whose job was lost or gave up, up to a number of attempts."""
    unsent = selectors.unsent_notification_ids(
        now=now or clock.now(),
        quiet_for=_quiet_for(),
        max_attempts=settings.PORTAL_NOTIFICATION_MAX_ATTEMPTS,
    )
    return [pk for pk in unsent if queueing.enqueue_notification_send(pk)]


def _quiet_for() -> timedelta:
    return timedelta(seconds=settings.PORTAL_STALLED_AFTER_SECONDS)

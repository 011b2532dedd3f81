"""Queueing again the work whose job was lost: an approval, an end or an email whose job a
crash of the web process, Redis or the worker took with it. Applying, ending and sending are
idempotent, so queueing one that was only slow is safe; a job already on its way is not
doubled (`queueing`). Run every minute by the cron scheduler."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from django.conf import settings

from .. import clock, queueing, selectors

logger = logging.getLogger(__name__)


def stalled_requests_resume(*, now: datetime | None = None) -> list[int]:
    """Queue again the approved requests whose apply job was lost."""
    return _requeue(
        selectors.stalled_request_ids, queueing.enqueue_request_apply, "requests", now=now
    )


def stalled_endings_resume(*, now: datetime | None = None) -> list[int]:
    """Queue again the delegation ends whose job was lost."""
    return _requeue(
        selectors.stalled_ending_ids, queueing.enqueue_delegation_end, "delegation ends", now=now
    )


def unsent_notifications_resend(*, now: datetime | None = None) -> list[int]:
    """Queue again the emails whose job was lost or gave up, up to a number of attempts."""
    unsent = selectors.unsent_notification_ids(
        now=now or clock.now(),
        quiet_for=_quiet_for(),
        max_attempts=settings.PORTAL_NOTIFICATION_MAX_ATTEMPTS,
    )
    return [pk for pk in unsent if queueing.enqueue_notification_send(pk)]


class _StalledIds(Protocol):
    def __call__(self, *, now: datetime, quiet_for: timedelta) -> list[int]: ...


def _requeue(
    stalled_ids: _StalledIds,
    enqueue: Callable[[int], bool],
    what: str,
    *,
    now: datetime | None,
) -> list[int]:
    stalled = stalled_ids(now=now or clock.now(), quiet_for=_quiet_for())
    resumed = [item_id for item_id in stalled if enqueue(item_id)]
    if resumed:
        logger.warning("re-queued %s whose job was lost: %s", what, resumed)
    return resumed


def _quiet_for() -> timedelta:
    return timedelta(seconds=settings.PORTAL_STALLED_AFTER_SECONDS)

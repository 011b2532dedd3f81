"""django-rq jobs: ids in, one call out. Services enqueue them after their transaction commits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from functools import lru_cache

import django_rq
from django.conf import settings
from django.contrib.auth import get_user_model
from rq import Queue, Retry, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from . import clock, directory, selectors, services
from .notary import TransientNotaryError

QUEUE = "default"
logger = logging.getLogger(__name__)


def _retry() -> Retry:
    intervals = settings.PORTAL_JOB_RETRY_INTERVALS
    return Retry(max=len(intervals), interval=intervals)


# A job in one of these states will still run (or run again), so it must not be doubled.
_LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def apply_job_id(request_id: int) -> str:
    """One job ID per request, so that a lost job can be told from one that is on its way."""
    return f"apply-request-{request_id}"


def notification_job_id(notification_id: int) -> str:
    return f"send-notification-{notification_id}"


def _queue() -> Queue:
    return _queue_at(settings.RQ_QUEUES[QUEUE]["URL"])


@lru_cache(maxsize=4)
def _queue_at(url: str) -> Queue:
    # One queue, and so one Redis connection pool, per process: a new one per enqueue would open
    # a TCP connection and introduce itself to Redis each time (most of a submission's time).
    return django_rq.get_queue(QUEUE)


def _enqueue_once(func, argument: int, *, job_id: str) -> bool:
    """Queue `func(argument)` unless its job is queued, running or waiting to retry."""
    queue = _queue()
    try:
        if Job.fetch(job_id, connection=queue.connection).get_status() in _LIVE:
            return False
    except NoSuchJobError:
        pass
    queue.enqueue(func, argument, retry=_retry(), job_id=job_id)
    return True


def enqueue_apply(request_id: int) -> bool:
    return _enqueue_once(apply_request, request_id, job_id=apply_job_id(request_id))


def enqueue_notification(notification_id: int) -> bool:
    return _enqueue_once(
        send_notification, notification_id, job_id=notification_job_id(notification_id)
    )


def delegation_end_job_id(delegation_id: int) -> str:
    return f"end-delegation-{delegation_id}"


def enqueue_delegation_end(delegation_id: int) -> bool:
    return _enqueue_once(end_delegation, delegation_id, job_id=delegation_end_job_id(delegation_id))


def enqueue_trust_initialisation(repository_id: int, acting_user_id: int | None) -> Job:
    """Queue trust set-up: the worker is where repository keys are generated and unsealed."""
    return _queue().enqueue(initialise_trust, repository_id, acting_user_id)


def apply_request(request_id: int) -> None:
    """Apply an approved request; on the last attempt, any error fails it for people to see."""
    _attempt(
        lambda: services.request_apply(request_id=request_id),
        give_up=lambda reason: services.request_fail(request_id=request_id, reason=reason),
        doing="applying this delegation",
        subject=f"request {request_id}",
    )


def _attempt(work: Callable[[], object], *, give_up, doing: str, subject: str) -> None:
    """Run a job's Notary work. Errors are raised for RQ to retry while attempts are left; on
    the last one, `give_up` records a reason people can read, and an unexpected error is
    raised again so RQ keeps its traceback among the failed jobs for administrators."""
    try:
        work()
    except TransientNotaryError as error:
        if _retries_left():
            raise
        give_up(f"The Notary server kept failing, so the portal gave up: {error.message}")
    except Exception:
        if _retries_left():
            raise
        logger.exception("%s (%s) failed unexpectedly", doing, subject)
        give_up(
            f"The portal met an unexpected error while {doing}; administrators find the "
            "details among the failed jobs."
        )
        raise


def resume_stalled_requests() -> list[int]:
    """Queue again the approved requests whose job was lost (a crash of the web process before
    it queued the job, of Redis, or of the worker). Applying is idempotent, so this is safe."""
    return _requeue(selectors.stalled_request_ids, enqueue_apply, "requests whose apply job")


def _requeue(stalled_ids, enqueue, what: str) -> list[int]:
    quiet_for = timedelta(seconds=settings.PORTAL_STALLED_AFTER_SECONDS)
    resumed = [
        item_id for item_id in stalled_ids(now=clock.now(), quiet_for=quiet_for) if enqueue(item_id)
    ]
    if resumed:
        logger.warning("re-queued %s was lost: %s", what, resumed)
    return resumed


def resend_unsent_notifications() -> list[int]:
    """Queue again the emails whose job was lost or gave up, up to a number of attempts."""
    quiet_for = timedelta(seconds=settings.PORTAL_STALLED_AFTER_SECONDS)
    unsent = selectors.unsent_notification_ids(
        now=clock.now(),
        quiet_for=quiet_for,
        max_attempts=settings.PORTAL_NOTIFICATION_MAX_ATTEMPTS,
    )
    return [notification_id for notification_id in unsent if enqueue_notification(notification_id)]


def send_notification(notification_id: int) -> None:
    services.notification_send(notification_id=notification_id)


def initialise_trust(repository_id: int, acting_user_id: int | None) -> None:
    acting_user = get_user_model().objects.filter(pk=acting_user_id).first()
    services.repository_initialise_trust(repository_id=repository_id, acting_user=acting_user)


def _retries_left() -> bool:
    job = get_current_job()
    return job is not None and bool(job.retries_left)


def expire_pending_requests() -> list[int]:
    """End requests left pending too long (PORTAL_REQUEST_EXPIRY_DAYS), telling requesters."""
    return services.requests_expire()


def end_delegation(delegation_id: int) -> None:
    """Take a revoked or given-up delegation's key out; on the last attempt, any error gives
    the end up (the delegation stays active) and tells the people concerned."""
    _attempt(
        lambda: services.delegation_end(delegation_id=delegation_id),
        give_up=lambda reason: services.delegation_end_fail(
            delegation_id=delegation_id, reason=reason
        ),
        doing="taking the key out",
        subject=f"delegation {delegation_id}",
    )


def resume_stalled_endings() -> list[int]:
    """Queue again the delegation ends whose job was lost; ending is idempotent."""
    return _requeue(
        selectors.stalled_ending_ids, enqueue_delegation_end, "delegation ends whose job"
    )


def sync_directory() -> str:
    """End the delegations of members who left a team or were disabled in the directory."""
    try:
        return services.directory_sync().summary()
    except directory.DirectoryUnavailable as error:
        # The next scheduled run tries again; nothing was changed.
        logger.warning("directory sync skipped, the directory cannot be read: %s", error)
        return f"skipped: {error}"


def send_reminders() -> list[int]:
    """Owe the reminders due now: certificates about to expire, requests about to expire."""
    return services.reminders_send()

"""Queueing the worker's jobs: their IDs, and enqueueing once the change that asks for them has
committed.

Jobs are named by their dotted path (RQ imports the function in the worker), so this module does
not import `tasks`, whose job bodies call the services that call this module.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache

import django_rq
from django.conf import settings
from django.db import transaction
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

QUEUE = "default"
logger = logging.getLogger(__name__)

# The job bodies in `tasks`, each named after the service it calls.
REQUEST_APPLY_JOB = "delegations.tasks.request_apply_job"
DELEGATION_END_JOB = "delegations.tasks.delegation_end_job"
NOTIFICATION_SEND_JOB = "delegations.tasks.notification_send_job"
REPOSITORY_INITIALISE_TRUST_JOB = "delegations.tasks.repository_initialise_trust_job"

# A job in one of these states will still run (or run again), so it must not be doubled.
_LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def request_apply_job_id(request_id: int) -> str:
    """One job ID per request, so that a lost job can be told from one that is on its way."""
    return f"apply-request-{request_id}"


def notification_send_job_id(notification_id: int) -> str:
    return f"send-notification-{notification_id}"


def delegation_end_job_id(delegation_id: int) -> str:
    return f"end-delegation-{delegation_id}"


def enqueue_request_apply(request_id: int) -> bool:
    return _enqueue_once(REQUEST_APPLY_JOB, request_id, job_id=request_apply_job_id(request_id))


def enqueue_notification_send(notification_id: int) -> bool:
    return _enqueue_once(
        NOTIFICATION_SEND_JOB, notification_id, job_id=notification_send_job_id(notification_id)
    )


def enqueue_delegation_end(delegation_id: int) -> bool:
    return _enqueue_once(
        DELEGATION_END_JOB, delegation_id, job_id=delegation_end_job_id(delegation_id)
    )


def enqueue_repository_initialise_trust(repository_id: int, acting_user_id: int | None) -> Job:
    """Queue trust set-up: the worker is where repository keys are generated and unsealed."""
    return queue().enqueue(REPOSITORY_INITIALISE_TRUST_JOB, repository_id, acting_user_id)


def enqueue_after_commit(enqueue: Callable[[int], object], object_id: int) -> None:
    """`enqueue(object_id)` once the change is committed.

    The change stands even if Redis cannot take the job: the failure is logged instead of
    turning a committed decision into an error page, and the cron sweeps
    (`services.sweeps`) queue lost jobs again.
    """

    def enqueue_committed() -> None:
        enqueue(object_id)

    transaction.on_commit(enqueue_committed, robust=True)


def queue() -> Queue:
    return _queue_at(settings.RQ_QUEUES[QUEUE]["URL"])


@lru_cache(maxsize=4)
def _queue_at(url: str) -> Queue:
    # One queue, and so one Redis connection pool, per process: a new one per enqueue would open
    # a TCP connection and introduce itself to Redis each time (most of a submission's time).
    return django_rq.get_queue(QUEUE)


def _retry() -> Retry:
    intervals = settings.PORTAL_JOB_RETRY_INTERVALS
    return Retry(max=len(intervals), interval=intervals)


def _enqueue_once(job: str, argument: int, *, job_id: str) -> bool:
    """Queue `job(argument)` unless its job is queued, running or waiting to retry."""
    target = queue()
    try:
        if Job.fetch(job_id, connection=target.connection).get_status() in _LIVE:
            return False
    except NoSuchJobError:
        pass
    target.enqueue(job, argument, retry=_retry(), job_id=job_id)
    return True

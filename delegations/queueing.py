"""Queueing the worker's jobs: their IDs, and enqueueing once the change that asks for them has
committed.

Jobs are named by their dotted path (RQ imports the function in the worker), so this module does
not import `tasks`, whose job bodies call the services that call this module.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import django_rq
from django.conf import settings
from django.db import transaction
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.worker import Worker

from .monitoring.logs import current_request_id

QUEUE = "default"
logger = logging.getLogger(__name__)

# The job bodies in `tasks`, each named after the service it calls.
REPOSITORY_PUBLISH_JOB = "delegations.tasks.repository_publish_job"
NOTIFICATION_SEND_JOB = "delegations.tasks.notification_send_job"
REPOSITORY_INITIALISE_TRUST_JOB = "delegations.tasks.repository_initialise_trust_job"
TEAM_ACCESS_GRANT_JOB = "delegations.tasks.team_access_grant_job"
ROOT_KEY_HANDOVER_JOB = "delegations.tasks.root_key_handover_prepare_job"

# The repositories whose publish `publishes_gathered` will queue, while one is open.
_gathered: ContextVar[set[int] | None] = ContextVar("gathered_publishes", default=None)

# How long the marker of a queued publish lives: past a day, the job is surely gone.
_MARKER_SECONDS = 86400

# A job in one of these states will still run (or run again), so it must not be doubled.
_LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def notification_send_job_id(notification_id: int) -> str:
    return f"send-notification-{notification_id}"


def enqueue_repository_publish(repository_id: int) -> bool:
    """Queue a publish of the repository's waiting changes, unless one is queued and not started
    yet: that one will find this change too, as it was committed before this was called.

    A started one may have collected its batch already, so another is queued; the lease makes
    it wait its turn (`services.publish_lease`). Unlike the other jobs, a publish has no RQ
    retries: its changes keep their own back-off in the database, and the sweep queues the
    repository again when they are due, so a lost or flushed queue loses nothing.
    """
    target = queue()
    marker = f"portal:publish-queued:{repository_id}"
    queued = target.connection.get(marker)
    if queued is not None:
        try:
            job_id = queued.decode() if isinstance(queued, bytes) else queued
            job = Job.fetch(job_id, connection=target.connection, serializer=target.serializer)
            if job.get_status() in {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}:
                return False
        except NoSuchJobError:
            pass
    job = target.enqueue(
        REPOSITORY_PUBLISH_JOB,
        repository_id,
        job_id=f"publish-repository-{repository_id}-{uuid.uuid4().hex[:12]}",
        # Ahead of the emails the same decisions queued: signing rights first, mail after.
        at_front=True,
        meta=_meta(),
    )
    target.connection.set(marker, job.id, ex=_MARKER_SECONDS)
    return True


def enqueue_notification_send(notification_id: int) -> bool:
    return _enqueue_once(
        NOTIFICATION_SEND_JOB, notification_id, job_id=notification_send_job_id(notification_id)
    )


def enqueue_new_notifications_send(notification_ids: list[int]) -> None:
    """Queue the send jobs of notifications just created, in one round trip to Redis: they
    cannot have a job yet, so there is nothing to check first."""
    target = queue()
    with target.connection.pipeline() as pipeline:
        target.enqueue_many(
            [
                Queue.prepare_data(
                    NOTIFICATION_SEND_JOB,
                    (notification_id,),
                    job_id=notification_send_job_id(notification_id),
                    retry=_retry(),
                    meta=_meta(),
                )
                for notification_id in notification_ids
            ],
            pipeline=pipeline,
        )
        pipeline.execute()


def enqueue_many_after_commit(enqueue: Callable[[list[int]], object], ids: list[int]) -> None:
    """`enqueue(ids)` once the change is committed; failures are logged, as for one."""

    def enqueue_committed() -> None:
        enqueue(ids)

    if ids:
        transaction.on_commit(enqueue_committed, robust=True)


def enqueue_team_access_grant(grant_id: int) -> bool:
    """Queue making sure of a team's DTR access, unless its job is on its way already."""
    return _enqueue_once(TEAM_ACCESS_GRANT_JOB, grant_id, job_id=f"team-access-{grant_id}")


def enqueue_root_key_handover(handover_id: int) -> bool:
    """Queue writing a root key file: only the worker can open the sealed key and passphrase."""
    return _enqueue_once(ROOT_KEY_HANDOVER_JOB, handover_id, job_id=f"root-key-{handover_id}")


def enqueue_repository_initialise_trust(repository_id: int, acting_user_id: int | None) -> Job:
    """Queue trust set-up: the worker is where repository keys are generated and unsealed."""
    return queue().enqueue(
        REPOSITORY_INITIALISE_TRUST_JOB, repository_id, acting_user_id, meta=_meta()
    )


@contextmanager
def publishes_gathered() -> Iterator[None]:
    """Within this, publishes queued after commit are gathered and queued once per repository
    on the way out: a bulk approval of a hundred requests is then one job and one publish,
    instead of a first publish racing the approvals still being made. If the process dies
    before the end, the sweep queues the repositories (their changes are committed)."""
    if _gathered.get() is not None:
        yield  # the outer gathering queues them
        return
    gathered: set[int] = set()
    token = _gathered.set(gathered)
    try:
        yield
    finally:
        _gathered.reset(token)
        for repository_id in sorted(gathered):
            try:
                enqueue_repository_publish(repository_id)
            except Exception:
                logger.exception("could not queue the publish of repository %s", repository_id)


def enqueue_after_commit(enqueue: Callable[[int], object], object_id: int) -> None:
    """`enqueue(object_id)` once the change is committed.

    The change stands even if Redis cannot take the job: the failure is logged instead of
    turning a committed decision into an error page, and the cron sweeps
    (`services.sweeps`) queue lost jobs again.
    """

    def enqueue_committed() -> None:
        gathered = _gathered.get()
        if gathered is not None and enqueue is enqueue_repository_publish:
            gathered.add(object_id)
            return
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


def _meta() -> dict[str, str]:
    """What a job carries from where it was queued: the web request's ID, which the worker logs
    under (`monitoring.logs`), so a decision and the work it started are found together."""
    request_id = current_request_id()
    return {"request_id": request_id} if request_id else {}


def _enqueue_once(job: str, argument: int, *, job_id: str) -> bool:
    """Queue `job(argument)` unless its job is queued, running or waiting to retry."""
    target = queue()
    try:
        existing = Job.fetch(job_id, connection=target.connection, serializer=target.serializer)
        status = existing.get_status()
        if status in _LIVE and (status != JobStatus.STARTED or _worker_alive(existing)):
            return False
    except NoSuchJobError:
        pass
    target.enqueue(job, argument, retry=_retry(), job_id=job_id, meta=_meta())
    return True


def _worker_alive(job: Job) -> bool:
    """Whether the worker that started `job` still runs it: RQ keeps a worker's key in Redis
    (for minutes after a SIGKILL), but a working worker also beats at least every
    `job_monitoring_interval`; two missed beats and it is dead. Without this, a job started by
    a killed worker counts as on its way until RQ's own cleanup, about ten minutes later."""
    if not job.worker_name:
        return False
    worker = Worker.find_by_key(
        Worker.redis_worker_namespace_prefix + job.worker_name, connection=job.connection
    )
    if worker is None or worker.last_heartbeat is None:
        return False
    silence = datetime.now(UTC) - worker.last_heartbeat.replace(tzinfo=UTC)
    return silence < timedelta(seconds=2 * worker.job_monitoring_interval + 30)

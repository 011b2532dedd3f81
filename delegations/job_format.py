"""Jobs are kept in Redis as JSON, never as pickle.

Loading a pickle runs whatever code its bytes name, so anyone able to write to Redis could run
code in the worker, the one process that holds the keys unsealing every targets key. JSON holds
only data, and the portal's jobs need no more: they take IDs and return text, numbers or lists
of them.

The format is the queue's (`SERIALIZER` in `RQ_QUEUES`), and every reader and writer takes it
from there: `queueing` through django-rq's queue, `manage.py rqworker` (ours, whose default is
the queue's format where django-rq's is pickle) and `manage.py rqcron` (ours, whose jobs go
through that queue where RQ's would be pickled). A job written as pickle, such as one queued
before an upgrade, fails to load in the worker instead of running; its work is recorded in the
database, and the sweeps queue it again in the new format.
"""

from __future__ import annotations

import logging
from typing import Any

import django_rq
from django.conf import settings
from django_rq.cron import DjangoCronScheduler
from rq import cron_job_registry
from rq.cron import CronJob
from rq.defaults import DEFAULT_CRON_JOB_HISTORY_LIMIT, DEFAULT_CRON_JOB_HISTORY_TTL
from rq.job import Job

logger = logging.getLogger(__name__)


def job_serializer_path(queue_name: str) -> str:
    """The dotted path of the serializer the queue's jobs are written with."""
    return str(settings.RQ_QUEUES[queue_name]["SERIALIZER"])


class QueueFormatCronJob(CronJob):
    """RQ's cron job, enqueued through django-rq's queue so it is written in the queue's format
    (RQ's own builds a plain queue, which pickles)."""

    def enqueue(self, connection: Any) -> Job:
        if not self.func:
            raise ValueError(f"The cron job {self.name} has no function to enqueue")
        queue = django_rq.get_queue(self.queue_name, connection=connection)
        # As RQ's: the job and its place in the cron history (the dashboard's) in one round trip.
        with connection.pipeline() as pipeline:
            job = queue.enqueue(
                self.func, args=self.args, kwargs=self.kwargs, **self.job_options, pipeline=pipeline
            )
            assert job.enqueued_at is not None
            enqueued = job.enqueued_at.timestamp()
            pipeline.zadd(self.job_history_key, {job.id: enqueued})
            pipeline.zremrangebyrank(self.job_history_key, 0, -(DEFAULT_CRON_JOB_HISTORY_LIMIT + 1))
            pipeline.expire(self.job_history_key, DEFAULT_CRON_JOB_HISTORY_TTL)
            cron_job_registry.add(self.name, pipeline, enqueue_timestamp=enqueued)
            pipeline.execute()
        logger.info("Queued the cron job %s on %s", self.name, self.queue_name)
        return job


class QueueFormatCronScheduler(DjangoCronScheduler):
    """django-rq's cron scheduler, whose jobs are written in their queue's format."""

    def register(self, *args: Any, **kwargs: Any) -> CronJob:
        cron_job = super().register(*args, **kwargs)
        # RQ builds the cron job itself; ours differs only in how it is enqueued.
        cron_job.__class__ = QueueFormatCronJob
        return cron_job

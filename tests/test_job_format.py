"""Jobs are JSON in Redis, never pickle (`delegations.job_format`): what the web process and the
cron scheduler write, and what a real `manage.py rqworker` agrees to read."""

from __future__ import annotations

import json
import pickle
import time
import zlib
from pathlib import Path

import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer, PickleSerializer

from delegations import queueing
from delegations.job_format import QueueFormatCronScheduler
from delegations.management.commands import rqworker
from delegations.monitoring.logs import request_id_set

pytestmark = pytest.mark.services


def stored(job_id: str, connection) -> tuple[object, object]:
    """A job's arguments and meta as Redis holds them, read without RQ."""
    data = connection.hget(f"rq:job:{job_id}", "data")
    meta = connection.hget(f"rq:job:{job_id}", "meta")
    return json.loads(zlib.decompress(data)), json.loads(meta) if meta else None


def test_a_job_the_portal_queues_is_written_as_json(rq_queue) -> None:
    with request_id_set("req-41"):
        assert queueing.enqueue_notification_send(41)

    job_id = queueing.notification_send_job_id(41)
    (function, instance, args, kwargs), meta = stored(job_id, rq_queue.connection)
    assert (function, instance, args, kwargs) == (queueing.NOTIFICATION_SEND_JOB, None, [41], {})
    assert meta == {"request_id": "req-41"}
    # Asking again reads the job back in the same format, and finds it queued.
    assert not queueing.enqueue_notification_send(41)


@pytest.mark.django_db
def test_every_periodic_job_is_queued_as_json_and_its_result_stored_as_json(
    rq_queue, run_jobs
) -> None:
    scheduler = QueueFormatCronScheduler()
    scheduler.load_config_from_file("delegations.cron")
    due = scheduler.enqueue_jobs()
    assert {cron_job.name for cron_job in due} >= {
        "resume-waiting-publishes",
        "send-reminders",
        "audit-checkpoint",
    }
    job_ids = rq_queue.get_job_ids()
    assert len(job_ids) == len(due)
    for job_id in job_ids:
        (function, _, _, _), _ = stored(job_id, rq_queue.connection)
        assert function.startswith("delegations.tasks.")
    # The dashboard's history of each cron job still records what it queued.
    assert rq_queue.connection.zcard("rq:cron_job:send-reminders:jobs") == 1

    run_jobs()
    for job_id in job_ids:
        job = Job.fetch(job_id, connection=rq_queue.connection, serializer=JSONSerializer)
        assert job.get_status() == JobStatus.FINISHED, job.exc_info
        json.dumps(job.return_value())


def test_the_worker_command_reads_the_queues_format_unless_told_otherwise() -> None:
    parser = rqworker.Command().create_parser("manage.py", "rqworker")
    assert parser.parse_args(["default"]).serializer == "rq.serializers.JSONSerializer"
    assert parser.parse_args(["default", "--serializer", "pickle"]).serializer == "pickle"


class _TouchesWhenLoaded:
    """What an attacker able to write to Redis would put in a pickled job: loading it runs code
    (here, creating a file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_pickled_job_written_into_redis_is_refused_by_the_worker_and_runs_nothing(
    rq_queue, rq_worker, tmp_path
) -> None:
    marker = tmp_path / "pickle-ran"
    pickled = Queue("default", connection=rq_queue.connection, serializer=PickleSerializer)
    planted = pickled.enqueue(queueing.NOTIFICATION_SEND_JOB, _TouchesWhenLoaded(marker))
    after = queueing.queue().enqueue("delegations.tasks.requests_expire_job")

    def status(job: Job) -> JobStatus:
        return Job.fetch(
            job.id, connection=rq_queue.connection, serializer=JSONSerializer
        ).get_status()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and status(after) != JobStatus.FINISHED:
        time.sleep(0.1)
    assert status(after) == JobStatus.FINISHED  # the worker went on to the next job
    assert status(planted) == JobStatus.FAILED
    assert not marker.exists()

    # The payload was real: loading it as pickle does what JSON refused to.
    planted_data = rq_queue.connection.hget(f"rq:job:{planted.id}", "data")
    pickle.loads(zlib.decompress(planted_data))  # noqa: S301 (the point: this is what runs code)
    assert marker.exists()

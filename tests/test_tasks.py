"""The jobs around the workflow: a lost apply job is found and queued again, never doubled."""

import pytest
from rq.job import Job, JobStatus

from delegations import services, tasks
from delegations.models import RequestStatus
from stack.processes import free_port
from tests.factories import submit_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved_without_a_job(repository, people, rq_queue):
    """An approval whose job never reached Redis (its on-commit callback never runs here)."""
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=people["alice"])
    assert rq_queue.count == 0
    return request


def test_a_lost_apply_job_is_queued_once_and_applied(
    approved_without_a_job, settings, run_jobs, django_capture_on_commit_callbacks
):
    settings.PORTAL_STALLED_AFTER_SECONDS = 0
    request = approved_without_a_job

    assert tasks.resume_stalled_requests() == [request.pk]
    assert tasks.resume_stalled_requests() == []  # its job is queued now: not doubled

    with django_capture_on_commit_callbacks(execute=True):
        run_jobs()
    request.refresh_from_db()
    assert request.status == RequestStatus.DELEGATED
    assert tasks.resume_stalled_requests() == []


def test_recent_approvals_are_left_to_their_own_job(approved_without_a_job, settings):
    settings.PORTAL_STALLED_AFTER_SECONDS = 3600
    assert tasks.resume_stalled_requests() == []


def test_a_job_waiting_to_retry_is_not_doubled(
    approved_without_a_job, repository, settings, rq_queue, run_jobs
):
    settings.PORTAL_STALLED_AFTER_SECONDS = 0
    repository.notary_url = f"http://127.0.0.1:{free_port()}"
    repository.save(update_fields=["notary_url"])
    assert tasks.enqueue_apply(approved_without_a_job.pk)

    run_jobs()  # the Notary server is unreachable: the job is scheduled for a retry

    job = Job.fetch(tasks.apply_job_id(approved_without_a_job.pk), connection=rq_queue.connection)
    assert job.get_status() == JobStatus.SCHEDULED
    assert tasks.resume_stalled_requests() == []

"""The jobs around the workflow: a lost apply job is found and queued again, never doubled."""

import pytest
from django.core import mail
from rq.job import Job, JobStatus

from delegations import queueing, services
from delegations.models import Notification, RequestStatus
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

    assert services.stalled_requests_resume() == [request.pk]
    assert services.stalled_requests_resume() == []  # its job is queued now: not doubled

    with django_capture_on_commit_callbacks(execute=True):
        run_jobs()
    request.refresh_from_db()
    assert request.status == RequestStatus.DELEGATED
    assert services.stalled_requests_resume() == []


def test_recent_approvals_are_left_to_their_own_job(approved_without_a_job, settings):
    settings.PORTAL_STALLED_AFTER_SECONDS = 3600
    assert services.stalled_requests_resume() == []


def test_a_job_waiting_to_retry_is_not_doubled(
    approved_without_a_job, repository, settings, rq_queue, run_jobs
):
    settings.PORTAL_STALLED_AFTER_SECONDS = 0
    repository.notary_url = f"http://127.0.0.1:{free_port()}"
    repository.save(update_fields=["notary_url"])
    assert queueing.enqueue_request_apply(approved_without_a_job.pk)

    run_jobs()  # the Notary server is unreachable: the job is scheduled for a retry

    job = Job.fetch(
        queueing.request_apply_job_id(approved_without_a_job.pk), connection=rq_queue.connection
    )
    assert job.get_status() == JobStatus.SCHEDULED
    assert services.stalled_requests_resume() == []


def test_emails_whose_job_was_lost_are_sent_by_the_sweep_once(
    repository, people, settings, rq_queue, run_jobs
):
    settings.PORTAL_STALLED_AFTER_SECONDS = 0
    request = submit_request(repository, people["bob"])  # its send jobs never reach Redis here
    owed = Notification.objects.filter(request=request)
    assert sorted(n.recipient.username for n in owed) == ["alice", "olga"]
    assert rq_queue.count == 0

    assert len(services.unsent_notifications_resend()) == 2
    assert services.unsent_notifications_resend() == []  # queued already: not doubled
    run_jobs()

    assert sorted(message.to[0] for message in mail.outbox) == [
        "alice@example.org",
        "olga@example.org",
    ]
    assert all(n.sent_at is not None for n in owed.all())
    assert services.unsent_notifications_resend() == []


def test_an_email_that_keeps_failing_is_given_up_after_its_attempts(
    repository, people, settings, rq_queue
):
    settings.PORTAL_STALLED_AFTER_SECONDS = 0
    settings.PORTAL_NOTIFICATION_MAX_ATTEMPTS = 3
    request = submit_request(repository, people["bob"])
    Notification.objects.filter(request=request).update(attempts=3, last_error="550 no mailbox")
    assert services.unsent_notifications_resend() == []

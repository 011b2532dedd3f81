"""The jobs around the workflow: lost work is found and queued again, never doubled."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from rq.job import JobStatus

from delegations import queueing, services
from delegations.models import DelegationRequest, Notification, RequestStatus
from delegations.services.publish_lease import lease_acquire
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


def test_a_lost_publish_job_is_queued_once_and_applied(
    approved_without_a_job, repository, run_jobs, django_capture_on_commit_callbacks
):
    request = approved_without_a_job

    assert services.waiting_publishes_resume() == [repository.pk]
    assert services.waiting_publishes_resume() == []  # its job is queued now: not doubled

    with django_capture_on_commit_callbacks(execute=True):
        run_jobs()
    request.refresh_from_db()
    assert request.status == RequestStatus.DELEGATED
    assert services.waiting_publishes_resume() == []


def test_a_repository_being_published_is_left_to_its_lease_holder(
    approved_without_a_job, repository
):
    lease = lease_acquire(repository_id=repository.pk, holder="another")
    assert lease is not None
    assert services.waiting_publishes_resume() == []
    # A second run finds the lease taken: it asks the holder to look again, and does nothing.
    assert services.repository_publish(repository_id=repository.pk).held_elsewhere

    # The holder dies: once its lease has run out, the repository is queued again.
    later = timezone.now() + timedelta(seconds=60)
    assert services.waiting_publishes_resume(now=later) == [repository.pk]


def test_changes_waiting_their_back_off_are_not_queued_before_it(
    approved_without_a_job, repository, settings
):
    repository.notary_url = f"http://127.0.0.1:{free_port()}"
    repository.save(update_fields=["notary_url"])

    run = services.repository_publish(repository_id=repository.pk)

    assert run.waiting == [approved_without_a_job.pk]
    assert services.waiting_publishes_resume() == []
    retry_at = DelegationRequest.objects.get(pk=approved_without_a_job.pk).publish_retry_at
    assert services.waiting_publishes_resume(now=retry_at) == [repository.pk]


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


def test_an_email_job_started_by_a_dead_worker_is_queued_again(
    repository, people, settings, rq_queue
):
    settings.PORTAL_STALLED_AFTER_SECONDS = 0
    request = submit_request(repository, people["bob"])
    owed = Notification.objects.filter(request=request).first()
    assert queueing.enqueue_notification_send(owed.pk)
    job = rq_queue.fetch_job(queueing.notification_send_job_id(owed.pk))
    # A worker took it and was SIGKILLed: RQ still says "started", and no such worker beats.
    job.set_status(JobStatus.STARTED)
    job.worker_name = "killed-worker"
    job.save()

    assert owed.pk in services.unsent_notifications_resend()

"""Notifications through Django's SMTP backend to a real SMTP server (aiosmtpd on loopback), sent
by the notification job on a real RQ worker: what arrives, and what an outage leaves behind.
"""

from __future__ import annotations

import re

import pytest
from rq import SimpleWorker
from rq.job import Job, JobStatus

from delegations import queueing
from delegations.models import Notification
from stack.processes import LOOPBACK, free_port
from tests.conftest import wait_for
from tests.factories import submit_request

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def use_smtp(settings, port: int) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = LOOPBACK
    settings.EMAIL_PORT = port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5


def owed_to(request, username: str) -> Notification:
    return Notification.objects.get(request=request, recipient__username=username)


def test_a_notification_arrives_as_plain_text_and_html_with_absolute_links(
    repository, people, settings, smtp_server, rq_queue, run_jobs
):
    use_smtp(settings, smtp_server.port)
    smtp_server.clear()
    request = submit_request(repository, people["bob"])  # owes alice and olga an email

    assert queueing.enqueue_notification_send(owed_to(request, "alice").pk)
    run_jobs()

    ((recipients, message),) = smtp_server.messages()
    assert recipients == ["alice@example.org"]
    assert message["To"] == "alice@example.org"
    assert message["From"] == settings.DEFAULT_FROM_EMAIL
    assert message["Subject"] == (
        f"[{repository.path}] bob asks to sign as team qa (request #{request.pk})"
    )
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    request_url = f"http://portal.test/requests/{request.pk}/"
    assert request_url in text
    assert f'href="{request_url}"' in html
    assert "<nginx> & friends" in text
    assert "&lt;nginx&gt; &amp; friends" in html
    assert all(
        link.startswith("http://portal.test") for link in re.findall(r'href="([^"]*)"', html)
    )
    assert owed_to(request, "alice").sent_at is not None
    assert owed_to(request, "olga").sent_at is None  # its job was not run


@pytest.mark.parametrize("outage", ["451 from the relay", "nothing listening"])
def test_an_smtp_outage_is_retried_by_the_job_and_the_mail_goes_out_later(
    repository, people, settings, smtp_server, rq_queue, run_jobs, outage
):
    smtp_server.clear()
    smtp_server.deferring = True
    use_smtp(settings, smtp_server.port if outage.startswith("451") else free_port())
    request = submit_request(repository, people["bob"])  # the workflow does not wait for mail
    notification = owed_to(request, "alice")

    queueing.enqueue_notification_send(notification.pk)
    run_jobs()

    notification.refresh_from_db()
    assert notification.sent_at is None
    assert notification.attempts == 1
    expected_error = "451" if outage.startswith("451") else "refused"
    assert expected_error in notification.last_error.lower()
    job = Job.fetch(
        queueing.notification_send_job_id(notification.pk),
        connection=rq_queue.connection,
        serializer=rq_queue.serializer,
    )
    assert job.get_status() == JobStatus.SCHEDULED  # RQ retries it

    smtp_server.deferring = False
    use_smtp(settings, smtp_server.port)

    def retried() -> bool:
        # The worker's scheduler queues the retry once its interval (1 s in the tests) is over.
        SimpleWorker(
            [rq_queue], connection=rq_queue.connection, serializer=rq_queue.serializer
        ).work(burst=True, with_scheduler=True)
        return Notification.objects.get(pk=notification.pk).sent_at is not None

    wait_for(retried, what="the retried job to send the mail", timeout=15)
    notification.refresh_from_db()
    assert notification.attempts == 2
    assert notification.last_error == ""
    assert [recipients for recipients, _ in smtp_server.messages()] == [["alice@example.org"]]

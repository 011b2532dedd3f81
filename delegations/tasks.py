"""django-rq jobs: ids in, one call out. Services enqueue them after their transaction commits."""

from __future__ import annotations

import django_rq
from django.conf import settings
from django.contrib.auth import get_user_model
from rq import Retry, get_current_job

from . import emails, services
from .notary import TransientNotaryError

QUEUE = "default"


def _retry() -> Retry:
    intervals = settings.PORTAL_JOB_RETRY_INTERVALS
    return Retry(max=len(intervals), interval=intervals)


def enqueue_apply(request_id: int) -> None:
    django_rq.get_queue(QUEUE).enqueue(apply_request, request_id, retry=_retry())


def enqueue_notification(notification: str, request_id: int) -> None:
    django_rq.get_queue(QUEUE).enqueue(send_notification, notification, request_id, retry=_retry())


def enqueue_trust_initialisation(repository_id: int, acting_user_id: int | None) -> None:
    django_rq.get_queue(QUEUE).enqueue(initialise_trust, repository_id, acting_user_id)


def apply_request(request_id: int) -> None:
    try:
        services.request_apply(request_id=request_id)
    except TransientNotaryError as error:
        if _retries_left():
            raise
        services.request_fail(
            request_id=request_id,
            reason=f"The Notary server kept failing, so the portal gave up: {error.message}",
        )


def send_notification(notification: str, request_id: int) -> None:
    emails.send(notification, request_id=request_id)


def initialise_trust(repository_id: int, acting_user_id: int | None) -> None:
    acting_user = get_user_model().objects.filter(pk=acting_user_id).first()
    services.repository_initialise_trust(repository_id=repository_id, acting_user=acting_user)


def _retries_left() -> bool:
    job = get_current_job()
    return job is not None and bool(job.retries_left)

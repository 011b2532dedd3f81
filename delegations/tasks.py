"""django-rq job bodies: ids in, one service call out, each named after the service it calls.

Services queue them through `queueing` (by dotted name, once their transaction has committed);
the periodic ones are registered in `cron`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.contrib.auth import get_user_model
from rq import get_current_job

from . import directory, services
from .notary import TransientNotaryError

logger = logging.getLogger(__name__)


def request_apply_job(request_id: int) -> None:
    """Apply an approved request; on the last attempt, any error fails it for people to see."""
    _attempt(
        lambda: services.request_apply(request_id=request_id),
        give_up=lambda reason: services.request_fail(request_id=request_id, reason=reason),
        doing="applying this delegation",
        subject=f"request {request_id}",
    )


def delegation_end_job(delegation_id: int) -> None:
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


def notification_send_job(notification_id: int) -> None:
    services.notification_send(notification_id=notification_id)


def repository_initialise_trust_job(repository_id: int, acting_user_id: int | None) -> None:
    acting_user = (
        get_user_model().objects.filter(pk=acting_user_id).first() if acting_user_id else None
    )
    services.repository_initialise_trust(repository_id=repository_id, acting_user=acting_user)


# -- periodic (see `cron`) ------------------------------------------------------------------------


def stalled_requests_resume_job() -> list[int]:
    return services.stalled_requests_resume()


def stalled_endings_resume_job() -> list[int]:
    return services.stalled_endings_resume()


def unsent_notifications_resend_job() -> list[int]:
    return services.unsent_notifications_resend()


def requests_expire_job() -> list[int]:
    """End requests left pending too long (PORTAL_REQUEST_EXPIRY_DAYS), telling requesters."""
    return services.requests_expire()


def reminders_send_job() -> list[int]:
    """Owe the reminders due now: certificates about to expire, requests about to expire."""
    return services.reminders_send()


def directory_sync_job() -> str:
    """End the delegations of members who left a team or were disabled in the directory."""
    try:
        return services.directory_sync().summary()
    except directory.DirectoryUnavailable as error:
        # The next scheduled run tries again; nothing was changed.
        logger.warning("directory sync skipped, the directory cannot be read: %s", error)
        return f"skipped: {error}"


# -- attempts -------------------------------------------------------------------------------------


def _attempt(
    work: Callable[[], object], *, give_up: Callable[[str], object], doing: str, subject: str
) -> None:
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


def _retries_left() -> bool:
    job = get_current_job()
    return job is not None and bool(job.retries_left)

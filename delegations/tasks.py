"""django-rq job bodies: ids in, one service call out, each named after the service it calls.

Services queue them through `queueing` (by dotted name, once their transaction has committed);
the periodic ones are registered in `cron`.
"""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model

from . import directory, services
from .monitoring.logs import under_queued_request_id

logger = logging.getLogger(__name__)


@under_queued_request_id
def repository_publish_job(repository_id: int) -> str:
    """Publish the repository's waiting changes (`services.publishing`). Errors the run does
    not handle itself are raised for RQ to keep among the failed jobs; the changes wait their
    back-off and the sweep queues the repository again."""
    return services.repository_publish(repository_id=repository_id).summary()


@under_queued_request_id
def notification_send_job(notification_id: int) -> None:
    services.notification_send(notification_id=notification_id)


@under_queued_request_id
def repository_initialise_trust_job(repository_id: int, acting_user_id: int | None) -> None:
    acting_user = (
        get_user_model().objects.filter(pk=acting_user_id).first() if acting_user_id else None
    )
    services.repository_initialise_trust(repository_id=repository_id, acting_user=acting_user)


@under_queued_request_id
def team_access_grant_job(grant_id: int) -> str:
    """Give a delegated member's team push access in DTR (`services.team_access`)."""
    grant = services.team_access_grant(grant_id=grant_id)
    return grant.status if grant is not None else "removed"


@under_queued_request_id
def root_key_handover_prepare_job(handover_id: int) -> str:
    """Write a repository's root key into a key file for its owners (`services.root_keys`)."""
    handover = services.root_key_handover_prepare(handover_id=handover_id)
    return handover.status if handover is not None else "not preparing"


# -- periodic (see `cron`) ------------------------------------------------------------------------


@under_queued_request_id
def waiting_publishes_resume_job() -> list[int]:
    """Queue a publish for each repository with changes due and nobody publishing them."""
    return services.waiting_publishes_resume()


@under_queued_request_id
def team_access_resume_job() -> list[int]:
    """Queue the DTR grants whose back-off is over or whose job was lost."""
    return services.team_access_resume()


@under_queued_request_id
def root_key_handovers_sweep_job() -> list[int]:
    return services.root_key_handovers_sweep()


@under_queued_request_id
def audit_checkpoint_job() -> int:
    return int(services.audit_checkpoint_issue()["events"])


@under_queued_request_id
def unsent_notifications_resend_job() -> list[int]:
    return services.unsent_notifications_resend()


@under_queued_request_id
def requests_expire_job() -> list[int]:
    """End requests left pending too long (PORTAL_REQUEST_EXPIRY_DAYS), telling requesters."""
    return services.requests_expire()


@under_queued_request_id
def delegations_expire_job() -> list[int]:
    """End the delegations whose last day is over or whose certificate expired."""
    return services.delegations_expire()


@under_queued_request_id
def reviews_run_job() -> dict[str, list[int]]:
    """Open the access reviews due, remind owners of deadlines, close those past them."""
    return services.reviews_run()


@under_queued_request_id
def reminders_send_job() -> list[int]:
    """Owe the reminders due now: certificates about to expire, delegations' last days coming,
    requests about to expire."""
    return services.reminders_send()


@under_queued_request_id
def repositories_reconcile_job() -> list[str]:
    """Compare every repository's trust data with the portal's delegations (the drift report)."""
    return [report.summary() for report in services.repositories_reconcile()]


@under_queued_request_id
def directory_sync_job() -> str:
    """End the delegations of members who left a team or were disabled in the directory."""
    try:
        return services.directory_sync().summary()
    except directory.DirectoryUnavailable as error:
        # The next scheduled run tries again; nothing was changed.
        logger.warning("directory sync skipped, the directory cannot be read: %s", error)
        return f"skipped: {error}"

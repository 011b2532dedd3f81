"""Giving a delegated member's team push access to the repository in DTR (product.md W4).

A signature is no use to a member who cannot push the image it signs, so once a publish records
a team's member as delegated, the worker makes sure the team has at least `read-write` on the
repository (never lowering an `admin` grant). It is a step of its own after the publish: DTR
failing does not undo the signing delegation. An outage is retried with a back-off, for as long
as it lasts; a refusal (the service account lacking admin, a team DTR does not know) fails the
grant with DTR's reason, told to the member and the owners, and is not retried until the next
delegation of the team asks again.

Only when `PORTAL_DTR_USERNAME` is set: otherwise the portal leaves DTR's access alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction

from .. import clock, dtr, queueing, selectors
from ..audit.chain import audit_record
from ..exceptions import InvalidInput, ServiceUnavailable
from ..models import (
    AuditAction,
    Delegation,
    DelegationRequest,
    NotificationKind,
    Repository,
    TeamAccessGrant,
    TeamAccessStatus,
)
from .accounts import repository_owners_or_known
from .notifications import notifications_create

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

# The back-off after a transient failure: doubling from half a minute, at most an hour.
_FIRST_RETRY_SECONDS = 30
_LONGEST_RETRY_SECONDS = 3600
MAX_ATTEMPTS = 30


def team_access_managed() -> bool:
    return bool(settings.PORTAL_DTR_USERNAME)


def team_access_want(
    *, repository: Repository, requests: Sequence[DelegationRequest], now: datetime
) -> None:
    """Ask for the teams of newly delegated requests to get push access. Inside the publish's
    record transaction: the grant is owed with the delegation, and its job queued once both
    have committed."""
    if not team_access_managed():
        return
    latest = {request.team: request for request in requests}
    for team, request in sorted(latest.items()):
        grant, created = TeamAccessGrant.objects.get_or_create(
            repository=repository,
            team=team,
            defaults={"status": TeamAccessStatus.PENDING, "request": request, "updated_at": now},
        )
        if not created:
            TeamAccessGrant.objects.filter(pk=grant.pk).update(
                status=TeamAccessStatus.PENDING,
                request=request,
                attempts=0,
                retry_at=None,
                reason="",
                updated_at=now,
            )
        queueing.enqueue_after_commit(queueing.enqueue_team_access_grant, grant.pk)


def team_access_grant(*, grant_id: int, now: datetime | None = None) -> TeamAccessGrant | None:
    """Make sure of one pending grant in DTR and record the outcome (the worker's job); None
    when an owner removed the grant meanwhile."""
    now = now or clock.now()
    grant = (
        TeamAccessGrant.objects.select_related("repository", "request").filter(pk=grant_id).first()
    )
    if grant is None:
        logger.info("team access grant %s was removed by an owner meanwhile", grant_id)
        return None
    if grant.status != TeamAccessStatus.PENDING or not team_access_managed():
        return grant
    repository = grant.repository
    try:
        change = _client(repository).team_access_ensure(
            repository.namespace, repository.name, grant.team, at_least=dtr.AccessLevel.READ_WRITE
        )
    except dtr.TransientDtrError as error:
        _retry_later(grant, error.message, now=now)
    except dtr.PermanentDtrError as error:
        _fail(grant, error.message, now=now)
    else:
        _granted(grant, change, now=now)
    grant.refresh_from_db()
    return grant


def team_access_remove(
    *,
    repository_id: int,
    team: str,
    acting_user: User,
    confirmed: bool = False,
    now: datetime | None = None,
) -> None:
    """An owner takes a team's access to the repository away in DTR. While members of the team
    still hold delegations there (they could sign but no longer push), only once confirmed."""
    now = now or clock.now()
    repository = selectors.repository_managed_by(acting_user, repository_id)
    if not TeamAccessGrant.objects.filter(repository=repository, team=team).exists():
        # Only access the portal gave: a team granted in DTR by someone else is theirs to end.
        raise InvalidInput(f"The portal gave team {team} no access to {repository.path}.")
    delegated = Delegation.objects.active().filter(repository=repository, team=team).count()
    if delegated and not confirmed:
        raise InvalidInput(
            f"{delegated} member(s) of team {team} still hold a delegation on {repository.path}: "
            "they could sign but no longer push. Confirm to remove the access anyway.",
            field="confirm",
        )
    if not team_access_managed():
        raise InvalidInput("The portal has no DTR account (PORTAL_DTR_USERNAME).")
    try:
        _client(repository).team_access_remove(repository.namespace, repository.name, team)
    except dtr.TransientDtrError as error:
        raise ServiceUnavailable(
            f"DTR could not be asked ({error.message}); nothing changed, try again."
        ) from None
    except dtr.PermanentDtrError as error:
        raise InvalidInput(f"DTR refused: {error.message}") from None
    with transaction.atomic():
        TeamAccessGrant.objects.filter(repository=repository, team=team).delete()
        audit_record(
            action=AuditAction.DTR_TEAM_ACCESS_REMOVED,
            actor=acting_user,
            now=now,
            repository=repository,
            details={"team": team, "active_delegations": delegated},
        )


def team_access_resume(*, now: datetime | None = None) -> list[int]:
    """Queue the grants whose back-off is over or whose job was lost (the cron sweep)."""
    if not team_access_managed():
        return []
    due = selectors.team_access_due_ids(
        now=now or clock.now(), quiet_for=timedelta(seconds=settings.PORTAL_STALLED_AFTER_SECONDS)
    )
    return [pk for pk in due if queueing.enqueue_team_access_grant(pk)]


def _client(repository: Repository) -> dtr.DtrClient:
    return dtr_client_for(repository.dtr_api_url)


def dtr_client_for(dtr_url: str) -> dtr.DtrClient:
    """The portal's DTR account at `dtr_url` (PORTAL_DTR_*)."""
    return dtr.DtrClient(
        dtr_url,
        username=settings.PORTAL_DTR_USERNAME,
        token=settings.PORTAL_DTR_TOKEN,
        timeout=settings.PORTAL_DTR_TIMEOUT,
        verify=settings.PORTAL_DTR_CA_BUNDLE or True,
    )


def _pending(grant: TeamAccessGrant) -> bool:
    """Lock the grant; whether it is still the pending grant this run worked on (a new
    delegation of the team may have asked again meanwhile, which its own job answers)."""
    current = TeamAccessGrant.objects.select_for_update().get(pk=grant.pk)
    return current.status == TeamAccessStatus.PENDING and current.updated_at == grant.updated_at


def _granted(grant: TeamAccessGrant, change: dtr.TeamAccessChange, *, now: datetime) -> None:
    with transaction.atomic():
        if not _pending(grant):
            return
        TeamAccessGrant.objects.filter(pk=grant.pk).update(
            status=TeamAccessStatus.GRANTED,
            level=str(change.after),
            reason="",
            retry_at=None,
            granted_at=now,
            updated_at=now,
        )
        audit_record(
            action=AuditAction.DTR_TEAM_ACCESS_GRANTED,
            actor=None,
            now=now,
            repository=grant.repository,
            request=grant.request,
            details={
                "team": grant.team,
                "before": str(change.before) if change.before else None,
                "after": str(change.after),
                "changed": change.changed,
            },
        )


def _retry_later(grant: TeamAccessGrant, reason: str, *, now: datetime) -> None:
    attempts = grant.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        # About a day of back-off: a wrong host name or proxy, not an outage. Told, not looped.
        _fail(grant, f"{reason} (gave up after {attempts} attempts)", now=now)
        return
    wait = min(_FIRST_RETRY_SECONDS * 2 ** (attempts - 1), _LONGEST_RETRY_SECONDS)
    with transaction.atomic():
        if not _pending(grant):
            return
        TeamAccessGrant.objects.filter(pk=grant.pk).update(
            attempts=attempts,
            retry_at=now + timedelta(seconds=wait),
            reason=reason,
            updated_at=now,
        )
    logger.warning(
        "DTR access of team %s on %s waits %ss: %s", grant.team, grant.repository, wait, reason
    )


def _fail(grant: TeamAccessGrant, reason: str, *, now: datetime) -> None:
    # The owners are read before the transaction: the directory is never asked under a lock.
    owners = repository_owners_or_known(repository=grant.repository, now=now)
    with transaction.atomic():
        if not _pending(grant):
            return
        TeamAccessGrant.objects.filter(pk=grant.pk).update(
            status=TeamAccessStatus.FAILED, reason=reason, retry_at=None, updated_at=now
        )
        audit_record(
            action=AuditAction.DTR_TEAM_ACCESS_FAILED,
            actor=None,
            now=now,
            repository=grant.repository,
            request=grant.request,
            details={"team": grant.team, "reason": reason},
        )
        if grant.request is not None:
            notifications_create(
                kind=NotificationKind.TEAM_ACCESS_FAILED,
                request=grant.request,
                owners=owners,
                now=now,
            )

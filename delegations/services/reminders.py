"""Reminders owed ahead of a deadline (product.md N1, O4): a delegation's certificate about to
expire, a delegation's last day coming, a pending request about to expire undecided.

Run hourly by the scheduler (and by `manage.py send_reminders`). Each reminder is owed once per
occasion, whatever the number of runs: the runs only look for what is due now and not owed yet,
and the database's unique constraint on (request, kind, recipient, occasion) settles two runs
that look at the same moment. Each request's reminder is owed in its own transaction, so a run
that crashes halfway has owed what it committed and the next run owes the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from .. import clock, selectors
from ..models import Delegation, DelegationRequest, NotificationKind, RequestStatus
from .accounts import repository_owners_provision
from .notifications import notifications_create

if TYPE_CHECKING:
    from django.contrib.auth.models import User


CERTIFICATE_EXPIRING = NotificationKind.CERTIFICATE_EXPIRING
DELEGATION_ENDING = NotificationKind.DELEGATION_ENDING
REQUEST_EXPIRING = NotificationKind.REQUEST_EXPIRING
# A pending request expires once, so it is reminded once.
BEFORE_EXPIRY = "before-expiry"


def reminders_send(*, now: datetime | None = None) -> list[int]:
    """Owe every reminder due at `now`; returns the ids of the notifications owed."""
    now = now or clock.now()
    return (
        certificate_reminders_send(now=now)
        + end_reminders_send(now=now)
        + request_expiry_reminders_send(now=now)
    )


def certificate_reminders_send(*, now: datetime | None = None) -> list[int]:
    """Remind the member and the owners of each active delegation whose certificate expires
    within one of PORTAL_CERTIFICATE_REMINDER_DAYS (30 and 7 days by default).

    Only the nearest reminder is owed: a delegation first met 5 days before expiry gets the 7-day
    one and never a stale 30-day one, and one met at 25 days gets the 30-day one now and the
    7-day one later. Expired certificates and delegations ended or being ended get none.
    """
    now = now or clock.now()
    due = selectors.delegations_owing_certificate_reminder(
        now=now, days_before=settings.PORTAL_CERTIFICATE_REMINDER_DAYS, kind=CERTIFICATE_EXPIRING
    )
    return _delegation_reminders_owe(CERTIFICATE_EXPIRING, due, now=now)


def end_reminders_send(*, now: datetime | None = None) -> list[int]:
    """Remind the member and the owners of each active delegation whose last day (`until`) is
    within one of PORTAL_END_REMINDER_DAYS (7 and 1 by default), as for certificates: the
    member may ask for an extension, the owners know who stops signing when."""
    now = now or clock.now()
    due = selectors.delegations_owing_end_reminder(
        now=now, days_before=settings.PORTAL_END_REMINDER_DAYS, kind=DELEGATION_ENDING
    )
    return _delegation_reminders_owe(DELEGATION_ENDING, due, now=now)


def _delegation_reminders_owe(
    kind: NotificationKind, due: list[tuple[Delegation, str]], *, now: datetime
) -> list[int]:
    owed: list[int] = []
    for delegation, occasion in due:
        owners = repository_owners_provision(repository=delegation.repository, now=now)
        with transaction.atomic():
            # Locked and read again: an end asked meanwhile (revoke, give up, directory sync)
            # either waits for this reminder or is seen here and no reminder is owed.
            if _locked(Delegation.objects.steady().filter(pk=delegation.pk)):
                owed += _owe(
                    kind,
                    delegation.request,
                    now=now,
                    occasion=occasion,
                    owners=owners,
                )
    return owed


def request_expiry_reminders_send(*, now: datetime | None = None) -> list[int]:
    """Remind each requester whose request is still pending PORTAL_REQUEST_EXPIRY_REMINDER_HOURS
    before it expires (PORTAL_REQUEST_EXPIRY_DAYS after it was made). The requester only: the
    owners were told of the request when it came, and its page shows it waiting."""
    now = now or clock.now()
    due = selectors.requests_owing_expiry_reminder(
        now=now,
        remind_before=timedelta(hours=settings.PORTAL_REQUEST_EXPIRY_REMINDER_HOURS),
        kind=REQUEST_EXPIRING,
        occasion=BEFORE_EXPIRY,
    )
    owed: list[int] = []
    for request in due:
        with transaction.atomic():
            # Decisions lock the request too: one made meanwhile is seen here, and the requester
            # is not reminded of a request that is no longer waiting.
            if _locked(
                DelegationRequest.objects.filter(pk=request.pk, status=RequestStatus.PENDING)
            ):
                owed += _owe(REQUEST_EXPIRING, request, now=now, occasion=BEFORE_EXPIRY)
    return owed


def _owe(
    kind: NotificationKind,
    request: DelegationRequest,
    *,
    now: datetime,
    occasion: str,
    owners: Sequence[User] | None = None,
) -> list[int]:
    created = notifications_create(
        kind=kind, request=request, now=now, occasion=occasion, owners=owners
    )
    return [notification.pk for notification in created]


def _locked(rows: QuerySet[Delegation] | QuerySet[DelegationRequest]) -> bool:
    """Lock the rows until the transaction ends; False when there are none (any more)."""
    return bool(list(rows.select_for_update().values_list("pk", flat=True)))

"""Pending requests that end without a decision: withdrawn by their requester (or by the
directory sync, when the requester left the team), or expired."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction

from .. import clock, selectors
from ..audit.chain import DIRECTORY_SYNC_ACTOR
from ..exceptions import IllegalTransition, NotAllowed
from ..models import AuditAction, DelegationRequest, NotificationKind, RequestStatus
from .notifications import notifications_create
from .state import transition

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def request_withdraw(
    *, request_id: int, acting_user: User, now: datetime | None = None
) -> DelegationRequest:
    """The requester takes back their pending request; nobody else can."""
    now = now or clock.now()
    with transaction.atomic():
        request = DelegationRequest.objects.get(pk=request_id)
        if request.requester_id != acting_user.pk:
            raise NotAllowed("Only the person who asked can withdraw a request.")
        return transition(
            request_id,
            source={RequestStatus.PENDING},
            target=RequestStatus.WITHDRAWN,
            actor=acting_user,
            action=AuditAction.REQUEST_WITHDRAWN,
            now=now,
        )


def request_withdraw_for_directory(
    *, request_id: int, comment: str, now: datetime | None = None
) -> DelegationRequest:
    """The directory sync withdraws a pending request whose requester left its team or was
    disabled: the owners no longer see it, and the requester is told why."""
    now = now or clock.now()
    with transaction.atomic():
        request = transition(
            request_id,
            source={RequestStatus.PENDING},
            target=RequestStatus.WITHDRAWN,
            actor=None,
            system_actor=DIRECTORY_SYNC_ACTOR,
            action=AuditAction.REQUEST_WITHDRAWN,
            now=now,
            details={"comment": comment},
        )
        notifications_create(
            kind=NotificationKind.REQUEST_DIRECTORY_WITHDRAWN, request=request, now=now
        )
    return request


def requests_expire(*, now: datetime | None = None) -> list[int]:
    """End the requests pending longer than PORTAL_REQUEST_EXPIRY_DAYS, telling each requester.

    Run by the scheduler. Each request is its own compare-and-set, so a decision made at the
    same moment wins or loses cleanly, and a run that crashes halfway is simply run again.
    """
    now = now or clock.now()
    expired = []
    for request_id in selectors.expired_request_ids(now=now):
        try:
            with transaction.atomic():
                request = transition(
                    request_id,
                    source={RequestStatus.PENDING},
                    target=RequestStatus.EXPIRED,
                    actor=None,
                    action=AuditAction.REQUEST_EXPIRED,
                    now=now,
                    details={"pending_days": settings.PORTAL_REQUEST_EXPIRY_DAYS},
                )
                notifications_create(
                    kind=NotificationKind.REQUEST_EXPIRED, request=request, now=now
                )
        except IllegalTransition:
            continue  # decided or withdrawn meanwhile
        expired.append(request_id)
    return expired

"""More time for an active delegation: the member asks (a new last day and why), the owners
approve up to the repository's threshold or one rejects, as for a request. Approving changes
only the delegation's last day; the key is in both roles already, so nothing is published.

Each decision locks the extension row, so two owners deciding at once are taken one after the
other, as decisions on requests are (`decisions`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction

from .. import clock, lifetimes, selectors
from ..audit.chain import audit_record
from ..exceptions import IllegalTransition, InvalidInput, NotAllowed, NotAnOwner, SelfApproval
from ..models import (
    AuditAction,
    Delegation,
    Extension,
    ExtensionDecision,
    ExtensionStatus,
    NotificationKind,
    RequestStatus,
    Verdict,
)
from .accounts import repository_owners_provision
from .comments import checked_comment
from .notifications import notifications_create
from .state import request_facts

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def extension_request(
    *,
    delegation_id: int,
    acting_user: User,
    until: date,
    reason: str,
    now: datetime | None = None,
) -> Extension:
    """The member asks for their active delegation to last until `until`: later than its last
    day now, within its certificate and the repository's longest."""
    now = now or clock.now()
    delegation = (
        Delegation.objects.select_related("repository", "request__repository")
        .filter(pk=delegation_id, member=acting_user)
        .first()
    )
    if delegation is None:
        raise NotAllowed("Only the member who holds a delegation can ask to extend it.")
    reason = checked_comment(reason)
    if not reason:
        raise InvalidInput("Say why you need more time; the owners read it.", field="reason")
    if delegation.until is None:
        raise InvalidInput(
            "This delegation lasts as long as its certificate already: to sign for longer, "
            "renew it with a reissued certificate.",
            field="until",
        )
    if until <= delegation.until:
        raise InvalidInput(
            f"Its last day is {delegation.until.isoformat()} already: ask for a later one.",
            field="until",
        )
    lifetimes.until_check(
        until,
        limits=delegation.repository,
        certificate_not_after=delegation.certificate_expires_at,
        now=now,
    )
    owners = repository_owners_provision(repository=delegation.repository, now=now)
    with transaction.atomic():
        _require_steady(delegation.pk)
        try:
            with transaction.atomic():
                extension = Extension.objects.create(
                    delegation=delegation,
                    requested_by=acting_user,
                    until=until,
                    previous_until=delegation.until,
                    reason=reason,
                    created_at=now,
                )
        except IntegrityError:
            raise IllegalTransition(
                "You have asked to extend this delegation already; the owners have not decided yet."
            ) from None
        _audit(AuditAction.EXTENSION_REQUESTED, extension, acting_user, now, reason=reason)
        notifications_create(
            kind=NotificationKind.EXTENSION_REQUESTED,
            request=delegation.request,
            owners=owners,
            extension=extension,
            now=now,
        )
    return extension


def extension_approve(
    *, extension_id: int, acting_user: User, comment: str = "", now: datetime | None = None
) -> Extension:
    """Count `acting_user`'s approval; once enough owners have, the delegation lasts until the
    extension's date."""
    return _decide(
        extension_id, acting_user, Verdict.APPROVE, checked_comment(comment), now or clock.now()
    )


def extension_reject(
    *, extension_id: int, acting_user: User, comment: str, now: datetime | None = None
) -> Extension:
    """Reject the extension, saying why; the delegation keeps its last day."""
    comment = checked_comment(comment)
    if not comment:
        raise InvalidInput(
            "Say why you reject the extension: the member will read it.", field="comment"
        )
    return _decide(extension_id, acting_user, Verdict.REJECT, comment, now or clock.now())


def extensions_withdraw_for_end(delegation: Delegation, *, now: datetime) -> None:
    """An ending delegation's pending extension is withdrawn: nothing is left to extend. Inside
    the transaction that asks for the end."""
    for extension in Extension.objects.select_for_update().filter(
        delegation=delegation, status=ExtensionStatus.PENDING
    ):
        Extension.objects.filter(pk=extension.pk).update(
            status=ExtensionStatus.WITHDRAWN, decided_at=now
        )
        _audit(AuditAction.EXTENSION_WITHDRAWN, extension, None, now, reason="delegation ending")


def _decide(
    extension_id: int, acting_user: User, verdict: str, comment: str, now: datetime
) -> Extension:
    # The directory is asked before anything is locked, as for requests.
    unlocked = (
        Extension.objects.select_related("delegation__repository").filter(pk=extension_id).first()
    )
    if unlocked is None:
        raise NotAnOwner()
    repository = unlocked.delegation.repository
    asking_for_themselves = acting_user.pk in (
        unlocked.requested_by_id,
        unlocked.delegation.member_id,
    )
    owns = not asking_for_themselves and selectors.is_owner(acting_user, repository)
    owner_ids = set(selectors.owners_of(repository).values_list("pk", flat=True)) if owns else set()
    with transaction.atomic():
        extension = (
            Extension.objects.select_for_update(of=("self",))
            .select_related("delegation__repository", "delegation__request__repository")
            .get(pk=extension_id)
        )
        reason = selectors.why_cannot_decide_extension(acting_user, extension, owns=owns)
        if reason is not None:
            if asking_for_themselves:
                raise SelfApproval(reason)
            if not owns:
                raise NotAnOwner()
            raise IllegalTransition(reason)
        ExtensionDecision.objects.create(
            extension=extension, owner=acting_user, verdict=verdict, comment=comment, created_at=now
        )
        if verdict == Verdict.REJECT:
            return _conclude(extension, ExtensionStatus.REJECTED, acting_user, comment, now)
        approvals = [
            decision.owner.get_username()
            for decision in selectors.extension_approvals(
                extension, owner_ids=owner_ids | {acting_user.pk}
            )
        ]
        required = repository.approvals_required
        if len(approvals) < required:
            _audit(
                AuditAction.EXTENSION_APPROVAL_COUNTED,
                extension,
                acting_user,
                now,
                comment=comment,
                approvals=approvals,
                required=required,
            )
            return extension
        # The repository's longest may have changed since it was asked: checked again now.
        lifetimes.until_check(
            extension.until,
            limits=repository,
            certificate_not_after=extension.delegation.certificate_expires_at,
            now=now,
        )
        extended = (
            Delegation.objects.steady()
            .filter(pk=extension.delegation_id, request__status=RequestStatus.DELEGATED)
            .update(until=extension.until, ends_at=lifetimes.end_of(extension.until))
        )
        if not extended:
            raise IllegalTransition(
                "The delegation is ending or has ended, so it cannot be extended."
            )
        return _conclude(
            extension, ExtensionStatus.APPROVED, acting_user, comment, now, approvals=approvals
        )


def _conclude(
    extension: Extension,
    status: ExtensionStatus,
    acting_user: User,
    comment: str,
    now: datetime,
    **details: object,
) -> Extension:
    Extension.objects.filter(pk=extension.pk).update(status=status, decided_at=now)
    extension.refresh_from_db()
    action = (
        AuditAction.EXTENSION_APPROVED
        if status == ExtensionStatus.APPROVED
        else AuditAction.EXTENSION_REJECTED
    )
    _audit(action, extension, acting_user, now, comment=comment, **details)
    notifications_create(
        kind=NotificationKind.EXTENSION_DECIDED,
        request=extension.delegation.request,
        extension=extension,
        now=now,
    )
    return extension


def _require_steady(delegation_id: int) -> None:
    steady = (
        Delegation.objects.steady()
        .select_for_update()
        .filter(pk=delegation_id, request__status=RequestStatus.DELEGATED)
    )
    if not list(steady.values_list("pk", flat=True)):
        raise IllegalTransition("The delegation is ending or has ended, so it cannot be extended.")


def _audit(
    action: AuditAction, extension: Extension, actor: User | None, now: datetime, **details: object
) -> None:
    request = extension.delegation.request
    audit_record(
        action=action,
        actor=actor,
        now=now,
        request=request,
        details={
            **request_facts(request),
            "extension": extension.pk,
            "until": extension.until.isoformat(),
            "previous_until": (
                extension.previous_until.isoformat() if extension.previous_until else None
            ),
            **details,
        },
    )

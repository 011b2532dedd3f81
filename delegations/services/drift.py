"""The reconciler (product.md W3): what the Notary server holds against what the portal thinks,
shown to the repository's owners as findings they act on.

A reconcile holds the repository's publish lease, so no publish of the portal's own lands between
its read of the server and its read of the database (that would look like drift). A new finding
is audited and mailed to the owners once; one that no longer holds is closed as gone.

Owners act on a finding: adopt an unknown key as a named member's delegation (an approved request
the worker publishes like any other, so both roles end up holding it), remove it (the worker takes
it out of every role in the repository's next batch), or publish a missing delegation again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from .. import clock, queueing, selectors, trust
from ..audit.chain import audit_record
from ..exceptions import IllegalTransition, InvalidInput, NotAllowed
from ..intake.certificates import CertificateInfo, inspect_certificate
from ..models import (
    AuditAction,
    DriftAction,
    DriftFinding,
    DriftKind,
    DriftResolution,
    Repository,
    RequestStatus,
)
from ..notary import DelegationChange, InvalidKey, PublicKey, RemoveKey
from .accounts import repository_owners_or_known
from .comments import checked_comment
from .delegation_requests import request_row_create
from .notifications import drift_notifications_create
from .publish_lease import lease_acquire, lease_holder_name, lease_release

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    repository: str
    busy: bool = False
    found: list[DriftFinding] = field(default_factory=list)  # new this run
    open: int = 0  # still open, new ones included
    gone: int = 0

    def summary(self) -> str:
        if self.busy:
            return f"{self.repository}: being published, reconciled on the next run"
        return (
            f"{self.repository}: {len(self.found)} new finding(s), {self.open} open, "
            f"{self.gone} no longer found"
        )


def repository_reconcile(*, repository_id: int, now: datetime | None = None) -> ReconcileReport:
    """Compare the repository's delegations on the server (a verified read) with the portal's,
    and record what differs. Notary errors are raised: nothing is changed then."""
    now = now or clock.now()
    repository = Repository.objects.get(pk=repository_id)
    report = ReconcileReport(repository.gun)
    lease = lease_acquire(repository_id=repository_id, holder=lease_holder_name())
    if lease is None:
        report.busy = True
        return report
    try:
        server = trust.fetch(repository, now=now).targets.signed.delegations
        disagreements = selectors.drift_between(repository, server)
        owners = repository_owners_or_known(repository=repository)
        with transaction.atomic():
            _record(repository, disagreements, owners, report, now=now)
    finally:
        lease_release(lease, unless_wanted=False)
        # A publish that waited for the lease meanwhile is queued again by the sweep; queue it
        # now rather than in a few seconds.
        if repository_id in selectors.waiting_repository_ids(now=clock.now()):
            queueing.enqueue_repository_publish(repository_id)
    return report


def repositories_reconcile(*, now: datetime | None = None) -> list[ReconcileReport]:
    """Reconcile every repository with trust data; one that cannot be read is logged and left
    for the next run."""
    reports = []
    for repository in Repository.objects.filter(trust_initialised_at__isnull=False):
        try:
            reports.append(repository_reconcile(repository_id=repository.pk, now=now))
        except Exception:
            logger.exception("reconciling %s failed; tried again on the next run", repository)
    return reports


def _record(
    repository: Repository,
    disagreements: list[selectors.Disagreement],
    owners: list[User],
    report: ReconcileReport,
    *,
    now: datetime,
) -> None:
    open_findings = {
        (finding.kind, finding.canonical_key_id): finding
        for finding in DriftFinding.objects.select_for_update().filter(
            repository=repository, resolved_at__isnull=True
        )
    }
    for disagreement in disagreements:
        existing = open_findings.pop((disagreement.kind, disagreement.canonical_key_id), None)
        if existing is not None:
            DriftFinding.objects.filter(pk=existing.pk).update(
                last_seen_at=now,
                roles_present=list(disagreement.roles_present),
                roles_missing=list(disagreement.roles_missing),
            )
            continue
        finding = DriftFinding.objects.create(
            repository=repository,
            kind=disagreement.kind,
            canonical_key_id=disagreement.canonical_key_id,
            keytype=disagreement.key.keytype if disagreement.key else "",
            public=disagreement.key.public if disagreement.key else "",
            subject=disagreement.subject[:255],
            roles_present=list(disagreement.roles_present),
            roles_missing=list(disagreement.roles_missing),
            delegation_id=disagreement.delegation_id,
            first_seen_at=now,
            last_seen_at=now,
        )
        audit_record(
            action=AuditAction.DRIFT_FOUND,
            actor=None,
            now=now,
            repository=repository,
            details=_facts(finding),
        )
        drift_notifications_create(finding=finding, owners=owners, now=now)
        report.found.append(finding)
    for gone in open_findings.values():
        if gone.action:
            continue  # an owner's action is on its way: the worker closes it
        DriftFinding.objects.filter(pk=gone.pk).update(
            resolved_at=now, resolution=DriftResolution.GONE
        )
        audit_record(
            action=AuditAction.DRIFT_GONE,
            actor=None,
            now=now,
            repository=repository,
            details=_facts(gone),
        )
        report.gone += 1
    report.open = DriftFinding.objects.filter(
        repository=repository, resolved_at__isnull=True
    ).count()


def _facts(finding: DriftFinding) -> dict[str, object]:
    return {
        "finding": finding.pk,
        "kind": finding.kind,
        "canonical_key_id": finding.canonical_key_id,
        "subject": finding.subject,
        "roles_present": finding.roles_present,
        "roles_missing": finding.roles_missing,
        **({"delegation": finding.delegation_id} if finding.delegation_id else {}),
    }


# -- owners' actions ------------------------------------------------------------------------------


def drift_adopt(
    *,
    finding_id: int,
    acting_user: User,
    member_username: str,
    team: str,
    comment: str,
    now: datetime | None = None,
) -> DriftFinding:
    """Make an unknown key a delegation of `member` in `team`: an approved request, attributed to
    the owner who vouches for it, that the worker publishes (both roles, as any other)."""
    now = now or clock.now()
    finding = _owned_open_finding(acting_user, finding_id)
    if finding.kind != DriftKind.UNKNOWN_KEY:
        raise InvalidInput("Only a key the portal did not delegate can be adopted.")
    member = get_user_model().objects.filter(username__iexact=member_username.strip()).first()
    if member is None:
        raise InvalidInput(f"There is no member {member_username!r}.", field="member")
    if member.pk == acting_user.pk:
        raise NotAllowed("Nobody adopts a key as their own delegation: ask another owner.")
    if team not in selectors.teams_of(member):
        raise InvalidInput(f"{member.get_username()} is not in team {team}.", field="team")
    comment = checked_comment(comment)
    if not comment:
        raise InvalidInput("Say whose key this is and why it stays.", field="comment")
    certificate = _certificate_of(finding, now=now)
    try:
        with transaction.atomic():
            claimed = DriftFinding.objects.filter(
                pk=finding.pk, resolved_at__isnull=True, action=""
            ).update(resolved_at=now, resolution=DriftResolution.ADOPTED, resolved_by=acting_user)
            if not claimed:
                raise IllegalTransition("Another owner acted on this finding first.")
            request = request_row_create(
                requester=member,
                repository=finding.repository,
                team=team,
                certificate=certificate,
                reason=f"Adopted by {acting_user.get_username()} from the drift report: {comment}",
                nonce=None,
                renews=None,
                status=RequestStatus.APPROVED,
            )
            audit_record(
                action=AuditAction.DRIFT_ADOPTED,
                actor=acting_user,
                now=now,
                request=request,
                details={
                    **_facts(finding),
                    "member": member.get_username(),
                    "team": team,
                    "roles": request.role_names,
                    "comment": comment,
                },
            )
            queueing.enqueue_after_commit(
                queueing.enqueue_repository_publish, request.repository_id
            )
    except IntegrityError:
        raise InvalidInput(
            f"{member.get_username()} already has an open request on {finding.repository} as "
            f"team {team}, or the key is in one: decide that one first."
        ) from None
    finding.refresh_from_db()
    return finding


def _certificate_of(finding: DriftFinding, *, now: datetime) -> CertificateInfo:
    key = PublicKey(finding.keytype, finding.public)
    try:
        pem = key.certificate().public_bytes(serialization.Encoding.PEM)
    except InvalidKey:
        raise InvalidInput(
            "This key is not a certificate, so it cannot be a member's delegation; remove it "
            "instead."
        ) from None
    try:
        return inspect_certificate(pem, now=now)
    except ValidationError as error:
        raise InvalidInput(
            f"This key's certificate cannot be delegated: {' '.join(error.messages)} Remove it "
            "instead, and ask the member for a current one."
        ) from None


def drift_action_request(
    *, finding_id: int, acting_user: User, action: DriftAction, now: datetime | None = None
) -> DriftFinding:
    """Ask the worker to remove a key the portal did not delegate (from every role holding
    it), or to publish a missing delegation again; done in the repository's next batch."""
    now = now or clock.now()
    finding = _owned_open_finding(acting_user, finding_id)
    if action == DriftAction.REMOVE and finding.kind != DriftKind.UNKNOWN_KEY:
        raise InvalidInput(
            "This key is a portal delegation: revoke it from Delegations, or publish it again."
        )
    if action == DriftAction.REPUBLISH and finding.delegation_id is None:
        raise InvalidInput("Only a delegation of the portal can be published again.")
    with transaction.atomic():
        asked = DriftFinding.objects.filter(
            pk=finding.pk, resolved_at__isnull=True, action=""
        ).update(
            action=action,
            action_requested_by=acting_user,
            **DriftFinding.publish_bookkeeping_reset(),
        )
        if not asked:
            raise IllegalTransition("Another owner acted on this finding first.")
        audit_record(
            action=AuditAction.DRIFT_ACTION_REQUESTED,
            actor=acting_user,
            now=now,
            repository=finding.repository,
            details={**_facts(finding), "action": action},
        )
        queueing.enqueue_after_commit(queueing.enqueue_repository_publish, finding.repository_id)
    finding.refresh_from_db()
    return finding


def _owned_open_finding(user: User, finding_id: int) -> DriftFinding:
    finding = selectors.drift_finding_owned_by(user, finding_id)
    if finding is None:
        raise NotAllowed("This finding is not open, or not on a repository you own.")
    return finding


# -- the worker's side ----------------------------------------------------------------------------


def drift_change(finding: DriftFinding) -> DelegationChange:
    """What an owner's action on `finding` does to the trust data."""
    if finding.action == DriftAction.REPUBLISH and finding.delegation is not None:
        return trust.adding(finding.delegation.request.certificate_pem, finding.delegation.roles)
    # Out of every role holding it: the key is nobody's delegation in the portal.
    return RemoveKey(PublicKey(finding.keytype, finding.public), tuple(finding.roles_present))


def drift_action_record(finding: DriftFinding, *, published_in: int | None, now: datetime) -> None:
    """Close a finding the worker acted on, inside the transaction that records its publish."""
    resolution = (
        DriftResolution.REPUBLISHED
        if finding.action == DriftAction.REPUBLISH
        else DriftResolution.REMOVED
    )
    closed = DriftFinding.objects.filter(pk=finding.pk, resolved_at__isnull=True).update(
        resolved_at=now, resolution=resolution, resolved_by=finding.action_requested_by
    )
    if not closed:
        return
    audit_record(
        action=AuditAction.DRIFT_REPUBLISHED
        if resolution == DriftResolution.REPUBLISHED
        else AuditAction.DRIFT_REMOVED,
        actor=finding.action_requested_by,
        now=now,
        repository=finding.repository,
        details={**_facts(finding), **({"published_in": published_in} if published_in else {})},
    )


def drift_action_fail(finding: DriftFinding, *, reason: str, now: datetime) -> None:
    """The worker could not do what an owner asked: the finding stays open, the action cleared,
    so an owner can ask again; the reason is in the audit log."""
    cleared = DriftFinding.objects.filter(pk=finding.pk, resolved_at__isnull=True).update(
        action="", **DriftFinding.publish_bookkeeping_reset()
    )
    if cleared:
        audit_record(
            action=AuditAction.DRIFT_ACTION_FAILED,
            actor=None,
            now=now,
            repository=finding.repository,
            details={**_facts(finding), "action": finding.action, "reason": reason},
        )

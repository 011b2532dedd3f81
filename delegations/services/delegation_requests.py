"""A member's request for a delegation, from submission to the trust data."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, NoReturn

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse

from .. import clock, lifetimes, selectors
from ..audit.chain import PendingEvent, audit_record, audit_record_many
from ..exceptions import InvalidInput, NotAllowed
from ..intake.bundle_keys import bundle_key_check
from ..intake.certificates import CertificateInfo
from ..intake.identity import identity_check
from ..intake.possession import SIGNATURE_FIELD, PossessionProof, possession_verify
from ..models import (
    OPEN_STATUSES,
    AuditAction,
    Delegation,
    DelegationRequest,
    EndReason,
    NotificationKind,
    Repository,
    RequestStatus,
)
from ..notary import InvalidRoleName, PublishResult, team_role_name
from .accounts import repository_owners_or_known, repository_owners_provision
from .delegation_endings import end_carries_to_renewal, ending_carry_over
from .notifications import notifications_create, notifications_create_many
from .state import request_facts, transition, transition_many

if TYPE_CHECKING:
    from django.contrib.auth.models import User


# DelegationRequest.team's column (and Delegation's, TeamAccessGrant's).
MAX_TEAM_CHARACTERS = 64


def request_submit(
    *,
    requester: User,
    repository: Repository,
    team: str,
    certificate: CertificateInfo,
    reason: str,
    proof: PossessionProof | None = None,
    renews: Delegation | None = None,
    until: date | None = None,
    now: datetime | None = None,
) -> DelegationRequest:
    """Open a request, once the certificate is shown to be the requester's own. With `renews`,
    the request replaces that active delegation's key with the new certificate's, for the rest
    of that delegation's time. `until` is the delegation's last day (`lifetimes`; None for as
    long as the certificate is valid), within the repository's longest.

    The checks run in the order a requester can act on them: the form's choices, then whose
    certificate it is, then whether it would repeat a request, then the proof of possession.
    """
    now = now or clock.now()
    if team not in selectors.teams_of(requester):
        raise NotAllowed(f"You are not a member of team {team}.", field="team")
    if repository.trust_initialised_at is None:
        raise InvalidInput(
            f"{repository.gun} is not ready for delegations yet.", field="repository"
        )
    if len(team) > MAX_TEAM_CHARACTERS:
        raise InvalidInput(
            f"Team {team[:24]}… has a name longer than {MAX_TEAM_CHARACTERS} characters, which "
            "the portal cannot store; ask an administrator to shorten it.",
            field="team",
        )
    try:
        team_role_name(team)
    except InvalidRoleName as error:
        raise InvalidInput(error.message, field="team") from None
    if not reason.strip():
        raise InvalidInput("Say why you need to sign for this repository.", field="reason")
    if renews is not None:
        _require_renewable(renews, requester=requester, repository=repository, team=team)
        # A new certificate, not more time: that is what an extension asks for.
        until = renews.until
    else:
        until = lifetimes.until_check(
            until, limits=repository, certificate_not_after=certificate.not_after, now=now
        )
    identity_check(certificate.certificate, requester, now=now)
    bundle_key_check(certificate.certificate, requester)
    # Possession first: what other members' requests hold is nobody's business without the key.
    nonce = _proven_possession(requester, certificate, proof, now=now)
    _refuse_conflicts(
        requester=requester,
        repository=repository,
        team=team,
        certificate=certificate,
        renews=renews,
    )
    owners = repository_owners_provision(repository=repository, now=now)
    with transaction.atomic():
        try:
            with transaction.atomic():
                request = request_row_create(
                    requester=requester,
                    repository=repository,
                    team=team,
                    certificate=certificate,
                    reason=reason.strip(),
                    nonce=nonce,
                    renews=renews,
                    until=until,
                )
        except IntegrityError:
            _refuse_race_loser(requester, repository, team, certificate, nonce, renews)
        audit_record(
            action=AuditAction.REQUEST_SUBMITTED,
            actor=requester,
            now=now,
            request=request,
            details={
                "team": team,
                "roles": request.role_names,
                "canonical_key_id": certificate.canonical_key_id,
                "tuf_key_id": certificate.tuf_key_id,
                "certificate_sha256": certificate.sha256,
                "possession": "proven" if nonce else "not required",
                "until": until.isoformat() if until else "certificate expiry",
                **({"renews_delegation": renews.pk} if renews else {}),
            },
        )
        notifications_create(
            kind=NotificationKind.REQUEST_SUBMITTED, request=request, owners=owners, now=now
        )
    return request


def request_row_create(
    *,
    requester: User,
    repository: Repository,
    team: str,
    certificate: CertificateInfo,
    reason: str,
    nonce: str | None,
    renews: Delegation | None,
    until: date | None = None,
    status: str = RequestStatus.PENDING,
) -> DelegationRequest:
    """The row of a new request (the caller audits it): pending, or approved for a key an owner
    adopts from the drift report."""
    return DelegationRequest.objects.create(
        status=status,
        renews=renews,
        requester=requester,
        repository=repository,
        team=team,
        reason=reason,
        certificate_pem=certificate.pem,
        keytype=certificate.keytype,
        tuf_key_id=certificate.tuf_key_id,
        canonical_key_id=certificate.canonical_key_id,
        certificate_sha256=certificate.sha256,
        subject=certificate.subject,
        issuer=certificate.issuer,
        not_before=certificate.not_before,
        not_after=certificate.not_after,
        key_description=certificate.key_description,
        possession_nonce=nonce,
        requested_until=until,
        until=until,
    )


def _proven_possession(
    requester: User,
    certificate: CertificateInfo,
    proof: PossessionProof | None,
    *,
    now: datetime,
) -> str | None:
    """The nonce of a verified proof; None when none is required and none was given."""
    signed = proof is not None and bool(proof.signature.strip())
    if not signed and not settings.PORTAL_REQUIRE_PROOF_OF_POSSESSION:
        return None
    return possession_verify(
        proof or PossessionProof(challenge="", signature=""),
        public_key=certificate.certificate.public_key(),
        user=requester,
        now=now,
    )


def _require_renewable(
    delegation: Delegation, *, requester: User, repository: Repository, team: str
) -> None:
    if delegation.member_id != requester.pk:
        raise NotAllowed("Only the member who holds a delegation can renew it.")
    if delegation.repository_id != repository.pk or delegation.team != team:
        raise InvalidInput("A renewal keeps the delegation's repository and team.")
    if not delegation.is_active or delegation.ending:
        raise InvalidInput(
            "This delegation has ended or is ending; ask for a new one instead of renewing it."
        )


def _refuse_conflicts(
    *,
    requester: User,
    repository: Repository,
    team: str,
    certificate: CertificateInfo,
    renews: Delegation | None = None,
) -> None:
    """A member has one open request per repository and team, and a key is in one open request
    or active delegation per repository (the delegation being renewed aside: a reissued
    certificate may keep its key)."""
    conflict = selectors.conflicting_request(
        repository=repository,
        requester=requester,
        team=team,
        canonical_key_id=certificate.canonical_key_id,
        renewing_request_id=renews.request_id if renews else None,
    )
    if conflict is None:
        return
    own = conflict.requester_id == requester.pk
    link = (
        reverse("delegations:request_detail", args=[conflict.pk]),
        f"Open request #{conflict.pk}",
    )
    is_open = conflict.status in OPEN_STATUSES
    if own and is_open and conflict.team == team:
        raise InvalidInput(
            f"You already asked to sign {repository.gun} as team {team}: request "
            f"#{conflict.pk} is {conflict.get_status_display().lower()}. The owners decide on "
            "that one first.",
            link=link,
        )
    state = "in an open request" if is_open else "delegated"
    whose = f"for you, as team {conflict.team}" if own else "for another member"
    raise InvalidInput(
        f"This certificate's key is already {state} on {repository.gun} ({whose}). A key is "
        "delegated once per repository.",
        field=None if own else "certificate",
        link=link if own else None,
    )


def _refuse_race_loser(
    requester: User,
    repository: Repository,
    team: str,
    certificate: CertificateInfo,
    nonce: str | None,
    renews: Delegation | None,
) -> NoReturn:
    """Explain an insert the database refused: a concurrent submission took the same team, key
    or challenge between our checks and our insert."""
    _refuse_conflicts(
        requester=requester,
        repository=repository,
        team=team,
        certificate=certificate,
        renews=renews,
    )
    if nonce and DelegationRequest.objects.filter(possession_nonce=nonce).exists():
        raise InvalidInput(
            "This challenge was already used for a request. The form has a new one: sign it again.",
            field=SIGNATURE_FIELD,
        ) from None
    raise InvalidInput("Another request was made at the same moment; send yours again.")


def requests_delegated_record(
    requests: list[DelegationRequest],
    result: PublishResult,
    *,
    changed_ids: set[int],
    published_in: int | None,
    now: datetime,
) -> list[DelegationRequest]:
    """Record that applying requests' keys are in both roles, inside the transaction that
    records their publish (`publishing`), in a few statements for the whole batch. Returns the
    requests recorded; one recorded already (by another run) is left out."""
    versions = {
        "targets_version_before": result.version_before,
        "targets_version_after": result.version_after,
    }
    # Already in both roles: a run before a crash published it, or it was delegated by other
    # means. That is on the record instead of a publish.
    audit_record_many(
        [
            PendingEvent(
                action=AuditAction.NOTARY_FOUND_DELEGATED,
                actor=None,
                request=request,
                details={**request_facts(request), **versions},
            )
            for request in requests
            if request.pk not in changed_ids and request.status == RequestStatus.APPLYING
        ],
        now=now,
    )
    delegated = transition_many(
        [request.pk for request in requests],
        source=RequestStatus.APPLYING,
        target=RequestStatus.DELEGATED,
        action=AuditAction.REQUEST_DELEGATED,
        now=now,
        details=lambda request: {
            "roles": request.role_names,
            **versions,
            **({"published_in": published_in} if published_in else {}),
        },
        failure_reason="",
        targets_version_before=result.version_before,
        targets_version_after=result.version_after,
    )
    Delegation.objects.bulk_create(
        Delegation.of_request(request, since=now) for request in delegated
    )
    for request in delegated:
        if request.renews_id is not None:
            _supersede_renewed(request, now=now)
    notifications_create_many(kind=NotificationKind.REQUEST_DELEGATED, requests=delegated, now=now)
    return delegated


def _supersede_renewed(request: DelegationRequest, *, now: datetime) -> None:
    """End the delegation `request` renewed, in the transaction that records the new one."""
    if request.renews_id is None:
        return
    renewed = Delegation.objects.select_related("ending_requested_by").get(pk=request.renews_id)
    if renewed.ending and end_carries_to_renewal(renewed, renewed.ending):
        # Asked to end (perhaps ended in this very batch) while its renewal was on its way:
        # the end applies to the new key too.
        successor = Delegation.objects.values_list("pk", flat=True).get(request=request)
        ending_carry_over(renewed, successor, now=now)
    if not renewed.is_active:
        return
    Delegation.objects.active().filter(pk=renewed.pk).update(
        ended_at=now, end_reason=EndReason.REPLACED
    )
    transition(
        renewed.request_id,
        source={RequestStatus.DELEGATED},
        target=RequestStatus.SUPERSEDED,
        actor=None,
        action=AuditAction.REQUEST_SUPERSEDED,
        now=now,
        details={"superseded_by": request.pk},
    )


def request_fail(*, request_id: int, reason: str, now: datetime | None = None) -> DelegationRequest:
    """Give up on an approved request, keeping the reason for people to read."""
    now = now or clock.now()
    repository = Repository.objects.get(requests=request_id)
    owners = repository_owners_or_known(repository=repository, now=now)
    with transaction.atomic():
        request = transition(
            request_id,
            source={RequestStatus.APPROVED, RequestStatus.APPLYING},
            target=RequestStatus.FAILED,
            actor=None,
            action=AuditAction.REQUEST_FAILED,
            now=now,
            details={"reason": reason},
            failure_reason=reason,
        )
        notifications_create(
            kind=NotificationKind.REQUEST_FAILED, request=request, owners=owners, now=now
        )
    return request

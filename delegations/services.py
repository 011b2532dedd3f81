"""Every write the portal makes. Each state change is a compare-and-set with an audit event, and
its side effects (jobs, emails) are enqueued only once the transaction has committed."""

from __future__ import annotations

import base64
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from . import clock, selectors, tasks, trust
from .audit import audit_record
from .certificates import CertificateInfo
from .exceptions import IllegalTransition, InvalidInput, NotAllowed, SelfApproval, TrustSetupError
from .models import (
    Decision,
    Delegation,
    DelegationRequest,
    KeyRole,
    Repository,
    RepositoryKey,
    RequestStatus,
    Verdict,
)
from .notary import (
    InvalidRoleName,
    PermanentNotaryError,
    RepositoryNotInitialised,
    team_role_name,
)

# The state machine of product.md §3: which status may follow which.
TRANSITIONS: dict[str, set[str]] = {
    RequestStatus.PENDING: {
        RequestStatus.APPROVED,
        RequestStatus.REJECTED,
        RequestStatus.WITHDRAWN,
        RequestStatus.EXPIRED,
    },
    RequestStatus.APPROVED: {RequestStatus.APPLYING, RequestStatus.FAILED},
    RequestStatus.APPLYING: {RequestStatus.DELEGATED, RequestStatus.FAILED},
    RequestStatus.DELEGATED: {RequestStatus.REVOKED, RequestStatus.SUPERSEDED},
}


def _transition(
    request_id: int,
    *,
    source: set[str],
    target: str,
    actor: AbstractBaseUser | None,
    action: str,
    now: datetime,
    details: dict | None = None,
    **fields: object,
) -> DelegationRequest:
    """Move a request from one of `source` to `target` if nobody moved it first, and audit it."""
    for status in source:
        if target not in TRANSITIONS.get(status, ()):
            raise ValueError(f"{status} → {target} is not a transition of the state machine")
    changed = DelegationRequest.objects.filter(pk=request_id, status__in=source).update(
        status=target, updated_at=now, **fields
    )
    request = DelegationRequest.objects.select_related("repository", "requester").get(pk=request_id)
    if not changed:
        raise IllegalTransition(
            f"Request #{request_id} is {request.get_status_display().lower()} now, so it cannot "
            f"become {RequestStatus(target).label.lower()}."
        )
    audit_record(
        action=action,
        actor=actor,
        now=now,
        request=request,
        details={
            "from": sorted(source) if len(source) > 1 else next(iter(source)),
            "to": target,
            "canonical_key_id": request.canonical_key_id,
            "certificate_sha256": request.certificate_sha256,
            **(details or {}),
        },
    )
    return request


def _after_commit_notify(notification: str, request_id: int) -> None:
    transaction.on_commit(lambda: tasks.enqueue_notification(notification, request_id))


# -- repositories ---------------------------------------------------------------------------------


def repository_register(
    *,
    dtr_host: str,
    namespace: str,
    name: str,
    notary_url: str,
    owners_group: str,
    acting_user: AbstractBaseUser | None = None,
    now: datetime | None = None,
) -> Repository:
    now = now or clock.now()
    with transaction.atomic():
        repository = Repository.objects.create(
            dtr_host=dtr_host,
            namespace=namespace,
            name=name,
            notary_url=notary_url,
            owners_group=owners_group,
        )
        audit_record(
            action="repository.registered",
            actor=acting_user,
            now=now,
            repository=repository,
            details={"gun": repository.gun, "notary_url": notary_url, "owners": owners_group},
        )
    return repository


def repository_update(
    *,
    repository_id: int,
    notary_url: str,
    owners_group: str,
    acting_user: AbstractBaseUser | None = None,
    now: datetime | None = None,
) -> Repository:
    """Change where a repository's Notary server is and which group owns it."""
    now = now or clock.now()
    with transaction.atomic():
        repository = Repository.objects.select_for_update().get(pk=repository_id)
        changes = {
            field: {"from": getattr(repository, field), "to": value}
            for field, value in (("notary_url", notary_url), ("owners_group", owners_group))
            if getattr(repository, field) != value
        }
        if not changes:
            return repository
        Repository.objects.filter(pk=repository_id).update(
            notary_url=notary_url, owners_group=owners_group
        )
        repository.refresh_from_db()
        audit_record(
            action="repository.updated",
            actor=acting_user,
            now=now,
            repository=repository,
            details=changes,
        )
    return repository


def repository_initialise_trust(
    *, repository_id: int, acting_user: AbstractBaseUser | None = None, now: datetime | None = None
) -> Repository:
    """Make sure the Notary server holds trust data for the repository made with our keys.

    Creates the root and targets keys if the portal has none, and publishes the first root and
    targets if the server has no trust data (a new repository, or a memory-backed server that
    restarted). The keys are sealed and committed before anything is published, so a crash in
    between leaves keys to retry with rather than a repository whose keys were lost.
    """
    now = now or clock.now()
    with transaction.atomic():
        repository = Repository.objects.select_for_update().get(pk=repository_id)
        if not repository.keys.exists():
            keys = trust.new_repository_keys(repository, now=now)
            for role, key in keys.items():
                RepositoryKey.objects.create(
                    repository=repository,
                    role=role,
                    **trust.sealed_key_fields(repository, role, key),
                )
            audit_record(
                action="repository.keys_generated",
                actor=acting_user,
                now=now,
                repository=repository,
                details={role: key.public.canonical_id for role, key in keys.items()},
            )
    try:
        state = trust.fetch(repository, now=now)
        published = False
    except RepositoryNotInitialised:
        state = trust.initialise(repository, now=now)
        published = True
    targets_key = repository.keys.get(role=KeyRole.TARGETS)
    if targets_key.tuf_key_id not in {
        k.tuf_id for k in state.root.signed.role_keys(KeyRole.TARGETS)
    }:
        raise TrustSetupError(
            f"{repository.gun} already has trust data signed with other keys; import its "
            "targets key instead of initialising it"
        )
    if not published and repository.trust_initialised_at is not None:
        return repository
    root_key = repository.keys.get(role=KeyRole.ROOT)
    with transaction.atomic():
        Repository.objects.filter(pk=repository.pk).update(
            trust_initialised_at=repository.trust_initialised_at or now,
            root_certificate_pem=base64.b64decode(root_key.public).decode("ascii"),
        )
        audit_record(
            action="repository.trust_initialised" if published else "repository.trust_adopted",
            actor=acting_user,
            now=now,
            repository=repository,
            details={
                "root_version": state.root.signed.version,
                "targets_version": state.targets.signed.version,
                "root_key_id": root_key.canonical_key_id,
            },
        )
    repository.refresh_from_db()
    return repository


# -- requests -------------------------------------------------------------------------------------


def request_submit(
    *,
    requester: AbstractBaseUser,
    repository: Repository,
    team: str,
    certificate: CertificateInfo,
    reason: str,
    now: datetime | None = None,
) -> DelegationRequest:
    now = now or clock.now()
    if team not in selectors.teams_of(requester):
        raise NotAllowed(f"You are not a member of team {team}.")
    if repository.trust_initialised_at is None:
        raise InvalidInput(f"{repository.gun} is not ready for delegations yet.")
    try:
        team_role_name(team)
    except InvalidRoleName as error:
        raise InvalidInput(error.message) from None
    if not reason.strip():
        raise InvalidInput("Say why you need to sign for this repository.")
    with transaction.atomic():
        request = DelegationRequest.objects.create(
            requester=requester,
            repository=repository,
            team=team,
            reason=reason.strip(),
            certificate_pem=certificate.pem,
            keytype=certificate.keytype,
            tuf_key_id=certificate.tuf_key_id,
            canonical_key_id=certificate.canonical_key_id,
            certificate_sha256=certificate.sha256,
            subject=certificate.subject,
            issuer=certificate.issuer,
            not_before=certificate.not_before,
            not_after=certificate.not_after,
        )
        audit_record(
            action="request.submitted",
            actor=requester,
            now=now,
            request=request,
            details={
                "team": team,
                "roles": request.role_names,
                "canonical_key_id": certificate.canonical_key_id,
                "tuf_key_id": certificate.tuf_key_id,
                "certificate_sha256": certificate.sha256,
            },
        )
        _after_commit_notify("request_submitted", request.pk)
    return request


def _require_can_decide(request: DelegationRequest, user: AbstractBaseUser) -> None:
    if request.requester_id == user.pk:
        raise SelfApproval("You cannot decide on your own request; another owner has to.")
    if not selectors.is_owner(user, request.repository):
        raise NotAllowed(f"Only owners of {request.repository.path} decide on its requests.")


def _decide(
    *, request_id: int, acting_user: AbstractBaseUser, verdict: str, comment: str, now: datetime
) -> DelegationRequest:
    target = RequestStatus.APPROVED if verdict == Verdict.APPROVE else RequestStatus.REJECTED
    with transaction.atomic():
        request = DelegationRequest.objects.select_related("repository").get(pk=request_id)
        _require_can_decide(request, acting_user)
        request = _transition(
            request_id,
            source={RequestStatus.PENDING},
            target=target,
            actor=acting_user,
            action=f"request.{target}",
            now=now,
            details={"comment": comment},
        )
        Decision.objects.create(
            request=request, owner=acting_user, verdict=verdict, comment=comment
        )
        _after_commit_notify("request_decided", request.pk)
        if target == RequestStatus.APPROVED:
            transaction.on_commit(lambda: tasks.enqueue_apply(request.pk))
    return request


def request_approve(
    *,
    request_id: int,
    acting_user: AbstractBaseUser,
    comment: str = "",
    now: datetime | None = None,
) -> DelegationRequest:
    return _decide(
        request_id=request_id,
        acting_user=acting_user,
        verdict=Verdict.APPROVE,
        comment=comment.strip(),
        now=now or clock.now(),
    )


def request_reject(
    *,
    request_id: int,
    acting_user: AbstractBaseUser,
    comment: str,
    now: datetime | None = None,
) -> DelegationRequest:
    if not comment.strip():
        raise InvalidInput("Say why you reject the request: the requester will read it.")
    return _decide(
        request_id=request_id,
        acting_user=acting_user,
        verdict=Verdict.REJECT,
        comment=comment.strip(),
        now=now or clock.now(),
    )


def request_apply(*, request_id: int, now: datetime | None = None) -> DelegationRequest:
    """Write an approved request's delegation into the trust data (the worker's job).

    Safe to run again after a crash at any point: the publish is idempotent, and a request that
    is already past applying is left alone. Transient Notary errors propagate for the job to
    retry; permanent ones fail the request with the reason.
    """
    now = now or clock.now()
    with transaction.atomic():
        request = DelegationRequest.objects.select_related("repository").get(pk=request_id)
        if request.status == RequestStatus.APPROVED:
            request = _transition(
                request_id,
                source={RequestStatus.APPROVED},
                target=RequestStatus.APPLYING,
                actor=None,
                action="request.applying",
                now=now,
            )
        elif request.status != RequestStatus.APPLYING:
            return request
    try:
        result = trust.add_delegate(
            request.repository,
            certificate_pem=request.certificate_pem,
            role_names=request.role_names,
            now=now,
        )
    except (PermanentNotaryError, TrustSetupError) as error:
        return request_fail(request_id=request_id, reason=error.message, now=now)
    with transaction.atomic():
        versions = {
            "targets_version_before": result.version_before,
            "targets_version_after": result.version_after,
        }
        if result.changed:
            audit_record(
                action="notary.published",
                actor=None,
                now=now,
                request=request,
                details={
                    "roles": request.role_names,
                    "tuf_key_id": request.tuf_key_id,
                    "canonical_key_id": request.canonical_key_id,
                    **versions,
                },
            )
        request = _transition(
            request_id,
            source={RequestStatus.APPLYING},
            target=RequestStatus.DELEGATED,
            actor=None,
            action="request.delegated",
            now=now,
            details={"roles": request.role_names, **versions},
            failure_reason="",
            **versions,
        )
        Delegation.objects.create(
            request=request,
            repository=request.repository,
            member=request.requester,
            team=request.team,
            canonical_key_id=request.canonical_key_id,
            tuf_key_id=request.tuf_key_id,
            roles=request.role_names,
            active_from=now,
            certificate_expires_at=request.not_after,
        )
        _after_commit_notify("request_delegated", request.pk)
    return request


def request_fail(*, request_id: int, reason: str, now: datetime | None = None) -> DelegationRequest:
    """Give up on an approved request, keeping the reason for people to read."""
    now = now or clock.now()
    with transaction.atomic():
        request = _transition(
            request_id,
            source={RequestStatus.APPROVED, RequestStatus.APPLYING},
            target=RequestStatus.FAILED,
            actor=None,
            action="request.failed",
            now=now,
            details={"reason": reason},
            failure_reason=reason,
        )
        _after_commit_notify("request_failed", request.pk)
    return request

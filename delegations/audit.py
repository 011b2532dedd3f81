"""Writing the hash-chained audit log. Called only from `services`, inside their transaction."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from django.contrib.auth.models import AbstractBaseUser

from .models import AuditChainHead, AuditEvent, DelegationRequest, Repository

GENESIS_HASH = "0" * 64
SYSTEM_ACTOR = "portal-worker"


def event_hash(
    *,
    previous_hash: str,
    created_at: datetime,
    actor_name: str,
    action: str,
    request_id: int | None,
    repository_id: int | None,
    details: dict,
) -> str:
    """The hash of one event's content chained to the previous event's hash."""
    content = {
        "previous_hash": previous_hash,
        "created_at": created_at.astimezone(UTC).isoformat(),
        "actor": actor_name,
        "action": action,
        "request": request_id,
        "repository": repository_id,
        "details": details,
    }
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def audit_record(
    *,
    action: str,
    actor: AbstractBaseUser | None,
    now: datetime,
    request: DelegationRequest | None = None,
    repository: Repository | None = None,
    details: dict | None = None,
) -> AuditEvent:
    """Append one event. Must run inside the transaction of the change it records."""
    details = details or {}
    if request is not None and repository is None:
        repository = request.repository
    actor_name = actor.get_username() if actor is not None else SYSTEM_ACTOR
    # Locking the head row makes concurrent writers take turns, so the chain never forks.
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(
        pk=1, defaults={"last_hash": GENESIS_HASH}
    )
    digest = event_hash(
        previous_hash=head.last_hash,
        created_at=now,
        actor_name=actor_name,
        action=action,
        request_id=request.pk if request else None,
        repository_id=repository.pk if repository else None,
        details=details,
    )
    event = AuditEvent.objects.create(
        created_at=now,
        actor=actor,
        actor_name=actor_name,
        action=action,
        request=request,
        repository=repository,
        details=details,
        previous_hash=head.last_hash,
        hash=digest,
    )
    AuditChainHead.objects.filter(pk=1).update(last_hash=digest)
    return event

"""Writing the hash-chained audit log. Called only from `services`, inside their transaction."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from django.contrib.auth.models import AbstractBaseUser

from .models import AuditChainHead, AuditEvent, DelegationRequest, Repository

GENESIS_HASH = "0" * 64
SYSTEM_ACTOR = "portal-worker"


def hash_of(event: AuditEvent) -> str:
    """The hash of an event's content chained to the previous event's hash."""
    content = {
        "previous_hash": event.previous_hash,
        "created_at": event.created_at.astimezone(UTC).isoformat(),
        "actor": event.actor_name,
        "action": event.action,
        "request": event.request_id,
        "repository": event.repository_id,
        "details": event.details,
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
    if request is not None and repository is None:
        repository = request.repository
    # Locking the head row makes concurrent writers take turns, so the chain never forks.
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(
        pk=1, defaults={"last_hash": GENESIS_HASH}
    )
    event = AuditEvent(
        created_at=now,
        actor=actor,
        actor_name=actor.get_username() if actor is not None else SYSTEM_ACTOR,
        action=action,
        request=request,
        repository=repository,
        details=details or {},
        previous_hash=head.last_hash,
    )
    event.hash = hash_of(event)
    event.save()
    AuditChainHead.objects.filter(pk=1).update(last_hash=event.hash)
    return event

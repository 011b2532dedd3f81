"""The hash-chained audit log: writing it (only from `services`, inside their transaction) and
verifying it (the `audit_verify` command).

Each event's hash covers its content and the previous event's hash; the chain head row holds
the newest hash. So an edited event no longer matches its hash, a deleted one leaves the next
event chained to a hash nobody has, and deleting the newest events leaves the head pointing
past the end.

The hash is an HMAC keyed with PORTAL_AUDIT_KEY, which the database never holds: someone who
can write to the database but does not have the key cannot recompute the hashes after an edit.
Cutting off the newest events together with the head is caught by the signed checkpoints kept
outside the database (`audit.checkpoints`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from django.conf import settings

from ..models import AuditChainHead, AuditEvent, DelegationRequest, Repository

if TYPE_CHECKING:
    from django.contrib.auth.models import User


GENESIS_HASH = "0" * 64
SYSTEM_ACTOR = "portal-worker"
# The actor of what the directory sync does: nobody decided it, the directory changed.
DIRECTORY_SYNC_ACTOR = "directory-sync"
# The actor of a portal user made for a directory member the portal had to tell something.
DIRECTORY_ACTOR = "directory"
# The throttle on failed logins (django-axes), when it locks an account or an address out.
LOGIN_THROTTLE_ACTOR = "login-throttle"


def utc_timestamp(moment: datetime) -> str:
    """The form of an event's time that its hash covers, and that exports carry verbatim."""
    return moment.astimezone(UTC).isoformat()


def audit_key() -> bytes:
    return str(settings.PORTAL_AUDIT_KEY).encode("utf-8")


def hash_content(
    *,
    key: bytes | None,
    previous_hash: str,
    created_at: str,
    actor: str,
    action: str,
    request: int | None,
    repository: int | None,
    details: object,
) -> str:
    """HMAC-SHA256 with `key` of the canonical JSON of an event's content (`created_at` from
    `utc_timestamp`); plain SHA-256 without a key, as events were chained before the key.

    This is the whole recipe an auditor needs (with the key) to re-verify an exported log.
    """
    content = {
        "previous_hash": previous_hash,
        "created_at": created_at,
        "actor": actor,
        "action": action,
        "request": request,
        "repository": repository,
        "details": details,
    }
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if key is None:
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()
    return hmac.new(key, encoded.encode("utf-8"), hashlib.sha256).hexdigest()


def hash_of(event: AuditEvent) -> str:
    """The hash of an event's content chained to the previous event's hash."""
    return hash_content(
        key=audit_key(),
        previous_hash=event.previous_hash,
        created_at=utc_timestamp(event.created_at),
        actor=event.actor_name,
        action=event.action,
        request=event.request_id,
        repository=event.repository_id,
        details=event.details,
    )


def audit_record(
    *,
    action: str,
    actor: User | None,
    now: datetime,
    request: DelegationRequest | None = None,
    repository: Repository | None = None,
    details: Mapping[str, object] | None = None,
    system_actor: str = SYSTEM_ACTOR,
) -> AuditEvent:
    """Append one event. Must run inside the transaction of the change it records. Without a
    person, the actor is the part of the portal that acted (`system_actor`)."""
    if request is not None and repository is None:
        repository = request.repository
    # Locking the head row makes concurrent writers take turns, so the chain never forks.
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(
        pk=1, defaults={"last_hash": GENESIS_HASH}
    )
    event = AuditEvent(
        created_at=now,
        actor=actor,
        actor_name=actor.get_username() if actor is not None else system_actor,
        action=action,
        request=request,
        repository=repository,
        details=dict(details or {}),
        previous_hash=head.last_hash,
    )
    event.hash = hash_of(event)
    event.save()
    AuditChainHead.objects.filter(pk=1).update(last_hash=event.hash)
    return event


@dataclass(frozen=True)
class PendingEvent:
    """One event of `audit_record_many`, as `audit_record` takes it."""

    action: str
    actor: User | None
    request: DelegationRequest | None = None
    repository: Repository | None = None
    details: Mapping[str, object] | None = None
    system_actor: str = SYSTEM_ACTOR


def audit_record_many(events: list[PendingEvent], *, now: datetime) -> list[AuditEvent]:
    """Append several events in order, chained as one `audit_record` each would chain them, with
    one lock of the head and one insert: a batch of a hundred requests records in milliseconds.
    Must run inside the transaction of the change it records."""
    if not events:
        return []
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(
        pk=1, defaults={"last_hash": GENESIS_HASH}
    )
    previous = head.last_hash
    rows = []
    for pending in events:
        repository = pending.repository
        if pending.request is not None and repository is None:
            repository = pending.request.repository
        event = AuditEvent(
            created_at=now,
            actor=pending.actor,
            actor_name=(
                pending.actor.get_username() if pending.actor is not None else pending.system_actor
            ),
            action=pending.action,
            request=pending.request,
            repository=repository,
            details=dict(pending.details or {}),
            previous_hash=previous,
        )
        event.hash = hash_of(event)
        previous = event.hash
        rows.append(event)
    AuditEvent.objects.bulk_create(rows)
    AuditChainHead.objects.filter(pk=1).update(last_hash=previous)
    return rows


def chain_head() -> str | None:
    """The newest hash of the chain, as its head row records it; None before the first event."""
    return AuditChainHead.objects.filter(pk=1).values_list("last_hash", flat=True).first()


# -- verifying ------------------------------------------------------------------------------------


class Breakage(StrEnum):
    """What is wrong at the first broken link of the chain."""

    CONTENT_CHANGED = "content changed"
    MISSING_BEFORE = "event missing before it"
    NOT_CHAINED = "not chained to the event before it"
    MISSING_AT_END = "deleted at the end"
    ADDED_AT_END = "added after the chain head"
    HEAD_MISMATCH = "chain head mismatch"


@dataclass(frozen=True)
class BrokenLink:
    problem: Breakage
    explanation: str
    # The event where the chain stops holding; None when no event is left to name.
    event_id: int | None = None
    event_summary: str = ""

    def __str__(self) -> str:
        if self.event_id is None:
            return f"The audit log: {self.explanation}"
        return f"Event #{self.event_id} ({self.event_summary}): {self.explanation}"


@dataclass(frozen=True)
class ChainVerification:
    events: int  # how many events were checked and found sound
    last_hash: str  # the hash of the last sound event
    broken: BrokenLink | None

    @property
    def intact(self) -> bool:
        return self.broken is None


_CHAIN_FIELDS = (
    "id",
    "created_at",
    "actor_name",
    "action",
    "request_id",
    "repository_id",
    "details",
    "previous_hash",
    "hash",
)


def audit_chain_verify(*, chunk_size: int = 2000) -> ChainVerification:
    """Walk the audit log in id order and return where its hash chain first breaks, if it does.

    Reads plain tuples in chunks, so a log of 100,000 events takes about a second and little
    memory. Events written while the walk runs are walked too before the chain head is compared,
    so a busy portal does not look tampered with.
    """
    checked, last_id, last_hash = 0, 0, GENESIS_HASH
    while True:
        rows = (
            AuditEvent.objects.filter(id__gt=last_id)
            .order_by("id")
            .values_list(*_CHAIN_FIELDS)
            .iterator(chunk_size=chunk_size)
        )
        for row in rows:
            broken = _broken_link(row, previous_id=last_id, previous_hash=last_hash)
            if broken is not None:
                return ChainVerification(checked, last_hash, broken)
            checked, last_id, last_hash = checked + 1, row[0], row[-1]
        head = chain_head()
        if head == last_hash or (head is None and checked == 0):
            return ChainVerification(checked, last_hash, None)
        if AuditEvent.objects.filter(id__gt=last_id).exists():
            continue  # written during the walk: check them, then the head again
        return ChainVerification(checked, last_hash, _head_problem(head, last_id))


def _summary(created_at: datetime, actor: str, action: str) -> str:
    return f"{created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC {actor} {action}"


def _broken_link(row: tuple, *, previous_id: int, previous_hash: str) -> BrokenLink | None:
    event_id, created_at, actor, action, request, repository, details, chained_to, stored = row
    summary = _summary(created_at, actor, action)
    recomputed = hash_content(
        key=audit_key(),
        previous_hash=chained_to,
        created_at=utc_timestamp(created_at),
        actor=actor,
        action=action,
        request=request,
        repository=repository,
        details=details,
    )
    if stored != recomputed:
        return BrokenLink(
            Breakage.CONTENT_CHANGED,
            "its content was changed after it was written (it no longer matches its hash "
            "under the audit key)",
            event_id,
            summary,
        )
    if chained_to == previous_hash:
        return None
    if previous_id == 0:
        return BrokenLink(
            Breakage.MISSING_BEFORE,
            "the events before it were deleted: it is the oldest event left, yet it follows "
            "another one",
            event_id,
            summary,
        )
    if event_id > previous_id + 1:
        gone = (
            f"event #{previous_id + 1} is"
            if event_id == previous_id + 2
            else f"events #{previous_id + 1} to #{event_id - 1} are"
        )
        return BrokenLink(
            Breakage.MISSING_BEFORE,
            f"the event before it is missing: it does not follow event #{previous_id}, and "
            f"{gone} gone",
            event_id,
            summary,
        )
    return BrokenLink(
        Breakage.NOT_CHAINED,
        f"it does not follow event #{previous_id} before it: one of the two was replaced or "
        "inserted after the fact",
        event_id,
        summary,
    )


def _head_problem(head: str | None, last_id: int) -> BrokenLink:
    """Why the chain head does not name the last event walked (`last_id`, 0 when none)."""
    if head is None:
        return BrokenLink(
            Breakage.HEAD_MISMATCH,
            "the chain head is missing, so events deleted at the end could go unnoticed",
        )
    behind = AuditEvent.objects.filter(hash=head).values_list("id", flat=True).first()
    if behind is not None:
        # The walk found events after this one (the head does not name the last), so one exists.
        added = AuditEvent.objects.filter(id__gt=behind).order_by("id")[0]
        return BrokenLink(
            Breakage.ADDED_AT_END,
            f"it was added without the audit writer: the chain head still ends at event #{behind}",
            added.pk,
            _summary(added.created_at, added.actor_name, added.action),
        )
    if last_id == 0:
        return BrokenLink(
            Breakage.MISSING_AT_END,
            f"every event was deleted: the chain head records the hash {head}",
        )
    last = AuditEvent.objects.get(pk=last_id)
    return BrokenLink(
        Breakage.MISSING_AT_END,
        f"the events written after it were deleted: the chain head records the hash {head}, "
        "which no event has",
        last_id,
        _summary(last.created_at, last.actor_name, last.action),
    )

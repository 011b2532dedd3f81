"""Signed checkpoints of the audit chain, kept outside the database.

A checkpoint says: at this time the chain held this many events, the last one #N with this
hash. It is signed with the audit key (an HMAC: the database never holds the key), written to
the log stream and mailed to the auditors. Checked against the chain later, any earlier
checkpoint shows a rewrite (the event it names no longer has that hash) or a cut-off tail (the
event it names, or some before it, are gone), even one that took the chain head along.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from ..models import AuditEvent
from .chain import audit_key, chain_head, utc_timestamp

MARKER = "audit_checkpoint"
_SIGNED_FIELDS = ("time", "events", "last_event_id", "head")


def checkpoint_make(*, now: datetime) -> dict[str, Any]:
    last = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
    last_id, head = last if last is not None else (0, chain_head() or "")
    fields = {
        "time": utc_timestamp(now),
        "events": AuditEvent.objects.filter(id__lte=last_id).count(),
        "last_event_id": last_id,
        "head": head,
    }
    return {MARKER: 1, **fields, "signature": _signature(fields)}


def _signature(fields: dict[str, Any]) -> str:
    signed = {name: fields[name] for name in _SIGNED_FIELDS}
    encoded = json.dumps(signed, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hmac.new(audit_key(), b"audit checkpoint\x00" + encoded, hashlib.sha256).hexdigest()


def checkpoints_in(text: str) -> list[dict[str, Any]]:
    """The checkpoints in a file: JSON lines as the log stream and the mails carry them (a
    JSON log line's `checkpoint` field, or the checkpoint object itself)."""
    found = []
    for line in text.splitlines():
        start = line.find("{")
        if start < 0 or MARKER not in line:
            continue
        try:
            document = json.loads(line[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(document, dict) and isinstance(document.get("checkpoint"), str):
            document = _parsed(document["checkpoint"])
        if isinstance(document, dict) and document.get(MARKER) == 1:
            found.append(document)
    return found


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def checkpoint_problem(checkpoint: dict[str, Any]) -> str | None:
    """Why the chain does not hold what `checkpoint` saw; None when it does."""
    try:
        fields = {name: checkpoint[name] for name in _SIGNED_FIELDS}
        expected = _signature(fields)
    except (KeyError, TypeError):
        return "it is not a checkpoint (a field is missing)"
    if not hmac.compare_digest(str(checkpoint.get("signature", "")), expected):
        return "its signature does not hold under the audit key: it was not made by this portal"
    last_id, head = fields["last_event_id"], fields["head"]
    if not isinstance(last_id, int) or not isinstance(fields["events"], int):
        return "it is not a checkpoint (a count is not a number)"
    stored = AuditEvent.objects.filter(id=last_id).values_list("hash", flat=True).first()
    if last_id and stored is None:
        return (
            f"event #{last_id}, the newest at {fields['time']}, is gone: the log was cut off "
            "after it was written"
        )
    if last_id and stored != head:
        return (
            f"event #{last_id} no longer has the hash it had at {fields['time']}: the log up to "
            "it was rewritten"
        )
    held = AuditEvent.objects.filter(id__lte=last_id).count()
    if held != fields["events"]:
        return (
            f"{fields['events']} events led up to event #{last_id} at {fields['time']}; "
            f"{held} do now"
        )
    return None


def checkpoint_line(checkpoint: dict[str, Any]) -> str:
    return json.dumps(checkpoint, sort_keys=True, separators=(",", ":"))

"""Reading the audit log: who sees which events, filtering them, and the forms they are shown
and exported in. (Writing and verifying the chain is `chain`.)"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, TypedDict, Unpack

from django.db.models import Q, QuerySet
from django.utils import timezone

from .. import selectors
from ..models import AuditEvent, Repository
from .chain import utc_timestamp

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def audit_access_allowed(user: User) -> bool:
    """Administrators and auditors read the whole log; repository owners the events of their
    repositories."""
    return _reads_everything(user) or selectors.repositories_owned_by(user).exists()


def audit_repositories_for(user: User) -> QuerySet:
    """The repositories whose events `user` may read."""
    if _reads_everything(user):
        return Repository.objects.all()
    return selectors.repositories_owned_by(user)


def _reads_everything(user: User) -> bool:
    return user.is_staff or selectors.is_auditor(user)


class AuditFilters(TypedDict, total=False):
    """What the audit log can be narrowed to; a filter left out or empty narrows nothing.
    Dates are whole days in the portal's time zone, both ends included."""

    repository: Repository | None
    actor: str
    action: str
    request_id: int | None
    date_from: date | None
    date_to: date | None


def audit_events_for(user: User, **filters: Unpack[AuditFilters]) -> QuerySet[AuditEvent]:
    """The events `user` may read that match the filters, newest first. An event belongs to a
    repository through its own repository or its request's."""
    events = AuditEvent.objects.select_related("repository")
    if not _reads_everything(user):
        owned = selectors.repositories_owned_by(user)
        events = events.filter(Q(repository__in=owned) | Q(request__repository__in=owned))
    if (repository := filters.get("repository")) is not None:
        events = events.filter(Q(repository=repository) | Q(request__repository=repository))
    if actor := filters.get("actor"):
        events = events.filter(actor_name=actor)
    if action := filters.get("action"):
        events = events.filter(action=action)
    if (request_id := filters.get("request_id")) is not None:
        events = events.filter(request_id=request_id)
    if (date_from := filters.get("date_from")) is not None:
        events = events.filter(created_at__gte=_start_of(date_from))
    if (date_to := filters.get("date_to")) is not None:
        events = events.filter(created_at__lt=_start_of(date_to + timedelta(days=1)))
    return events.order_by("-id")


def audit_actions_for(user: User) -> list[str]:
    """The distinct actions among the events `user` may read, for the action filter."""
    events = audit_events_for(user).order_by()
    return list(events.values_list("action", flat=True).distinct().order_by("action"))


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


# -- showing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetailLine:
    label: str
    value: str
    monospace: bool = False


# Shown first and in this order; other details follow alphabetically.
_LABELS = {
    "comment": "Comment",
    "reason": "Reason",
    "team": "Team",
    "approvals": "Approved by",
    "required": "Approvals required",
    "roles": "Roles",
    "canonical_key_id": "Key ID",
    "tuf_key_id": "TUF key ID",
    "key_id": "TUF key ID",
    "certificate_sha256": "Certificate fingerprint (SHA-256)",
    "possession": "Proof of possession",
    "role": "Key role",
    "root_key_id": "Root key ID",
    "replaced_canonical_key_id": "Replaced key ID",
    "root_version": "Root version",
    "targets_version": "Targets version",
    "gun": "GUN",
    "notary_url": "Notary server",
    "owners": "Owners group",
    "owners_group": "Owners group",
    "versions_forgotten": "Versions forgotten",
}
_MONOSPACE = {
    "canonical_key_id",
    "tuf_key_id",
    "key_id",
    "certificate_sha256",
    "root_key_id",
    "replaced_canonical_key_id",
}


def details_lines(action: str, details: object) -> list[DetailLine]:
    """An event's details as labelled lines a person reads: transitions as `before → after`,
    fingerprints with colons, lists joined."""
    if not isinstance(details, dict):
        return [DetailLine("Details", _plain(details))]
    rest = dict(details)
    lines: list[DetailLine] = []
    if "from" in rest and "to" in rest:
        label = "Status" if action.startswith("request.") else "Changed"
        lines.append(DetailLine(label, f"{_plain(rest.pop('from'))} → {_plain(rest.pop('to'))}"))
    if "targets_version_before" in rest or "targets_version_after" in rest:
        before = rest.pop("targets_version_before", None)
        after = rest.pop("targets_version_after", None)
        lines.append(DetailLine("Targets version", f"{_plain(before)} → {_plain(after)}"))
    for key in [*(k for k in _LABELS if k in rest), *sorted(k for k in rest if k not in _LABELS)]:
        value = rest[key]
        if key == "certificate_sha256" and isinstance(value, str):
            value = ":".join(value[i : i + 2] for i in range(0, len(value), 2)).upper()
        label = _LABELS.get(key, key.replace("_", " ").capitalize())
        lines.append(DetailLine(label, _plain(value), key in _MONOSPACE))
    return lines


# What an event's row shows at once: what happened. The identity of the key and certificate, the
# same on every event of a request, waits behind "Details".
_HEADLINE = {
    "Status",
    "Changed",
    "Targets version",
    "Comment",
    "Reason",
    "Approved by",
    "Approvals required",
    "End reason",
    "Until",
    "Previous until",
    "Team",
}


def headline_and_rest(lines: list[DetailLine]) -> tuple[list[DetailLine], list[DetailLine]]:
    """An event's detail lines split into what its row shows at once and what it shows on
    demand, each in the order `details_lines` gives."""
    headline = [line for line in lines if line.label in _HEADLINE and line.value != "—"]
    rest = [line for line in lines if line not in headline]
    return headline, rest


def _plain(value: object) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(_plain(item) for item in value) or "—"
    if isinstance(value, dict):
        if set(value) == {"from", "to"}:
            return f"{_plain(value['from'])} → {_plain(value['to'])}"
        return "; ".join(f"{key}: {_plain(item)}" for key, item in value.items()) or "—"
    return str(value)


# -- exporting ------------------------------------------------------------------------------------

EXPORT_FIELDS = (
    "id",
    "created_at",
    "actor",
    "action",
    "request_id",
    "repository_id",
    "repository",
    "details",
    "previous_hash",
    "hash",
)


_EXPORT_COLUMNS = (
    "id",
    "created_at",
    "actor_name",
    "action",
    "request_id",
    "repository_id",
    "repository__dtr_host",
    "repository__namespace",
    "repository__name",
    "details",
    "previous_hash",
    "hash",
)


def export_records(events: QuerySet, *, chunk_size: int = 2000) -> Iterator[dict[str, object]]:
    """`events` as exported, oldest first (the order the chain is followed in): everything
    each hash covers, verbatim, and the repository's GUN.

    `created_at`, `actor`, `action`, `request_id`, `repository_id` and `details` are exactly
    what `audit.hash_content` hashes (as created_at, actor, action, request, repository,
    details), so an auditor can recompute every hash and follow the chain offline. Rows are read
    as tuples in chunks: a log of 100,000 events streams without loading it.
    """
    rows = events.order_by("id").values_list(*_EXPORT_COLUMNS).iterator(chunk_size=chunk_size)
    for row in rows:
        (event_id, created_at, actor, action, request_id, repository_id) = row[:6]
        dtr_host, namespace, name, details, previous_hash, event_hash = row[6:]
        yield {
            "id": event_id,
            "created_at": utc_timestamp(created_at),
            "actor": actor,
            "action": action,
            "request_id": request_id,
            "repository_id": repository_id,
            "repository": f"{dtr_host}/{namespace}/{name}" if repository_id else None,
            "details": details,
            "previous_hash": previous_hash,
            "hash": event_hash,
        }


# A spreadsheet runs a cell that starts with one of these as a formula. An apostrophe in front
# makes it text; cells that already start with one get another, so the rule is reversible:
# drop one leading apostrophe from any cell that has one.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def spreadsheet_safe(value: str) -> str:
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value

"""The request state machine (product.md §3): one place where a status changes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from ..audit.chain import SYSTEM_ACTOR, PendingEvent, audit_record, audit_record_many
from ..exceptions import IllegalTransition
from ..models import AuditAction, DelegationRequest, RequestStatus

if TYPE_CHECKING:
    from django.contrib.auth.models import User


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


def transition(
    request_id: int,
    *,
    source: set[str],
    target: str,
    actor: User | None,
    action: AuditAction,
    now: datetime,
    details: Mapping[str, object] | None = None,
    system_actor: str = SYSTEM_ACTOR,
    **fields: object,
) -> DelegationRequest:
    """Move a request from one of `source` to `target` if nobody moved it first, and audit it.

    The update only matches the row in the status just read, so of two concurrent callers
    exactly one changes it; the other gets IllegalTransition.
    """
    for status in source:
        if target not in TRANSITIONS.get(status, ()):
            raise ValueError(f"{status} → {target} is not a transition of the state machine")
    previous = DelegationRequest.objects.values_list("status", flat=True).get(pk=request_id)
    changed = previous in source and DelegationRequest.objects.filter(
        pk=request_id, status=previous
    ).update(status=target, updated_at=now, **fields)
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
        details={"from": previous, "to": target, **request_facts(request), **(details or {})},
        system_actor=system_actor,
    )
    return request


def transition_many(
    request_ids: list[int],
    *,
    source: str,
    target: str,
    action: AuditAction,
    now: datetime,
    details: Callable[[DelegationRequest], Mapping[str, object]] | None = None,
    **fields: object,
) -> list[DelegationRequest]:
    """`transition` for many requests of one `source` status, in a few statements: the batch
    worker's. Those no longer in `source` are left out of the result, not raised about. Each
    moved request gets its own audit event, as with `transition`; the actor is the worker."""
    if target not in TRANSITIONS.get(source, ()):
        raise ValueError(f"{source} → {target} is not a transition of the state machine")
    # Locked, so the rows read in `source` are the rows the update moves.
    movable = list(
        DelegationRequest.objects.select_for_update(of=("self",))
        .filter(pk__in=request_ids, status=source)
        .values_list("pk", flat=True)
    )
    if not movable:
        return []
    DelegationRequest.objects.filter(pk__in=movable, status=source).update(
        status=target, updated_at=now, **fields
    )
    moved = list(
        DelegationRequest.objects.select_related("repository", "requester")
        .filter(pk__in=movable)
        .order_by("pk")
    )
    audit_record_many(
        [
            PendingEvent(
                action=action,
                actor=None,
                request=request,
                details={
                    "from": source,
                    "to": target,
                    **request_facts(request),
                    **(details(request) if details else {}),
                },
            )
            for request in moved
        ],
        now=now,
    )
    return moved


def request_facts(request: DelegationRequest) -> dict[str, object]:
    """What every audit event about a request records of it: whose key goes where."""
    return {
        "team": request.team,
        "roles": request.role_names,
        "canonical_key_id": request.canonical_key_id,
        "tuf_key_id": request.tuf_key_id,
        "certificate_sha256": request.certificate_sha256,
    }

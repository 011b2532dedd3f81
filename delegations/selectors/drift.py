"""Drift: comparing a repository's delegations on the Notary server with the portal's, and the
findings owners see."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import QuerySet

from ..models import (
    Delegation,
    DelegationRequest,
    DriftFinding,
    DriftKind,
    Repository,
    RequestStatus,
)
from ..notary import (
    Delegations,
    InvalidKey,
    PublicKey,
    canonical_id_or_none,
    certificate_common_name,
)
from .people import repositories_owned_by

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@dataclass(frozen=True)
class Disagreement:
    """One way the server's delegations and the portal's differ, before it is a finding."""

    kind: DriftKind
    canonical_key_id: str
    key: PublicKey | None
    roles_present: tuple[str, ...]
    roles_missing: tuple[str, ...] = ()
    delegation_id: int | None = None

    @property
    def subject(self) -> str:
        if self.key is None:
            return ""
        try:
            return certificate_common_name(self.key)
        except InvalidKey:
            return ""


def drift_between(repository: Repository, server: Delegations) -> list[Disagreement]:
    """Where `server` (the repository's verified delegations) and the portal disagree: keys the
    portal did not delegate, and active delegations whose key is missing from a role.

    Keys of open work (approved requests on their way, delegations being ended) are the
    worker's to settle and are left out, as are the roles they concern.
    """
    keys = server.keys or {}
    # Canonical key ID → the roles holding it, in the order targets.json lists them.
    present: dict[str, list[str]] = defaultdict(list)
    key_of: dict[str, PublicKey] = {}
    for role in server.roles or ():
        for tuf_id in role.keyids or ():
            key = keys.get(tuf_id)
            canonical = canonical_id_or_none(key) if key is not None else None
            if key is None or canonical is None:
                continue
            if role.name not in present[canonical]:
                present[canonical].append(role.name)
            key_of.setdefault(canonical, key)
    active = {
        delegation.canonical_key_id: delegation
        for delegation in Delegation.objects.active().filter(repository=repository)
    }
    on_their_way = set(
        DelegationRequest.objects.filter(
            repository=repository, status__in=[RequestStatus.APPROVED, RequestStatus.APPLYING]
        ).values_list("canonical_key_id", flat=True)
    )
    found: list[Disagreement] = []
    for canonical in sorted(present):
        if canonical in active or canonical in on_their_way:
            continue
        found.append(
            Disagreement(
                DriftKind.UNKNOWN_KEY,
                canonical,
                key_of[canonical],
                tuple(present[canonical]),
            )
        )
    for canonical, delegation in sorted(active.items()):
        if delegation.ending or canonical in on_their_way:
            continue
        expected = list(delegation.roles)
        holding = present.get(canonical, [])
        missing = tuple(role for role in expected if role not in holding)
        if not missing:
            continue
        found.append(
            Disagreement(
                DriftKind.MISSING_KEY if len(missing) == len(expected) else DriftKind.ONE_ROLE_ONLY,
                canonical,
                key_of.get(canonical),
                tuple(role for role in expected if role in holding),
                missing,
                delegation.pk,
            )
        )
    return found


def drift_open_for(
    user: User, *, owned: QuerySet[Repository] | None = None
) -> QuerySet[DriftFinding]:
    """The open findings of the repositories `user` owns (`owned`, when the caller has them
    already), oldest first."""
    repositories = owned if owned is not None else repositories_owned_by(user)
    return DriftFinding.objects.filter(
        repository__in=repositories, resolved_at__isnull=True
    ).select_related("repository", "delegation__member")


def drift_finding_owned_by(user: User, finding_id: int) -> DriftFinding | None:
    """An open finding of a repository `user` owns, or None."""
    return drift_open_for(user).filter(pk=finding_id).first()

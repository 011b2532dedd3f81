"""The delegation changes the portal makes, and what they do to `targets.json` before they do it.

A change is a value (add, remove or replace one member's key in a set of roles) applied to the
current delegations each time a publish is attempted, so a retry after a version conflict
re-applies it to whatever another publisher left. A plan is the before and after of one change
against the live trust data, for people to read before anything is signed.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from .errors import InvalidKey, InvalidRoleName
from .keys import X509_KEYTYPES, PublicKey, certificate_common_name, short_key_id
from .metadata import Targets
from .roles import RELEASES, DelegationRole, Delegations


class DelegationChange(Protocol):
    def apply(self, delegations: Delegations) -> None: ...

    def describe(self) -> str: ...


def _roles_text(role_names: Sequence[str]) -> str:
    return " and ".join(role_names)


@dataclass(frozen=True)
class AddKey:
    """Delegate `key` in every role, for all paths (the key union `notary delegation add` does)."""

    key: PublicKey
    role_names: tuple[str, ...]

    def apply(self, delegations: Delegations) -> None:
        delegations.add_key(self.key, self.role_names)

    def describe(self) -> str:
        return f"add key {self.key.short_id} to {_roles_text(self.role_names)}"


def _remove_member_key(
    delegations: Delegations,
    key: PublicKey,
    role_names: Sequence[str],
    keep: PublicKey | None = None,
) -> None:
    """Take a member's key (by key pair) out of their team roles, and out of `targets/releases`
    only when no other team still delegates it: a key delegated through two teams must stay in
    releases for the other one (both roles or neither)."""
    delegations.remove_key(key, [name for name in role_names if name != RELEASES], keep=keep)
    if RELEASES in role_names and not delegations.holds_key(key, besides=RELEASES, ignoring=keep):
        delegations.remove_key(key, [RELEASES], keep=keep)


@dataclass(frozen=True)
class RemoveKey:
    """Take `key` (by key pair, whatever certificate carried it) out of the roles."""

    key: PublicKey
    role_names: tuple[str, ...]

    def apply(self, delegations: Delegations) -> None:
        _remove_member_key(delegations, self.key, self.role_names)

    def describe(self) -> str:
        return f"remove key {self.key.short_id} from {_roles_text(self.role_names)}"


@dataclass(frozen=True)
class ReplaceKey:
    """Renewal: `new` in and `old` out of every role, in the same version."""

    old: PublicKey
    new: PublicKey
    role_names: tuple[str, ...]

    def apply(self, delegations: Delegations) -> None:
        delegations.add_key(self.new, self.role_names)
        _remove_member_key(delegations, self.old, self.role_names, keep=self.new)

    def describe(self) -> str:
        return (
            f"replace key {self.old.short_id} by {self.new.short_id} in "
            f"{_roles_text(self.role_names)}"
        )


@dataclass
class Batch:
    """Several members' changes, applied in order into one targets version.

    A change notary would refuse (a key it cannot use, a role name it rejects) is left out on
    its own and listed in `refused` with the reason; the others go ahead. After `apply`,
    `effective` holds the positions of the changes that altered the delegations, the rest having
    been in place already. Both describe the last `apply`, the one a publish sent.
    """

    changes: tuple[DelegationChange, ...]
    refused: dict[int, str] = field(default_factory=dict)
    effective: set[int] = field(default_factory=set)

    def apply(self, delegations: Delegations) -> None:
        self.refused, self.effective = {}, set()
        for index, change in enumerate(self.changes):
            # A change may fail half-way through its roles: try it on a copy.
            trial = delegations.copy()
            try:
                change.apply(trial)
            except (InvalidKey, InvalidRoleName) as error:
                self.refused[index] = error.message
                continue
            if _shape(trial) != _shape(delegations):
                self.effective.add(index)
            delegations.keys, delegations.roles = trial.keys, trial.roles

    def describe(self) -> str:
        return "; ".join(change.describe() for change in self.changes)


def _shape(delegations: Delegations) -> tuple[object, ...]:
    """What a change can alter, cheap to compare: each role's keys and paths, and the key set
    (keys themselves are immutable)."""
    roles: list[DelegationRole] = delegations.roles or []
    return (
        tuple((role.name, tuple(role.keyids or ()), tuple(role.paths or ())) for role in roles),
        frozenset(delegations.keys or ()),
    )


@dataclass(frozen=True)
class DelegatedKey:
    """A delegated key as people need to see it: both IDs, and whose certificate it is."""

    tuf_id: str
    canonical_id: str
    keytype: str
    subject: str = ""
    expires: datetime | None = None

    @property
    def short_id(self) -> str:
        return short_key_id(self.canonical_id)

    @classmethod
    def of(cls, key: PublicKey) -> DelegatedKey:
        try:
            canonical_id = key.canonical_id
            if key.keytype not in X509_KEYTYPES:
                return cls(key.tuf_id, canonical_id, key.keytype)
            certificate = key.certificate()
            return cls(
                key.tuf_id,
                canonical_id,
                key.keytype,
                subject=certificate_common_name(key),
                expires=certificate.not_valid_after_utc,
            )
        except InvalidKey:
            return cls(key.tuf_id, "(certificate does not parse)", key.keytype)

    def line(self) -> str:
        who = f" CN={self.subject}" if self.subject else ""
        return f"key {self.canonical_id} (TUF {self.tuf_id}) {self.keytype}{who}"


@dataclass(frozen=True)
class DelegatedRole:
    """One delegation role as `notary delegation list` shows it, with TUF IDs beside."""

    name: str
    paths: tuple[str, ...]
    threshold: int
    keys: tuple[DelegatedKey, ...]

    def lines(self) -> list[str]:
        paths = ", ".join('"' + path + '"' for path in self.paths) or "(no paths)"
        return [
            f"role {self.name}: threshold {self.threshold}, paths {paths}",
            *(f"  {key.line()}" for key in self.keys),
        ]


def delegated_roles(targets: Targets) -> list[DelegatedRole]:
    """The delegations of a targets file, in its order, keys resolved."""
    delegations = targets.delegations
    keys = delegations.keys or {}
    return [
        DelegatedRole(
            name=role.name,
            paths=tuple(role.paths or ()),
            threshold=role.threshold,
            keys=tuple(
                DelegatedKey.of(keys[keyid])
                if keyid in keys
                else DelegatedKey(keyid, "(key missing from delegations)", "")
                for keyid in role.keyids or ()
            ),
        )
        for role in delegations.roles or ()
    ]


@dataclass(frozen=True)
class RoleChange:
    name: str
    before: DelegatedRole | None
    after: DelegatedRole | None

    @property
    def added(self) -> list[DelegatedKey]:
        before = {key.tuf_id for key in self.before.keys} if self.before else set()
        return [key for key in self.after.keys if key.tuf_id not in before] if self.after else []

    @property
    def removed(self) -> list[DelegatedKey]:
        after = {key.tuf_id for key in self.after.keys} if self.after else set()
        return [key for key in self.before.keys if key.tuf_id not in after] if self.before else []


@dataclass
class Plan:
    """What a change would do to `targets.json`; `after` is unsigned and never published."""

    description: str
    before: Targets
    after: Targets

    @property
    def changed(self) -> bool:
        # Only the delegations differ between before and after (the rest is shared).
        return self.after.delegations.to_dict() != self.before.delegations.to_dict()

    @property
    def role_changes(self) -> list[RoleChange]:
        before = {role.name: role for role in delegated_roles(self.before)}
        after = {role.name: role for role in delegated_roles(self.after)}
        names = list(before) + [name for name in after if name not in before]
        return [
            RoleChange(name, before.get(name), after.get(name))
            for name in names
            if before.get(name) != after.get(name)
        ]

    def diff(self) -> str:
        """A unified diff of the delegations, one line per role and per key."""
        return "".join(
            difflib.unified_diff(
                _summary(self.before),
                _summary(self.after),
                fromfile=f"targets.json version {self.before.version}",
                tofile=f"targets.json version {self.after.version}",
            )
        )


def _summary(targets: Targets) -> list[str]:
    return [line + "\n" for role in delegated_roles(targets) for line in role.lines()]


def plan_change(targets: Targets, change: DelegationChange) -> Plan:
    """Apply `change` to a copy of `targets`; the version goes up only if something changed."""
    # Only the delegations change; the (possibly large) targets map is shared, not copied.
    after = dataclasses.replace(targets, delegations=targets.delegations.copy())
    change.apply(after.delegations)
    plan = Plan(change.describe(), targets, after)
    if plan.changed:
        after.version = targets.version + 1
    return plan

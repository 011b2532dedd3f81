"""Delegation roles: their names, and the edits notary's client makes to them.

A targets file delegates to roles such as `targets/releases` and `targets/qa`; each role lists
the TUF IDs of its keys, and the keys themselves sit once in `delegations.keys`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import InvalidMetadata, InvalidRoleName
from .fields import integer, key_map, string_list_or_none
from .keys import PublicKey, canonical_id_or_none

ROOT = "root"
TARGETS = "targets"
SNAPSHOT = "snapshot"
TIMESTAMP = "timestamp"
RELEASES = "targets/releases"
ALL_PATHS = ""

_ROLE_NAME = re.compile(r"^[-a-z0-9_/]+$")
# docker trust's rule for signer names; UCP team roles must be usable by `docker trust` too.
_SIGNER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_MAX_ROLE_NAME = 255


def team_role_name(team: str) -> str:
    """The delegation role of a UCP team: `targets/<team>`, if docker trust can use it."""
    if not _SIGNER_NAME.match(team) or team == "releases" or len(team) > 200:
        raise InvalidRoleName(
            f"{team!r} cannot be a signer role: use lower-case letters, digits, '-' and '_', "
            "starting with a letter or digit (and not 'releases')"
        )
    return f"{TARGETS}/{team}"


def check_delegation_role_name(name: str) -> None:
    """Refuse role names notary would refuse for a direct child of `targets`."""
    valid = (
        isinstance(name, str)
        and len(name) <= _MAX_ROLE_NAME
        and _ROLE_NAME.match(name)
        and name.startswith(TARGETS + "/")
        and "/" not in name[len(TARGETS) + 1 :]
        and name != TARGETS + "/"
    )
    if not valid:
        raise InvalidRoleName(f"{name!r} is not a delegation role directly under targets")


@dataclass
class DelegationRole:
    name: str
    keyids: list[str] | None
    threshold: int
    paths: list[str] | None = None

    @classmethod
    def from_dict(cls, data: object) -> DelegationRole:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise InvalidMetadata("a delegation role without a name")
        return cls(
            name=data["name"],
            keyids=string_list_or_none(data.get("keyids"), "keyids"),
            threshold=integer(data, "threshold"),
            paths=string_list_or_none(data.get("paths"), "paths"),
        )

    def to_dict(self) -> dict[str, object]:
        written: dict[str, object] = {
            "keyids": self.keyids,
            "name": self.name,
            "threshold": self.threshold,
        }
        if self.paths:  # omitempty: an empty list is dropped, never written as []
            written["paths"] = self.paths
        return written


@dataclass
class Delegations:
    keys: dict[str, PublicKey] | None = field(default_factory=dict)
    roles: list[DelegationRole] | None = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: object) -> Delegations:
        if data is None:
            return cls(keys=None, roles=None)
        if not isinstance(data, dict):
            raise InvalidMetadata("delegations must be an object")
        roles = data.get("roles")
        if roles is not None and not isinstance(roles, list):
            raise InvalidMetadata("delegations.roles must be a list")
        return cls(
            keys=key_map(data.get("keys")),
            roles=None if roles is None else [DelegationRole.from_dict(r) for r in roles],
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "keys": None
            if self.keys is None
            else {keyid: key.to_dict() for keyid, key in self.keys.items()},
            "roles": None if self.roles is None else [role.to_dict() for role in self.roles],
        }

    def copy(self) -> Delegations:
        """A copy that edits cannot reach back from (keys are immutable and shared)."""
        return Delegations(
            keys=None if self.keys is None else dict(self.keys),
            roles=None
            if self.roles is None
            else [
                dataclasses.replace(
                    role,
                    keyids=None if role.keyids is None else list(role.keyids),
                    paths=None if role.paths is None else list(role.paths),
                )
                for role in self.roles
            ],
        )

    def role(self, name: str) -> DelegationRole | None:
        return next((role for role in self.roles or () if role.name == name), None)

    def add_key(self, key: PublicKey, role_names: Iterable[str]) -> None:
        """Delegate `key` in each role for all paths, as `notary delegation add --all-paths` does.

        A missing role is appended with threshold 1; an existing one gets the key and the "all
        paths" entry appended if absent, and keeps its threshold and position. Idempotent.
        """
        if self.keys is None:
            self.keys = {}
        if self.roles is None:
            self.roles = []
        self.keys[key.tuf_id] = key
        for name in role_names:
            check_delegation_role_name(name)
            role = self.role(name)
            if role is None:
                self.roles.append(
                    DelegationRole(name=name, keyids=[key.tuf_id], threshold=1, paths=[ALL_PATHS])
                )
                continue
            if key.tuf_id not in (role.keyids or []):
                role.keyids = [*(role.keyids or []), key.tuf_id]
            if ALL_PATHS not in (role.paths or []):
                role.paths = [*(role.paths or []), ALL_PATHS]
        self.remove_unused_keys()

    def remove_key(
        self, key: PublicKey, role_names: Iterable[str], *, keep: PublicKey | None = None
    ) -> None:
        """Take `key` out of each role, as `notary delegation remove ROLE <canonical id>` does.

        The match is by canonical ID, so every certificate of the same key pair goes: revoking
        is about the private key, whichever certificate carried it. `keep` (a renewal's new
        certificate for the same key pair) stays. A role left without keys stays too, with
        `keyids` null as the Go client writes it; a team role is never deleted here. Idempotent.
        """
        canonical = key.canonical_id
        keys = self.keys or {}
        same_pair = {k for k, held in keys.items() if canonical_id_or_none(held) == canonical}
        doomed = {key.tuf_id} | same_pair
        if keep is not None:
            doomed.discard(keep.tuf_id)
        for name in role_names:
            check_delegation_role_name(name)
            role = self.role(name)
            if role is None or not role.keyids:
                continue
            remaining = [keyid for keyid in role.keyids if keyid not in doomed]
            role.keyids = remaining or None
        self.remove_unused_keys()

    def holds_key(self, key: PublicKey, *, besides: str, ignoring: PublicKey | None = None) -> bool:
        """Whether a role other than `besides` delegates `key`'s key pair (through any
        certificate but `ignoring`)."""
        keys = self.keys or {}
        canonical = key.canonical_id
        return any(
            keyid in keys and canonical_id_or_none(keys[keyid]) == canonical
            for role in self.roles or ()
            if role.name != besides
            for keyid in role.keyids or ()
            if ignoring is None or keyid != ignoring.tuf_id
        )

    def remove_unused_keys(self) -> None:
        """Drop delegation keys no role uses, as Go's RemoveUnusedKeys does after every edit."""
        if self.keys is None:
            return
        used = {keyid for role in self.roles or () for keyid in role.keyids or ()}
        self.keys = {k: v for k, v in self.keys.items() if k in used}

    def delegates(self, key: PublicKey, role_name: str) -> bool:
        """Whether `key` signs for all paths in `role_name`."""
        role = self.role(role_name)
        return (
            role is not None
            and key.tuf_id in (role.keyids or [])
            and key.tuf_id in (self.keys or {})
            and ALL_PATHS in (role.paths or [])
        )

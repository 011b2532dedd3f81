"""Which signed tags a delegation change would leave without a valid signature.

A delegated role's file (`targets/releases.json`, `targets/qa.json`) counts only while the keys
that targets.json delegates for the role sign it up to the role's threshold; taking a key out
of a role therefore un-signs every tag in the role's file that only that key vouched for
(protocol note §7.2), until a remaining signer re-signs the file with `notary witness`.

The files are read as the Go client reads them, after a verified read of root, timestamp,
snapshot and targets: each by the hash the verified snapshot lists, checked against that hash,
then its signatures against the delegation's keys, and its expiry. Nothing is signed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .changes import DelegationChange, Plan, plan_change
from .client import NotaryClient
from .errors import InvalidMetadata
from .keys import PublicKey, canonical_id_or_none, short_key_id
from .metadata import FileMeta, Metadata, Targets
from .reading import TrustReader
from .roles import Delegations


@dataclass(frozen=True)
class RoleSignatures:
    """One delegated role's file on the server, before and after a change of its keys."""

    name: str
    # False when nobody has signed anything into the role yet (the server holds no file).
    has_file: bool
    version: int | None
    # The targets in the file that the role may sign for (its paths), sorted.
    tags: tuple[str, ...]
    # Canonical IDs of the delegated keys whose signatures on the file verify now.
    signers: tuple[str, ...]
    verifies_now: bool
    verifies_after: bool
    # Why the file does not verify now, when it was found but does not.
    problem: str = ""

    @property
    def signer_ids(self) -> tuple[tuple[str, str], ...]:
        """Each signer's canonical ID with its short form, as pages show them."""
        return tuple((signer, short_key_id(signer)) for signer in self.signers)

    @property
    def tags_losing_signature(self) -> tuple[str, ...]:
        """The tags this role stops vouching for: all of its file's, or none."""
        return self.tags if self.verifies_now and not self.verifies_after else ()


@dataclass(frozen=True)
class ChangeImpact:
    """What a change does to targets.json (`plan`) and to the signed tags of the roles whose
    keys it changes (`roles`)."""

    plan: Plan
    roles: tuple[RoleSignatures, ...]

    @property
    def losing(self) -> tuple[RoleSignatures, ...]:
        """The roles whose file would stop verifying, each with the tags it holds."""
        return tuple(role for role in self.roles if role.tags_losing_signature)

    def roles_keeping(self, key: PublicKey) -> list[str]:
        """The roles that still delegate `key`'s key pair (by any certificate) after the change."""
        return _roles_holding(self.plan.after.delegations, key)


def change_impact(client: NotaryClient, change: DelegationChange, *, now: datetime) -> ChangeImpact:
    """Read the live trust data through `client` and work out what `change` would un-sign."""
    state = client.fetch(now=now)
    plan = plan_change(state.targets.signed, change)
    # The reader only fetches files by the hashes of the snapshot `client` verified just now.
    reader = TrustReader(client.transport)
    meta = state.snapshot.signed.meta or {}
    changed = [role.name for role in plan.role_changes if role.before is not None]
    roles = tuple(
        _role_signatures(reader, meta, plan, name, now=now) if name in meta else _unsigned(name)
        for name in changed
    )
    return ChangeImpact(plan=plan, roles=roles)


def _unsigned(name: str) -> RoleSignatures:
    return RoleSignatures(
        name=name,
        has_file=False,
        version=None,
        tags=(),
        signers=(),
        verifies_now=False,
        verifies_after=False,
    )


def _role_signatures(
    reader: TrustReader, meta: dict[str, FileMeta], plan: Plan, name: str, *, now: datetime
) -> RoleSignatures:
    try:
        data = reader.get_by_hash(name, meta)
        role_file = Metadata.from_bytes(data, Targets)
    except InvalidMetadata as error:
        return RoleSignatures(
            name=name,
            has_file=True,
            version=None,
            tags=(),
            signers=(),
            verifies_now=False,
            verifies_after=False,
            problem=error.message,
        )
    before = _role_keys(plan.before.delegations, name)
    after = _role_keys(plan.after.delegations, name)
    signed_by = role_file.valid_signers(before.keys)
    expired = role_file.signed.is_expired(now)
    verifies_now = not expired and len(signed_by) >= before.threshold
    verifies_after = not expired and len(role_file.valid_signers(after.keys)) >= after.threshold
    problem = ""
    if expired:
        problem = f"{name} expired at {role_file.signed.expires.format()}"
    elif not verifies_now:
        problem = f"valid signatures did not meet threshold for {name}"
    return RoleSignatures(
        name=name,
        has_file=True,
        version=role_file.signed.version,
        tags=tuple(sorted(_tags_within(role_file.signed, before.paths))),
        signers=tuple(
            sorted(
                canonical_id_or_none(key) or key.tuf_id
                for key in before.keys
                if key.tuf_id in signed_by
            )
        ),
        verifies_now=verifies_now,
        verifies_after=verifies_after,
        problem=problem,
    )


@dataclass(frozen=True)
class _RoleKeys:
    keys: tuple[PublicKey, ...]
    threshold: int
    paths: tuple[str, ...]


def _role_keys(delegations: Delegations, name: str) -> _RoleKeys:
    """The keys a role's file is checked against; a role that is gone verifies nothing."""
    role = delegations.role(name)
    if role is None:
        return _RoleKeys(keys=(), threshold=1, paths=())
    held = delegations.keys or {}
    # A key listed under an ID that is not its own makes Go refuse the role (ErrInvalidKeyID),
    # so it vouches for nothing here either.
    keys = tuple(
        held[keyid] for keyid in role.keyids or () if keyid in held and held[keyid].tuf_id == keyid
    )
    return _RoleKeys(keys=keys, threshold=max(role.threshold, 1), paths=tuple(role.paths or ()))


def _tags_within(targets: Targets, paths: tuple[str, ...]) -> list[str]:
    """The targets a role may sign: notary matches role paths as plain prefixes."""
    return [name for name in targets.targets or {} if any(name.startswith(p) for p in paths)]


def _roles_holding(delegations: Delegations, key: PublicKey) -> list[str]:
    canonical = key.canonical_id
    held = delegations.keys or {}
    return [
        role.name
        for role in delegations.roles or ()
        if any(
            keyid in held and canonical_id_or_none(held[keyid]) == canonical
            for keyid in role.keyids or ()
        )
    ]

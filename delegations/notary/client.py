"""Reading, initialising and changing the delegations of one repository on a Notary v1 server."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .changes import (
    DelegatedRole,
    DelegationChange,
    Plan,
    delegated_roles,
    plan_change,
)
from .errors import (
    InvalidMetadata,
    MetadataNotFound,
    NotaryError,
    PermanentNotaryError,
    PublishOutcomeUnknown,
    ReadBackMismatch,
    RepositoryAlreadyInitialised,
    VersionConflict,
)
from .gotime import GoTime
from .keys import PublicKey, SigningKey
from .metadata import (
    ROOT_LIFETIME,
    SNAPSHOT_LIFETIME,
    TARGETS_LIFETIME,
    FileMeta,
    Metadata,
    Root,
    RootRole,
    Snapshot,
    Targets,
)
from .reading import FileSource, TrustMemory, TrustReader, TrustState
from .roles import ROOT, SNAPSHOT, TARGETS, TIMESTAMP, Delegations

DEFAULT_PUBLISH_ATTEMPTS = 5


class Publisher(FileSource, Protocol):
    def publish(self, files: dict[str, bytes]) -> None: ...


@dataclass(frozen=True)
class PublishResult:
    """What a delegation change did: `changed` is False when it was already in place."""

    changed: bool
    version_before: int
    version_after: int


class NotaryClient:
    """One repository (GUN) on one Notary server.

    Reads are verified from the trust anchor (`pinned_root_keys`, and `memory` of what was
    verified before; see `reading`). Writes are one signed publish each, re-applied to a fresh
    read when another publisher wins the race, then read back. `memory` is updated by every
    successful read; callers that keep it between runs get rollback protection and follow root
    rotations.
    """

    def __init__(
        self,
        transport: Publisher,
        *,
        pinned_root_keys: Sequence[PublicKey] = (),
        memory: TrustMemory | None = None,
    ) -> None:
        self.transport = transport
        self.gun = transport.gun
        self.pinned_root_keys = list(pinned_root_keys)
        self.memory = memory or TrustMemory()

    # -- reading -------------------------------------------------------------------------------

    def _reader(self) -> TrustReader:
        return TrustReader(
            self.transport, pinned_root_keys=self.pinned_root_keys, memory=self.memory
        )

    def fetch(self, *, now: datetime) -> TrustState:
        state = self._reader().read(now=now)
        self.memory = state.memory
        return state

    def list_delegations(self, *, now: datetime) -> list[DelegatedRole]:
        """The roles `notary delegation list` shows, each key with its canonical and TUF IDs."""
        return delegated_roles(self.fetch(now=now).targets.signed)

    def plan(self, change: DelegationChange, *, now: datetime) -> Plan:
        """What `change` would do to the live targets.json; nothing is signed or published."""
        return plan_change(self.fetch(now=now).targets.signed, change)

    # -- initialising --------------------------------------------------------------------------

    def initialise(
        self,
        *,
        root_key: SigningKey,
        targets_key: SigningKey,
        now: datetime,
        snapshot_key: SigningKey | None = None,
    ) -> TrustState:
        """Create the repository's trust data; the timestamp is always the server's.

        Without `snapshot_key` the snapshot is server-managed too, like `docker trust signer
        add` on a new repository, so delegates can publish. With one, the portal signs
        snapshots itself (like plain `notary init`) and uploads one with every change.
        """
        try:
            self.transport.get(f"{ROOT}.json")
        except MetadataNotFound:
            pass
        else:
            raise RepositoryAlreadyInitialised(f"{self.gun} already has trust data on the server")

        # GET <role>.key makes the server create the key if it has none yet.
        keys = {
            ROOT: root_key.public,
            TARGETS: targets_key.public,
            SNAPSHOT: snapshot_key.public if snapshot_key else self._server_key(SNAPSHOT),
            TIMESTAMP: self._server_key(TIMESTAMP),
        }
        root = Metadata(
            Root(
                version=1,
                expires=GoTime.from_datetime(now + ROOT_LIFETIME),
                keys={key.tuf_id: key for key in keys.values()},
                roles={role: RootRole([key.tuf_id], 1) for role, key in keys.items()},
            )
        )
        root.sign([root_key])
        root_bytes = root.to_bytes()
        targets = Metadata(
            Targets(
                version=1,
                expires=GoTime.from_datetime(now + TARGETS_LIFETIME),
                targets={},
                delegations=Delegations(),
            )
        )
        targets.sign([targets_key])
        files = {ROOT: root_bytes, TARGETS: targets.to_bytes()}
        if snapshot_key is not None:
            files[SNAPSHOT] = _signed_snapshot(
                None, root_bytes, files[TARGETS], snapshot_key, version=1, now=now
            )
        self.transport.publish(files)
        self.pinned_root_keys = self.pinned_root_keys or [root_key.public]
        self._require_read_back(root.signed, files, targets_version=1, now=now)
        return self.fetch(now=now)

    def _server_key(self, role: str) -> PublicKey:
        data = self.transport.get(f"{role}.key")
        try:
            return PublicKey.from_dict(json.loads(data))
        except ValueError:
            raise InvalidMetadata(f"the server's {role} key is not JSON") from None

    # -- changing delegations ------------------------------------------------------------------

    def publish_change(
        self,
        change: DelegationChange,
        *,
        targets_key: SigningKey,
        now: datetime,
        snapshot_key: SigningKey | None = None,
        attempts: int = DEFAULT_PUBLISH_ATTEMPTS,
        before_sending: Callable[[], None] | None = None,
    ) -> PublishResult:
        """Apply `change` in one signed publish; nothing is published when it is in place.

        A `VERSION` conflict means someone else published first: the change is re-applied to
        their result, up to `attempts` times. `before_sending` runs just before each upload (the
        caller's last chance to refuse, and to note that the server may hold the change from
        then on). A transient error while sending, or any error reading back after the server
        took it, is a `PublishOutcomeUnknown`; the server's refusals are raised as they are.
        """
        # Each attempt starts from a fresh read, so it can follow at once, as the Go client does.
        for _ in range(attempts):
            state = self.fetch(now=now)
            root = state.root.signed
            _require_role_key(self.gun, root, TARGETS, targets_key)
            # Re-signing vouches for everything in the file. Without this, a root first met
            # on a hostile server (trust on first use) that lists a second targets key could
            # have us sign delegations someone else wrote.
            if not state.targets.valid_signers([targets_key.public]):
                raise PermanentNotaryError(
                    f"{self.gun}: targets.json is not signed by the portal's targets key "
                    f"({targets_key.public.short_id}); refusing to re-sign content "
                    "the portal did not write or check"
                )
            plan = plan_change(state.targets.signed, change)
            before = plan.before.version
            if not plan.changed:
                return PublishResult(changed=False, version_before=before, version_after=before)
            plan.after.expires = GoTime.from_datetime(now + TARGETS_LIFETIME)
            signed = Metadata(plan.after)
            signed.sign([targets_key])
            files = {TARGETS: signed.to_bytes()}
            if snapshot_key is not None and _signs_snapshot(root, snapshot_key):
                files[SNAPSHOT] = _signed_snapshot(
                    state.snapshot.signed,
                    state.root_bytes,
                    files[TARGETS],
                    snapshot_key,
                    version=state.snapshot.signed.version + 1,
                    now=now,
                )
            if before_sending is not None:
                before_sending()
            try:
                self.transport.publish(files)
            except VersionConflict:
                continue
            except PermanentNotaryError:
                raise  # the server answered, refusing it: nothing was stored
            except NotaryError as error:
                raise _outcome_unknown(self.gun, "sending it", error) from error
            try:
                self._require_read_back(root, files, targets_version=plan.after.version, now=now)
            except NotaryError as error:
                raise _outcome_unknown(self.gun, "reading it back", error) from error
            return PublishResult(changed=True, version_before=before, version_after=before + 1)
        raise VersionConflict(
            f"{self.gun}: other publishers won {attempts} times in a row; try again later"
        )

    def _require_read_back(
        self, root: Root, sent: dict[str, bytes], *, targets_version: int, now: datetime
    ) -> None:
        """Check that the server's snapshot hashes exactly the bytes we uploaded.

        notary-server hashes its own re-serialisation of an upload; if that differed from our
        bytes every reader would be broken while the upload got 200 (protocol note §2.2).
        """
        reader = self._reader()
        _, snapshot_bytes, snapshot = reader.read_snapshot(root, now=now)
        self.memory = reader.memory
        if SNAPSHOT in sent and snapshot_bytes != sent[SNAPSHOT]:
            sent_version = Metadata.from_bytes(sent[SNAPSHOT], Snapshot).signed.version
            if snapshot.signed.version <= sent_version:
                raise ReadBackMismatch(
                    f"{self.gun}: the server's timestamp does not hash the snapshot we sent"
                )
        listed = (snapshot.signed.meta or {}).get(TARGETS)
        if listed is not None and listed.describes(sent[TARGETS]):
            self.memory = self.memory.remembering(
                {TARGETS: targets_version}, files={TARGETS: sent[TARGETS]}
            )
            return
        try:
            current_bytes = reader.get_by_hash(TARGETS, snapshot.signed.meta)
            current = Metadata.from_bytes(current_bytes, Targets)
            reader.require_signed(current, root, TARGETS)
        except InvalidMetadata:
            current = None
        if current is not None and current.signed.version > targets_version:
            # Another publisher already built on top of our version, so it was readable.
            self.memory = self.memory.remembering({TARGETS: targets_version})
            return
        raise ReadBackMismatch(
            f"{self.gun}: the server's snapshot does not hash the targets file we sent (version "
            f"{targets_version}); the repository may be unreadable until it is republished"
        )


def _outcome_unknown(gun: str, step: str, error: NotaryError) -> PublishOutcomeUnknown:
    return PublishOutcomeUnknown(
        f"{gun}: a publish was sent, then {step} failed ({error.message}); the server may hold "
        "it or not until the trust data is read again"
    )


def _require_role_key(gun: str, root: Root, role: str, key: SigningKey) -> None:
    if key.public.tuf_id not in {listed.tuf_id for listed in root.role_keys(role)}:
        raise PermanentNotaryError(
            f"{gun}: the portal's {role} key ({key.public.short_id}) is not this "
            f"repository's {role} key; import the right key"
        )


def _signs_snapshot(root: Root, snapshot_key: SigningKey | None) -> bool:
    """Whether the portal signs this repository's snapshots: it holds a key root names for them.

    Otherwise the server is expected to; if it does not either, it refuses the upload and the
    transport reports that the snapshot key is missing (protocol note §6.5).
    """
    if snapshot_key is None:
        return False
    return snapshot_key.public.tuf_id in {key.tuf_id for key in root.role_keys(SNAPSHOT)}


def _signed_snapshot(
    previous: Snapshot | None,
    root_bytes: bytes,
    targets_bytes: bytes,
    snapshot_key: SigningKey,
    *,
    version: int,
    now: datetime,
) -> bytes:
    """A client-managed snapshot for an upload: the new targets and the stored root hashed
    exactly, every other entry carried over (protocol note §6.6)."""
    meta = dict((previous.meta if previous else None) or {})
    meta[ROOT] = FileMeta.for_bytes(root_bytes)
    meta[TARGETS] = FileMeta.for_bytes(targets_bytes)
    snapshot = Metadata(
        Snapshot(version=version, expires=GoTime.from_datetime(now + SNAPSHOT_LIFETIME), meta=meta)
    )
    snapshot.sign([snapshot_key])
    return snapshot.to_bytes()

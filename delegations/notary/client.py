"""Reading, initialising and delegating on one repository of a Notary v1 server."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from .errors import (
    InvalidMetadata,
    MetadataNotFound,
    PermanentNotaryError,
    ReadBackMismatch,
    RepositoryAlreadyInitialised,
    RepositoryNotInitialised,
    VersionConflict,
)
from .gotime import GoTime
from .keys import X509_KEYTYPES, PublicKey, SigningKey, certificate_common_name
from .metadata import (
    ROOT_LIFETIME,
    TARGETS_LIFETIME,
    FileMeta,
    Metadata,
    Root,
    RootRole,
    Snapshot,
    Targets,
    Timestamp,
)
from .roles import ROOT, SNAPSHOT, TARGETS, TIMESTAMP, Delegations
from .transport import Transport

# The Go client caps timestamp.json at 1 MiB.
_TIMESTAMP_LIMIT = 1024 * 1024
DEFAULT_PUBLISH_ATTEMPTS = 5


@dataclass
class TrustState:
    """A repository's current trust data as the server serves it, hash chain checked."""

    root: Metadata[Root]
    timestamp: Metadata[Timestamp]
    snapshot: Metadata[Snapshot]
    targets: Metadata[Targets]
    targets_bytes: bytes


@dataclass(frozen=True)
class PublishResult:
    """What a delegation change did: `changed` is False when the keys were already in place."""

    changed: bool
    version_before: int
    version_after: int


class NotaryClient:
    """One repository (GUN) on one Notary server.

    Reads follow the Go client's path (root, timestamp, snapshot by hash, targets by hash) and
    check each signature and hash on the way. Root must be signed by one of `pinned_root_keys`:
    without that anchor a server could serve a root of its own choosing, whose delegations the
    portal would then re-sign with the real targets key. Writes are one signed publish each,
    retried from a fresh read when another publisher wins the race, then read back.
    """

    def __init__(self, transport: Transport, *, pinned_root_keys: Sequence[PublicKey] = ()) -> None:
        self.transport = transport
        self.gun = transport.gun
        self.pinned_root_keys = list(pinned_root_keys)

    # -- reading -------------------------------------------------------------------------------

    def fetch(self, *, now: datetime) -> TrustState:
        root_bytes, root = self._fetch_root(now=now)
        timestamp, snapshot = self._fetch_snapshot(root.signed, now=now)
        recorded_root = (snapshot.signed.meta or {}).get(ROOT)
        if recorded_root is not None and not recorded_root.describes(root_bytes):
            raise InvalidMetadata(f"{self.gun}: root.json is not the root the snapshot records")
        targets_bytes = self._get_by_hash(TARGETS, snapshot.signed.meta)
        targets = Metadata.from_bytes(targets_bytes, Targets)
        self._require_signed(targets, root.signed, TARGETS)
        self._require_fresh(targets, now)
        return TrustState(root, timestamp, snapshot, targets, targets_bytes)

    def _fetch_root(self, *, now: datetime) -> tuple[bytes, Metadata[Root]]:
        try:
            root_bytes = self.transport.get(f"{ROOT}.json")
        except MetadataNotFound:
            raise RepositoryNotInitialised(f"{self.gun} has no trust data on the server") from None
        root = Metadata.from_bytes(root_bytes, Root)
        self._require_signed(root, root.signed, ROOT)
        self._require_fresh(root, now)
        for key in root.signed.role_keys(ROOT):
            if key.keytype in X509_KEYTYPES and certificate_common_name(key) != self.gun:
                raise InvalidMetadata(
                    f"{self.gun}: a root certificate names {certificate_common_name(key)!r}, "
                    "not this repository"
                )
        if self.pinned_root_keys and not root.valid_signers(self.pinned_root_keys):
            raise InvalidMetadata(
                f"{self.gun}: root.json is not signed by the root key the portal trusts for this "
                "repository; refusing it"
            )
        return root_bytes, root

    def _fetch_snapshot(
        self, root: Root, *, now: datetime
    ) -> tuple[Metadata[Timestamp], Metadata[Snapshot]]:
        timestamp = Metadata.from_bytes(
            self.transport.get(f"{TIMESTAMP}.json", limit=_TIMESTAMP_LIMIT), Timestamp
        )
        self._require_signed(timestamp, root, TIMESTAMP)
        self._require_fresh(timestamp, now)
        snapshot = Metadata.from_bytes(self._get_by_hash(SNAPSHOT, timestamp.signed.meta), Snapshot)
        self._require_signed(snapshot, root, SNAPSHOT)
        self._require_fresh(snapshot, now)
        return timestamp, snapshot

    def _get_by_hash(self, role: str, meta: dict[str, FileMeta] | None) -> bytes:
        file_meta = (meta or {}).get(role)
        if file_meta is None or not file_meta.sha256_hex:
            raise InvalidMetadata(f"{self.gun}: no sha256 for {role} in the metadata above it")
        try:
            data = self.transport.get(f"{role}.{file_meta.sha256_hex}.json", limit=file_meta.length)
        except MetadataNotFound:
            raise InvalidMetadata(
                f"{self.gun}: {role} with the hash the server lists is missing; the repository's "
                "trust data is broken"
            ) from None
        if not file_meta.describes(data):
            raise InvalidMetadata(f"{self.gun}: {role} does not match its length and hashes")
        return data

    def _require_signed(self, metadata: Metadata, root: Root, role: str) -> None:
        root_role = (root.roles or {}).get(role)
        if root_role is None or root_role.threshold < 1:
            raise InvalidMetadata(f"{self.gun}: root defines no usable {role} role")
        signers = metadata.valid_signers(root.role_keys(role))
        if len(signers) < root_role.threshold:
            raise InvalidMetadata(f"{self.gun}: valid signatures did not meet threshold for {role}")

    def _require_fresh(self, metadata: Metadata, now: datetime) -> None:
        if metadata.signed.is_expired(now):
            raise InvalidMetadata(
                f"{self.gun}: {metadata.signed.type_name.lower()} expired at "
                f"{metadata.signed.expires.format()}"
            )

    # -- writing -------------------------------------------------------------------------------

    def initialise(
        self, *, root_key: SigningKey, targets_key: SigningKey, now: datetime
    ) -> TrustState:
        """Create the repository's trust data with a server-managed snapshot and timestamp.

        Like `docker trust signer add` on a new repository: root and targets are uploaded, and
        the server signs snapshot and timestamp with keys it holds, so delegates can publish.
        """
        try:
            self.transport.get(f"{ROOT}.json")
        except MetadataNotFound:
            pass
        else:
            raise RepositoryAlreadyInitialised(f"{self.gun} already has trust data on the server")

        # GET <role>.key makes the server create the key if it has none yet.
        timestamp_key = self._server_key(TIMESTAMP)
        snapshot_key = self._server_key(SNAPSHOT)
        keys = {
            ROOT: root_key.public,
            TARGETS: targets_key.public,
            SNAPSHOT: snapshot_key,
            TIMESTAMP: timestamp_key,
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
        targets = Metadata(
            Targets(
                version=1,
                expires=GoTime.from_datetime(now + TARGETS_LIFETIME),
                targets={},
                delegations=Delegations(),
            )
        )
        targets.sign([targets_key])
        targets_bytes = targets.to_bytes()
        self.transport.publish({ROOT: root.to_bytes(), TARGETS: targets_bytes})
        self.pinned_root_keys = self.pinned_root_keys or [root_key.public]
        self._require_read_back(root.signed, targets_bytes, now=now)
        return self.fetch(now=now)

    def _server_key(self, role: str) -> PublicKey:
        data = self.transport.get(f"{role}.key")
        try:
            return PublicKey.from_dict(json.loads(data))
        except ValueError:
            raise InvalidMetadata(f"the server's {role} key is not JSON") from None

    def add_delegate(
        self,
        *,
        key: PublicKey,
        role_names: Sequence[str],
        targets_key: SigningKey,
        now: datetime,
        attempts: int = DEFAULT_PUBLISH_ATTEMPTS,
    ) -> PublishResult:
        """Delegate `key` in every role of `role_names` for all paths, in one signed publish.

        Existing delegations are kept. When the key is already delegated in every role nothing
        is published, so applying the same change twice is harmless.
        """
        for _ in range(attempts):
            state = self.fetch(now=now)
            self._require_targets_key(state.root.signed, targets_key)
            targets = copy.deepcopy(state.targets.signed)
            before = targets.version
            targets.delegations.add_key(key, role_names)
            if targets.to_dict() == state.targets.signed.to_dict():
                return PublishResult(changed=False, version_before=before, version_after=before)
            targets.version = before + 1
            targets.expires = GoTime.from_datetime(now + TARGETS_LIFETIME)
            signed = Metadata(targets)
            signed.sign([targets_key])
            data = signed.to_bytes()
            try:
                self.transport.publish({TARGETS: data})
            except VersionConflict:
                continue
            self._require_read_back(state.root.signed, data, now=now)
            return PublishResult(changed=True, version_before=before, version_after=before + 1)
        raise VersionConflict(
            f"{self.gun}: other publishers won {attempts} times in a row; try again later"
        )

    def _require_targets_key(self, root: Root, targets_key: SigningKey) -> None:
        if targets_key.public.tuf_id not in {key.tuf_id for key in root.role_keys(TARGETS)}:
            raise PermanentNotaryError(
                f"{self.gun}: the portal's targets key ({targets_key.public.canonical_id[:12]}) "
                "is not this repository's targets key; import the right key"
            )

    def _require_read_back(self, root: Root, sent: bytes, *, now: datetime) -> None:
        """Check that the server's new snapshot hashes exactly the targets bytes we uploaded.

        notary-server hashes its own re-serialisation of an upload; if that differed from our
        bytes every reader would be broken while the upload got 200 (protocol note §2.2).
        """
        _, snapshot = self._fetch_snapshot(root, now=now)
        listed = (snapshot.signed.meta or {}).get(TARGETS)
        if listed is not None and listed.describes(sent):
            return
        ours = Metadata.from_bytes(sent, Targets).signed.version
        try:
            current = Metadata.from_bytes(self._get_by_hash(TARGETS, snapshot.signed.meta), Targets)
        except InvalidMetadata:
            current = None
        if current is not None and current.signed.version > ours:
            return  # another publisher already built on top of our version, so it was readable
        raise ReadBackMismatch(
            f"{self.gun}: the server's snapshot does not hash the targets file we sent (version "
            f"{ours}); the repository may be unreadable until it is republished"
        )

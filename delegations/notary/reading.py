"""Verified reads of one repository's trust data, the way notary's Go client updates its cache.

The path is root, timestamp, snapshot by hash, targets by hash (protocol note §6.2). Each file's
signatures, threshold, expiry and hash are checked against the file above it, and nothing is
believed that the portal's trust anchor does not lead to:

- root: signed by a pinned root key, or reached from the last root the portal verified by a
  walk over every intermediate version, each signed by the previous root and by itself (so a
  root rotation made with the old key is followed, and a root made up by the server is not);
- every role: never older than the version seen before (so a server cannot replay old, still
  validly signed files: a targets file from before a revocation, say).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from .errors import (
    InvalidMetadata,
    MetadataNotFound,
    RepositoryNotInitialised,
    RollbackDetected,
    RootCertificatesExpired,
)
from .keys import X509_KEYTYPES, PublicKey, certificate_common_name
from .metadata import FileMeta, Metadata, Root, SignedT, Snapshot, Targets, Timestamp
from .roles import ROOT, SNAPSHOT, TARGETS, TIMESTAMP
from .transport import MAX_METADATA_BYTES

# The Go client caps timestamp.json at 1 MiB, and root at 100 KiB per version.
_TIMESTAMP_LIMIT = 1024 * 1024
_ROOT_LIMIT = 100 * 1024
# More root versions than this between two reads is not a rotation history but an attack on
# the reader's time.
MAX_ROOT_WALK = 1000


class FileSource(Protocol):
    gun: str

    def get(self, path: str, *, limit: int = ...) -> bytes: ...


@dataclass(frozen=True)
class TrustMemory:
    """What the portal remembers of a repository between reads, like the Go client's cache: the
    last root it verified (where the next rotation walk starts), the highest version it has
    seen of each role (a floor for rollback checks), and the last snapshot and targets files it
    verified. A read uses a remembered file instead of downloading it only when the verified
    file above lists exactly its hashes, and checks it as if it had just arrived: two GETs fewer
    for a publish that follows the portal's own, and no download of a large targets file that
    has not changed."""

    root: bytes | None = None
    versions: Mapping[str, int] = field(default_factory=dict)
    files: Mapping[str, bytes] = field(default_factory=dict)

    def remembering(
        self,
        seen: Mapping[str, int],
        *,
        root: bytes | None = None,
        files: Mapping[str, bytes] | None = None,
    ) -> TrustMemory:
        versions = dict(self.versions)
        for role, version in seen.items():
            versions[role] = max(version, versions.get(role, 0))
        return TrustMemory(
            root=self.root if root is None else root,
            versions=versions,
            files={**self.files, **(files or {})},
        )

    def merged(self, other: TrustMemory) -> TrustMemory:
        """Both memories at once, role by role the later one (two workers may each have read)."""
        root = self.root
        if other.root is not None and other.versions.get(ROOT, 0) >= self.versions.get(ROOT, 0):
            root = other.root
        files = dict(self.files)
        for role, data in other.files.items():
            if other.versions.get(role, 0) >= self.versions.get(role, 0):
                files[role] = data
        return TrustMemory(root=root, versions=self.versions, files=files).remembering(
            other.versions
        )


@dataclass
class TrustState:
    """A repository's current trust data as the server serves it, verified."""

    root: Metadata[Root]
    timestamp: Metadata[Timestamp]
    snapshot: Metadata[Snapshot]
    targets: Metadata[Targets]
    root_bytes: bytes
    snapshot_bytes: bytes
    targets_bytes: bytes
    memory: TrustMemory


class TrustReader:
    def __init__(
        self,
        source: FileSource,
        *,
        pinned_root_keys: Sequence[PublicKey] = (),
        memory: TrustMemory | None = None,
    ) -> None:
        self.source = source
        self.gun = source.gun
        self.pinned_root_keys = list(pinned_root_keys)
        self.memory = memory or TrustMemory()

    def read(self, *, now: datetime) -> TrustState:
        remembered = self._read_remembered_root(now=now)
        if remembered is not None:
            root_bytes, root, timestamp, snapshot_bytes, snapshot = remembered
        else:
            root_bytes, root = self.read_root(now=now)
            timestamp, snapshot_bytes, snapshot = self.read_snapshot(root.signed, now=now)
            recorded_root = (snapshot.signed.meta or {}).get(ROOT)
            if recorded_root is not None and not recorded_root.describes(root_bytes):
                raise InvalidMetadata(f"{self.gun}: root.json is not the root the snapshot records")
        targets_bytes = self.get_by_hash(TARGETS, snapshot.signed.meta)
        targets = Metadata.from_bytes(targets_bytes, Targets)
        self.require_signed(targets, root.signed, TARGETS)
        self.require_fresh(targets, now)
        self._require_not_older(TARGETS, targets.signed.version)
        self.memory = self.memory.remembering(
            {TARGETS: targets.signed.version}, files={TARGETS: targets_bytes}
        )
        return TrustState(
            root=root,
            timestamp=timestamp,
            snapshot=snapshot,
            targets=targets,
            root_bytes=root_bytes,
            snapshot_bytes=snapshot_bytes,
            targets_bytes=targets_bytes,
            memory=self.memory,
        )

    # -- root ------------------------------------------------------------------------------------

    def _read_remembered_root(
        self, *, now: datetime
    ) -> tuple[bytes, Metadata[Root], Metadata[Timestamp], bytes, Metadata[Snapshot]] | None:
        """The timestamp and snapshot verified with the root verified before, when the snapshot
        says that root is still current (it records root.json's hashes): one GET fewer per read,
        as Go's client updates with its cached root. None (read root.json from the server and
        walk to it) when nothing is remembered, or the snapshot does not verify with that root
        or records another one: a rotation, which the full read follows or refuses."""
        if self.memory.root is None:
            return None
        root_bytes = self.memory.root
        root = self._parse_root(root_bytes)
        self._require_valid_certificate(root.signed, now)
        self.require_fresh(root, now)
        try:
            timestamp, snapshot_bytes, snapshot = self.read_snapshot(root.signed, now=now)
        except (RollbackDetected, RootCertificatesExpired):
            raise
        except (InvalidMetadata, MetadataNotFound):
            # No timestamp: the server lost or reset the trust data (a memory-backed server
            # restarted). The full read says which: root.json gone is "not initialised".
            return None
        recorded_root = (snapshot.signed.meta or {}).get(ROOT)
        if recorded_root is None or not recorded_root.describes(root_bytes):
            return None
        return root_bytes, root, timestamp, snapshot_bytes, snapshot

    def read_root(self, *, now: datetime) -> tuple[bytes, Metadata[Root]]:
        try:
            current_bytes = self.source.get(f"{ROOT}.json", limit=_ROOT_LIMIT)
        except MetadataNotFound:
            raise RepositoryNotInitialised(f"{self.gun} has no trust data on the server") from None
        current = self._parse_root(current_bytes)
        trusted = self._trusted_start(current)
        if trusted is not None:
            self._walk_to(trusted, current, current_bytes)
        self.require_signed(current, current.signed, ROOT)
        self._require_valid_certificate(current.signed, now)
        self.require_fresh(current, now)
        self.memory = self.memory.remembering({ROOT: current.signed.version}, root=current_bytes)
        return current_bytes, current

    def _require_valid_certificate(self, root: Root, now: datetime) -> None:
        """At least one root certificate valid now, as Go's client requires of a root before it
        trusts anything the root signs; publishing to a repository every reader refuses would
        only pile up versions nobody can use."""
        certificates = [
            key.certificate() for key in root.role_keys(ROOT) if key.keytype in X509_KEYTYPES
        ]
        if not certificates or any(
            certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc
            for certificate in certificates
        ):
            return
        last = max(certificate.not_valid_after_utc for certificate in certificates)
        raise RootCertificatesExpired(
            f"{self.gun}: no root certificate is valid now (the last expired on "
            f"{last:%Y-%m-%d}), so Docker and notary clients refuse this repository. Rotate its "
            f"root key with `notary key rotate {self.gun} root` (the root key holder does), then "
            "have a portal administrator forget the trust memory of the repository (Django "
            'admin, Repositories, "Forget the remembered trust data").'
        )

    def _trusted_start(self, current: Metadata[Root]) -> tuple[bytes, Metadata[Root]] | None:
        """The verified root the walk to `current` starts from; None when `current` is itself
        anchored (signed by a pinned key) or, with no anchor at all, trusted on first use."""
        if self.memory.root is not None:
            return self.memory.root, self._parse_root(self.memory.root)
        if not self.pinned_root_keys or current.valid_signers(self.pinned_root_keys):
            return None
        # The pinned key may have been rotated out since: follow the chain from the first root.
        first_bytes = self._get_root_version(1)
        first = self._parse_root(first_bytes)
        if not first.valid_signers(self.pinned_root_keys):
            raise InvalidMetadata(
                f"{self.gun}: root.json is not signed by the root key the portal trusts for this "
                "repository, and no rotation leads to it from that key; refusing it"
            )
        self.require_signed(first, first.signed, ROOT)
        return first_bytes, first

    def _walk_to(
        self,
        trusted: tuple[bytes, Metadata[Root]],
        current: Metadata[Root],
        current_bytes: bytes,
    ) -> None:
        """Check that `current` follows from `trusted` through every version in between."""
        trusted_bytes, previous = trusted
        start, end = previous.signed.version, current.signed.version
        if end < start:
            raise RollbackDetected(
                f"{self.gun}: the server serves root version {end}, older than version {start} "
                "the portal verified before; refusing the rollback"
            )
        if end == start:
            if current_bytes != trusted_bytes:
                raise InvalidMetadata(
                    f"{self.gun}: root.json version {end} is not the one the portal verified "
                    "before, yet has the same version; refusing it"
                )
            return
        if end - start > MAX_ROOT_WALK:
            raise InvalidMetadata(
                f"{self.gun}: root jumped from version {start} to {end}; too many to follow"
            )
        for version in range(start + 1, end + 1):
            data = current_bytes if version == end else self._get_root_version(version)
            candidate = current if version == end else self._parse_root(data)
            if candidate.signed.version != version:
                raise InvalidMetadata(
                    f"{self.gun}: {version}.root.json says it is version {candidate.signed.version}"
                )
            # A new root counts only when the old root's keys vouch for it and its own keys
            # agree: that is how a legitimate rotation differs from a substituted root.
            self._require_root_threshold(candidate, previous.signed, version)
            self.require_signed(candidate, candidate.signed, ROOT)
            previous = candidate

    def _require_root_threshold(
        self, candidate: Metadata[Root], signer: Root, version: int
    ) -> None:
        role = (signer.roles or {}).get(ROOT)
        needed = role.threshold if role else 1
        if len(candidate.valid_signers(signer.role_keys(ROOT))) < max(needed, 1):
            raise InvalidMetadata(
                f"{self.gun}: root version {version} is not signed by the keys of version "
                f"{signer.version}; the rotation does not follow, refusing it"
            )

    def _get_root_version(self, version: int) -> bytes:
        try:
            return self.source.get(f"{version}.{ROOT}.json", limit=_ROOT_LIMIT)
        except MetadataNotFound:
            raise InvalidMetadata(
                f"{self.gun}: root version {version} is missing on the server, so the root "
                "rotation cannot be followed"
            ) from None

    def _parse_root(self, data: bytes) -> Metadata[Root]:
        root = Metadata.from_bytes(data, Root)
        for key in root.signed.role_keys(ROOT):
            if key.keytype in X509_KEYTYPES and certificate_common_name(key) != self.gun:
                raise InvalidMetadata(
                    f"{self.gun}: a root certificate names {certificate_common_name(key)!r}, "
                    "not this repository"
                )
        return root

    # -- timestamp, snapshot, targets ------------------------------------------------------------

    def read_snapshot(
        self, root: Root, *, now: datetime
    ) -> tuple[Metadata[Timestamp], bytes, Metadata[Snapshot]]:
        timestamp = Metadata.from_bytes(
            self.source.get(f"{TIMESTAMP}.json", limit=_TIMESTAMP_LIMIT), Timestamp
        )
        self.require_signed(timestamp, root, TIMESTAMP)
        self.require_fresh(timestamp, now)
        self._require_not_older(TIMESTAMP, timestamp.signed.version)
        snapshot_bytes = self.get_by_hash(SNAPSHOT, timestamp.signed.meta)
        snapshot = Metadata.from_bytes(snapshot_bytes, Snapshot)
        self.require_signed(snapshot, root, SNAPSHOT)
        self.require_fresh(snapshot, now)
        self._require_not_older(SNAPSHOT, snapshot.signed.version)
        self.memory = self.memory.remembering(
            {TIMESTAMP: timestamp.signed.version, SNAPSHOT: snapshot.signed.version},
            files={SNAPSHOT: snapshot_bytes},
        )
        return timestamp, snapshot_bytes, snapshot

    def get_by_hash(self, role: str, meta: dict[str, FileMeta] | None) -> bytes:
        file_meta = (meta or {}).get(role)
        if file_meta is None or not file_meta.sha256_hex:
            raise InvalidMetadata(f"{self.gun}: no sha256 for {role} in the metadata above it")
        if file_meta.length > MAX_METADATA_BYTES:
            raise InvalidMetadata(
                f"{self.gun}: {role} is listed at {file_meta.length} bytes, more than "
                f"{MAX_METADATA_BYTES}"
            )
        remembered = self.memory.files.get(role)
        if remembered is not None and file_meta.describes(remembered):
            return remembered
        try:
            data = self.source.get(f"{role}.{file_meta.sha256_hex}.json", limit=file_meta.length)
        except MetadataNotFound:
            raise InvalidMetadata(
                f"{self.gun}: {role} with the hash the server lists is missing; the repository's "
                "trust data is broken"
            ) from None
        if not file_meta.describes(data):
            raise InvalidMetadata(f"{self.gun}: {role} does not match its length and hashes")
        return data

    def require_signed(self, metadata: Metadata[SignedT], root: Root, role: str) -> None:
        root_role = (root.roles or {}).get(role)
        if root_role is None or root_role.threshold < 1:
            raise InvalidMetadata(f"{self.gun}: root defines no usable {role} role")
        signers = metadata.valid_signers(root.role_keys(role))
        if len(signers) < root_role.threshold:
            raise InvalidMetadata(f"{self.gun}: valid signatures did not meet threshold for {role}")

    def require_fresh(self, metadata: Metadata[SignedT], now: datetime) -> None:
        if metadata.signed.is_expired(now):
            raise InvalidMetadata(
                f"{self.gun}: {metadata.signed.type_name.lower()} expired at "
                f"{metadata.signed.expires.format()}"
            )

    def _require_not_older(self, role: str, version: int) -> None:
        seen = self.memory.versions.get(role, 0)
        if version < seen:
            raise RollbackDetected(
                f"{self.gun}: the server serves {role} version {version}, older than version "
                f"{seen} seen before; refusing what looks like a replay"
            )

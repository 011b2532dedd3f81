"""TUF metadata objects that mirror notary's Go structs field for field.

`from_dict` keeps exactly what Go's typed parse keeps (unknown fields are dropped, `null` stays
`null`), and `to_dict` writes what Go's re-serialisation writes (`paths` and `custom` are
`omitempty`, nothing else is). That is what makes a re-signed file byte-identical to the Go
client's (protocol note §5).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar, Generic, Self, TypeVar

from .canonical import encode_canonical, file_bytes
from .errors import InvalidMetadata
from .fields import integer, key_map, string_list_or_none
from .gotime import GoTime
from .keys import PublicKey, Signature, SigningKey, decode_base64
from .roles import Delegations

# notary's defaults, applied by both its client and its server (protocol note §5.1).
ROOT_LIFETIME = timedelta(days=3652)
TARGETS_LIFETIME = timedelta(days=1095)
SNAPSHOT_LIFETIME = timedelta(days=1095)


@dataclass
class RootRole:
    keyids: list[str] | None
    threshold: int

    @classmethod
    def from_dict(cls, data: object) -> RootRole:
        if not isinstance(data, dict):
            raise InvalidMetadata("a root role that is not an object")
        return cls(string_list_or_none(data.get("keyids"), "keyids"), integer(data, "threshold"))

    def to_dict(self) -> dict[str, object]:
        return {"keyids": self.keyids, "threshold": self.threshold}


@dataclass
class FileMeta:
    length: int
    hashes: dict[str, bytes]
    custom: object = None  # omitempty: None is never written

    @classmethod
    def for_bytes(cls, data: bytes) -> FileMeta:
        return cls(
            length=len(data),
            hashes={
                "sha256": hashlib.sha256(data).digest(),
                "sha512": hashlib.sha512(data).digest(),
            },
        )

    @classmethod
    def from_dict(cls, data: object) -> FileMeta:
        if not isinstance(data, dict) or not isinstance(data.get("hashes"), dict):
            raise InvalidMetadata("file meta without hashes")
        hashes = {
            str(name): decode_base64(value, f"{name} hash") if isinstance(value, str) else b""
            for name, value in data["hashes"].items()
        }
        return cls(length=integer(data, "length"), hashes=hashes, custom=data.get("custom"))

    def to_dict(self) -> dict[str, object]:
        written: dict[str, object] = {
            "hashes": {
                name: base64.b64encode(value).decode() for name, value in self.hashes.items()
            },
            "length": self.length,
        }
        if self.custom is not None:
            written["custom"] = self.custom
        return written

    @property
    def sha256_hex(self) -> str:
        return self.hashes.get("sha256", b"").hex()

    def describes(self, data: bytes) -> bool:
        """Whether `data` has this length and every listed sha256/sha512 hash."""
        if len(data) != self.length:
            return False
        checked = False
        for name, digest in self.hashes.items():
            if name in ("sha256", "sha512"):
                if hashlib.new(name, data).digest() != digest:
                    return False
                checked = True
        return checked


def _file_meta_map(value: object, what: str) -> dict[str, FileMeta] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidMetadata(f"{what} must be an object")
    return {str(name): FileMeta.from_dict(meta) for name, meta in value.items()}


@dataclass
class _Signed:
    """The fields every role shares (Go's SignedCommon)."""

    type_name: ClassVar[str]
    version: int
    expires: GoTime

    @classmethod
    def _common(cls, data: object) -> tuple[dict[str, object], int, GoTime]:
        if not isinstance(data, dict):
            raise InvalidMetadata("signed must be an object")
        if data.get("_type") != cls.type_name:
            raise InvalidMetadata(f"expected _type {cls.type_name!r}, found {data.get('_type')!r}")
        version = integer(data, "version")
        if version < 1:
            raise InvalidMetadata("version must be at least 1")
        return data, version, GoTime.parse(data.get("expires"))

    def _common_dict(self) -> dict[str, object]:
        return {"_type": self.type_name, "expires": self.expires.format(), "version": self.version}

    def is_expired(self, now: datetime) -> bool:
        return self.expires.as_datetime() < now


@dataclass
class Root(_Signed):
    type_name: ClassVar[str] = "Root"
    keys: dict[str, PublicKey] | None = field(default_factory=dict)
    roles: dict[str, RootRole] | None = field(default_factory=dict)
    consistent_snapshot: bool = False

    @classmethod
    def from_dict(cls, data: object) -> Root:
        data, version, expires = cls._common(data)
        roles = data.get("roles")
        if roles is not None and not isinstance(roles, dict):
            raise InvalidMetadata("root roles must be an object")
        return cls(
            version=version,
            expires=expires,
            keys=key_map(data.get("keys")),
            roles=None if roles is None else {n: RootRole.from_dict(r) for n, r in roles.items()},
            consistent_snapshot=bool(data.get("consistent_snapshot", False)),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            **self._common_dict(),
            "consistent_snapshot": self.consistent_snapshot,
            "keys": None
            if self.keys is None
            else {keyid: key.to_dict() for keyid, key in self.keys.items()},
            "roles": None
            if self.roles is None
            else {name: role.to_dict() for name, role in self.roles.items()},
        }

    def role_keys(self, role: str) -> list[PublicKey]:
        """The keys root names for one of the base roles, in keyid order."""
        root_role = (self.roles or {}).get(role)
        keys = self.keys or {}
        named = (
            [(keyid, keys.get(keyid)) for keyid in (root_role.keyids or [])] if root_role else []
        )
        for keyid, key in named:
            # Go aborts on a key listed under an ID that is not its own (ErrInvalidKeyID).
            if key is not None and key.tuf_id != keyid:
                raise InvalidMetadata(f"root lists a key under an ID that is not its own: {keyid}")
        return [key for _, key in named if key is not None]


@dataclass
class Targets(_Signed):
    type_name: ClassVar[str] = "Targets"
    targets: dict[str, FileMeta] | None = field(default_factory=dict)
    delegations: Delegations = field(default_factory=Delegations)

    @classmethod
    def from_dict(cls, data: object) -> Targets:
        data, version, expires = cls._common(data)
        return cls(
            version=version,
            expires=expires,
            targets=_file_meta_map(data.get("targets"), "targets"),
            delegations=Delegations.from_dict(data.get("delegations")),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            **self._common_dict(),
            "delegations": self.delegations.to_dict(),
            "targets": None
            if self.targets is None
            else {name: meta.to_dict() for name, meta in self.targets.items()},
        }


@dataclass
class Snapshot(_Signed):
    type_name: ClassVar[str] = "Snapshot"
    meta: dict[str, FileMeta] | None = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: object) -> Self:
        data, version, expires = cls._common(data)
        return cls(version=version, expires=expires, meta=_file_meta_map(data.get("meta"), "meta"))

    def to_dict(self) -> dict[str, object]:
        return {
            **self._common_dict(),
            "meta": None
            if self.meta is None
            else {name: meta.to_dict() for name, meta in self.meta.items()},
        }


class Timestamp(Snapshot):
    type_name: ClassVar[str] = "Timestamp"


SignedT = TypeVar("SignedT", Root, Targets, Snapshot, Timestamp)


@dataclass
class Metadata(Generic[SignedT]):
    """A signed metadata file: the `signed` object and the signatures over its canonical JSON."""

    signed: SignedT
    signatures: list[Signature] = field(default_factory=list)
    # Go verifies signatures over the canonical form of the parsed document, unknown fields
    # included, not over its typed re-serialisation; kept for files read from a server.
    received_signed_bytes: bytes | None = field(default=None, repr=False, compare=False)
    _bytes_signed: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_bytes(cls, data: bytes, signed_type: type[SignedT]) -> Metadata[SignedT]:
        floats: list[str] = []

        def noted(number: str) -> float:
            floats.append(number)
            return float(number)

        try:
            # UTF-8 only, as Go reads JSON (json.loads would also take UTF-16 and UTF-32 bytes).
            document = json.loads(data.decode("utf-8"), parse_float=noted, parse_constant=noted)
        except (ValueError, UnicodeDecodeError, RecursionError) as error:
            raise InvalidMetadata(
                f"{signed_type.type_name} metadata is not JSON: {error}"
            ) from None
        if not isinstance(document, dict) or not isinstance(document.get("signatures"), list):
            raise InvalidMetadata(f"{signed_type.type_name} metadata has no signatures list")
        return cls(
            signed=signed_type.from_dict(document.get("signed")),
            signatures=[Signature.from_dict(item) for item in document["signatures"]],
            received_signed_bytes=encode_canonical(
                document["signed"], parsed_without_floats=not floats
            ),
        )

    def signed_bytes(self) -> bytes:
        """The canonical bytes that signatures cover."""
        return encode_canonical(self.signed.to_dict())

    def sign(self, keys: Iterable[SigningKey]) -> None:
        """Replace the signatures with fresh ones from `keys` (the content changed, so old ones
        could not verify anyway). Sign last: `signed` is not to change afterwards."""
        message = self.signed_bytes()
        self.signatures = [key.sign(message) for key in keys]
        self.received_signed_bytes = None
        self._bytes_signed = message

    def to_bytes(self) -> bytes:
        """The file bytes exactly as the Go client writes them and the server re-serialises them."""
        # Encoding a large targets file again costs as much as signing it; reuse what was signed.
        canonical = self._bytes_signed if self._bytes_signed is not None else self.signed_bytes()
        return file_bytes(canonical, (s.to_dict() for s in self.signatures))

    def valid_signers(self, keys: Iterable[PublicKey]) -> set[str]:
        """The keyids among `keys` whose signatures verify (distinct keyids count once)."""
        message = self.received_signed_bytes or self.signed_bytes()
        by_id = {key.tuf_id: key for key in keys}
        return {
            signature.keyid
            for signature in self.signatures
            if signature.keyid in by_id and by_id[signature.keyid].verifies(signature, message)
        }

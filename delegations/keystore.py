"""Sealing repository signing keys at rest, so that only the worker can open them.

Each private key is encrypted with its own random data key (AES-256-GCM), and the data key is
sealed to an X25519 public key, the *sealing key* (`PORTAL_KEY_SEALING_KEY`): an ephemeral
X25519 exchange with it, through HKDF-SHA256, gives the AES key that wraps the data key. Every
process can seal (the web process does, when an owner imports a key), but only a process
holding the private half (`PORTAL_KEY_UNSEALING_KEYS`, the worker's) can open what was sealed.
A web process that is broken into therefore gives away no repository key.

The repository's GUN and the key's role are bound in as associated data, so a sealed key copied
onto another repository or role does not open. Rotating the sealing key only re-wraps the small
data keys (`rewrap`). Keys sealed before sealing became asymmetric (format 1: the data key under
a shared AES key from `PORTAL_KEY_ENCRYPTION_KEYS`) still open where that key is configured, and
`rewrap` moves them to the sealing key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_LEGACY_FORMAT = b"\x01"
_FORMAT = b"\x02"
_NONCE_BYTES = 12
_KEY_BYTES = 32
_TAG_BYTES = 16
_WRAPPED_KEY_BYTES = _KEY_BYTES + _TAG_BYTES  # the data key plus its GCM tag
# Format 2: the ephemeral public key, then the nonce and the data key it wraps.
_SEALED_DATA_KEY_BYTES = _KEY_BYTES + _NONCE_BYTES + _WRAPPED_KEY_BYTES
_HKDF_INFO = b"delegation portal: key sealing, format 2"


class KeystoreError(Exception):
    """A sealed key that cannot be opened: no key to open it here, or tampered data."""


@dataclass(frozen=True)
class SealedKey:
    # The ID of the sealing key the data key is sealed to (or, format 1, of the shared key).
    key_encryption_key_id: str
    blob: bytes


@dataclass(frozen=True)
class KeyPair:
    """A new sealing key pair, base64 as the settings take them."""

    unsealing_key: str
    sealing_key: str


def generate_key_pair() -> KeyPair:
    private = X25519PrivateKey.generate()
    return KeyPair(
        unsealing_key=base64.b64encode(private.private_bytes_raw()).decode(),
        sealing_key=base64.b64encode(private.public_key().public_bytes_raw()).decode(),
    )


def sealing_key_id_of(sealing_key: str) -> str:
    """The ID of a sealing key given as base64."""
    return sealing_key_id(base64.b64decode(sealing_key))


def sealing_key_id(public: bytes) -> str:
    """A short public name for a sealing key, shown in the audit log and by `keys_rewrap`."""
    return hashlib.sha256(b"portal sealing key\x00" + public).hexdigest()[:16]


def key_encryption_key_id(key: bytes) -> str:
    """The name of a format-1 shared key (a hash, so it reveals nothing)."""
    return hashlib.sha256(b"portal key-encryption key\x00" + key).hexdigest()[:16]


def current_key_encryption_key_id() -> str:
    return sealing_key_id(_sealing_key())


def can_unseal_current() -> bool:
    """Whether this process holds the private half of the key it seals to."""
    return current_key_encryption_key_id() in _unsealing_keys()


def seal(private_key: bytes, *, context: str) -> SealedKey:
    recipient = _sealing_key()
    associated = context.encode("utf-8")
    data_key = AESGCM.generate_key(bit_length=256)
    body_nonce = os.urandom(_NONCE_BYTES)
    body = AESGCM(data_key).encrypt(body_nonce, private_key, associated)
    sealed_data_key = _seal_data_key(data_key, recipient, associated)
    return SealedKey(sealing_key_id(recipient), _FORMAT + sealed_data_key + body_nonce + body)


def unseal(sealed: SealedKey, *, context: str) -> bytes:
    associated = context.encode("utf-8")
    data_key, body_nonce, body = _open_data_key(sealed, associated)
    try:
        return AESGCM(data_key).decrypt(body_nonce, body, associated)
    except InvalidTag:
        raise KeystoreError("the sealed key does not open: tampered, or sealed elsewhere") from None


def rewrap(sealed: SealedKey, *, context: str) -> SealedKey:
    """Re-seal the data key to the current sealing key; the signing key itself is untouched."""
    recipient = _sealing_key()
    current_id = sealing_key_id(recipient)
    blob = bytes(sealed.blob)
    if blob[:1] == _FORMAT and sealed.key_encryption_key_id == current_id:
        return sealed
    associated = context.encode("utf-8")
    data_key, body_nonce, body = _open_data_key(sealed, associated)
    return SealedKey(
        current_id,
        _FORMAT + _seal_data_key(data_key, recipient, associated) + body_nonce + body,
    )


def _seal_data_key(data_key: bytes, recipient: bytes, associated: bytes) -> bytes:
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    nonce = os.urandom(_NONCE_BYTES)
    wrapping_key = _wrapping_key(shared, ephemeral_public, recipient)
    return ephemeral_public + nonce + AESGCM(wrapping_key).encrypt(nonce, data_key, associated)


def _wrapping_key(shared: bytes, ephemeral_public: bytes, recipient: bytes) -> bytes:
    # Both public keys go into the derivation, as in HPKE, so the wrapping key is tied to this
    # exchange and this recipient.
    return HKDF(
        algorithm=hashes.SHA256(),
        length=_KEY_BYTES,
        salt=ephemeral_public + recipient,
        info=_HKDF_INFO,
    ).derive(shared)


def _open_data_key(sealed: SealedKey, associated: bytes) -> tuple[bytes, bytes, bytes]:
    """The data key, the body's nonce and the encrypted body of a sealed key."""
    blob = bytes(sealed.blob)
    if blob[:1] == _LEGACY_FORMAT:
        return _open_legacy_data_key(sealed, blob, associated)
    if blob[:1] != _FORMAT or len(blob) < 1 + _SEALED_DATA_KEY_BYTES + _NONCE_BYTES + _TAG_BYTES:
        raise KeystoreError("the sealed key has an unknown format")
    private = _unsealing_keys().get(sealed.key_encryption_key_id)
    if private is None:
        raise KeystoreError(_not_held(sealed.key_encryption_key_id))
    position = 1
    ephemeral_public = blob[position : position + _KEY_BYTES]
    position += _KEY_BYTES
    nonce = blob[position : position + _NONCE_BYTES]
    position += _NONCE_BYTES
    wrapped = blob[position : position + _WRAPPED_KEY_BYTES]
    position += _WRAPPED_KEY_BYTES
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
        recipient = private.public_key().public_bytes_raw()
        wrapping_key = _wrapping_key(shared, ephemeral_public, recipient)
        data_key = AESGCM(wrapping_key).decrypt(nonce, wrapped, associated)
    except (InvalidTag, ValueError):
        raise KeystoreError("the sealed key does not open: tampered, or sealed elsewhere") from None
    return data_key, blob[position : position + _NONCE_BYTES], blob[position + _NONCE_BYTES :]


def _open_legacy_data_key(
    sealed: SealedKey, blob: bytes, associated: bytes
) -> tuple[bytes, bytes, bytes]:
    kek = _legacy_keys().get(sealed.key_encryption_key_id)
    if kek is None:
        raise KeystoreError(
            f"the key was sealed before sealing became asymmetric, under key-encryption key "
            f"{sealed.key_encryption_key_id}, which is not configured in "
            "PORTAL_KEY_ENCRYPTION_KEYS; configure it for the worker and run keys_rewrap"
        )
    if len(blob) < 1 + 2 * _NONCE_BYTES + _WRAPPED_KEY_BYTES + _TAG_BYTES:
        raise KeystoreError("the sealed key has an unknown format")
    position = 1
    wrap_nonce = blob[position : position + _NONCE_BYTES]
    position += _NONCE_BYTES
    wrapped = blob[position : position + _WRAPPED_KEY_BYTES]
    position += _WRAPPED_KEY_BYTES
    try:
        data_key = AESGCM(kek).decrypt(wrap_nonce, wrapped, associated)
    except InvalidTag:
        raise KeystoreError("the sealed key does not open: tampered, or sealed elsewhere") from None
    return data_key, blob[position : position + _NONCE_BYTES], blob[position + _NONCE_BYTES :]


def _not_held(key_id: str) -> str:
    if not settings.PORTAL_KEY_UNSEALING_KEYS:
        return (
            "this process holds no unsealing key (PORTAL_KEY_UNSEALING_KEYS): only the worker "
            "opens repository keys"
        )
    return (
        f"the key is sealed to sealing key {key_id}, whose private half is not configured in "
        "PORTAL_KEY_UNSEALING_KEYS"
    )


def _sealing_key() -> bytes:
    key = _decoded_or_none(settings.PORTAL_KEY_SEALING_KEY)
    if key is None:
        raise ImproperlyConfigured("PORTAL_KEY_SEALING_KEY must hold base64 of an X25519 key")
    return key


def _unsealing_keys() -> dict[str, X25519PrivateKey]:
    keys: dict[str, X25519PrivateKey] = {}
    for encoded in settings.PORTAL_KEY_UNSEALING_KEYS:
        raw = _decoded_or_none(encoded)
        if raw is None:
            raise ImproperlyConfigured(
                "PORTAL_KEY_UNSEALING_KEYS must hold base64 of 32-byte X25519 keys"
            )
        private = X25519PrivateKey.from_private_bytes(raw)
        keys[sealing_key_id(private.public_key().public_bytes_raw())] = private
    return keys


def _legacy_keys() -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for encoded in settings.PORTAL_KEY_ENCRYPTION_KEYS:
        raw = _decoded_or_none(encoded)
        if raw is None:
            raise ImproperlyConfigured(
                "PORTAL_KEY_ENCRYPTION_KEYS must hold base64 of 32 random bytes per key"
            )
        keys[key_encryption_key_id(raw)] = raw
    return keys


def _decoded_or_none(encoded: str) -> bytes | None:
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == _KEY_BYTES else None

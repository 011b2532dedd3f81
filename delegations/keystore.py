"""Envelope encryption of repository signing keys at rest.

Each private key is encrypted with its own random data key (AES-256-GCM), and the data key is
encrypted with the key-encryption key from the environment. The repository's GUN and the key's
role are bound in as associated data, so a sealed key copied onto another repository or role
does not open. Rotating the key-encryption key only re-wraps the small data keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_FORMAT_VERSION = b"\x01"
_NONCE_BYTES = 12
_KEY_BYTES = 32
_WRAPPED_KEY_BYTES = _KEY_BYTES + 16  # the data key plus its GCM tag


class KeystoreError(Exception):
    """A sealed key that cannot be opened: wrong key-encryption key, or tampered data."""


@dataclass(frozen=True)
class SealedKey:
    key_encryption_key_id: str
    blob: bytes


def _key_encryption_keys() -> dict[str, bytes]:
    """The configured key-encryption keys by ID; the first one configured seals new keys."""
    keys: dict[str, bytes] = {}
    for encoded in settings.PORTAL_KEY_ENCRYPTION_KEYS:
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != _KEY_BYTES:
            raise ImproperlyConfigured(
                "PORTAL_KEY_ENCRYPTION_KEYS must hold base64 of 32 random bytes per key"
            )
        keys[key_encryption_key_id(key)] = key
    if not keys:
        raise ImproperlyConfigured("PORTAL_KEY_ENCRYPTION_KEYS is empty")
    return keys


def key_encryption_key_id(key: bytes) -> str:
    """A short public name for a key-encryption key (a hash, so it reveals nothing)."""
    return hashlib.sha256(b"portal key-encryption key\x00" + key).hexdigest()[:16]


def current_key_encryption_key_id() -> str:
    return next(iter(_key_encryption_keys()))


def seal(private_key: bytes, *, context: str) -> SealedKey:
    keys = _key_encryption_keys()
    kek_id, kek = next(iter(keys.items()))
    data_key = AESGCM.generate_key(bit_length=256)
    associated = context.encode("utf-8")
    wrap_nonce, body_nonce = os.urandom(_NONCE_BYTES), os.urandom(_NONCE_BYTES)
    wrapped = AESGCM(kek).encrypt(wrap_nonce, data_key, associated)
    body = AESGCM(data_key).encrypt(body_nonce, private_key, associated)
    return SealedKey(kek_id, _FORMAT_VERSION + wrap_nonce + wrapped + body_nonce + body)


def unseal(sealed: SealedKey, *, context: str) -> bytes:
    kek, data_key_part, body_nonce, body = _split(sealed)
    associated = context.encode("utf-8")
    try:
        data_key = AESGCM(kek).decrypt(data_key_part[0], data_key_part[1], associated)
        return AESGCM(data_key).decrypt(body_nonce, body, associated)
    except InvalidTag:
        raise KeystoreError("the sealed key does not open: tampered, or sealed elsewhere") from None


def rewrap(sealed: SealedKey, *, context: str) -> SealedKey:
    """Re-encrypt the data key under the current key-encryption key; the key itself is untouched."""
    kek, (wrap_nonce, wrapped), body_nonce, body = _split(sealed)
    current_id, current = next(iter(_key_encryption_keys().items()))
    if sealed.key_encryption_key_id == current_id:
        return sealed
    associated = context.encode("utf-8")
    try:
        data_key = AESGCM(kek).decrypt(wrap_nonce, wrapped, associated)
    except InvalidTag:
        raise KeystoreError("the sealed key does not open: tampered, or sealed elsewhere") from None
    new_nonce = os.urandom(_NONCE_BYTES)
    rewrapped = AESGCM(current).encrypt(new_nonce, data_key, associated)
    return SealedKey(current_id, _FORMAT_VERSION + new_nonce + rewrapped + body_nonce + body)


def _split(sealed: SealedKey) -> tuple[bytes, tuple[bytes, bytes], bytes, bytes]:
    kek = _key_encryption_keys().get(sealed.key_encryption_key_id)
    if kek is None:
        raise KeystoreError(
            f"key-encryption key {sealed.key_encryption_key_id} is not configured in "
            "PORTAL_KEY_ENCRYPTION_KEYS"
        )
    blob = bytes(sealed.blob)
    if blob[:1] != _FORMAT_VERSION or len(blob) < 1 + 2 * _NONCE_BYTES + _WRAPPED_KEY_BYTES + 16:
        raise KeystoreError("the sealed key has an unknown format")
    position = 1
    wrap_nonce = blob[position : position + _NONCE_BYTES]
    position += _NONCE_BYTES
    wrapped = blob[position : position + _WRAPPED_KEY_BYTES]
    position += _WRAPPED_KEY_BYTES
    body_nonce = blob[position : position + _NONCE_BYTES]
    body = blob[position + _NONCE_BYTES :]
    return kek, (wrap_nonce, wrapped), body_nonce, body

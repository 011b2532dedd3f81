"""Repository keys are sealed at rest and open only with the right key and context."""

import base64
import os
import secrets

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.exceptions import ImproperlyConfigured

from delegations import keystore


def new_kek() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def legacy_seal(private_key: bytes, *, context: str, kek: bytes) -> keystore.SealedKey:
    """A key as the portal sealed it before sealing became asymmetric (format 1), written out
    here from its documented layout so the upgrade path is tested against real old blobs."""
    data_key = AESGCM.generate_key(bit_length=256)
    wrap_nonce, body_nonce = os.urandom(12), os.urandom(12)
    associated = context.encode()
    wrapped = AESGCM(kek).encrypt(wrap_nonce, data_key, associated)
    body = AESGCM(data_key).encrypt(body_nonce, private_key, associated)
    return keystore.SealedKey(
        keystore.key_encryption_key_id(kek), b"\x01" + wrap_nonce + wrapped + body_nonce + body
    )


def test_sealed_key_opens_with_its_context_only(settings):
    sealed = keystore.seal(b"private key bytes", context="dtr.example.org/a/b\x00targets")
    assert b"private key bytes" not in sealed.blob
    assert keystore.unseal(sealed, context="dtr.example.org/a/b\x00targets") == b"private key bytes"
    with pytest.raises(keystore.KeystoreError):
        keystore.unseal(sealed, context="dtr.example.org/a/c\x00targets")
    with pytest.raises(keystore.KeystoreError):
        keystore.unseal(sealed, context="dtr.example.org/a/b\x00root")


def test_tampered_sealed_key_does_not_open():
    sealed = keystore.seal(b"secret", context="c")
    flipped = bytearray(sealed.blob)
    flipped[-1] ^= 1
    with pytest.raises(keystore.KeystoreError):
        keystore.unseal(
            keystore.SealedKey(sealed.key_encryption_key_id, bytes(flipped)), context="c"
        )


def test_a_process_with_only_the_sealing_key_seals_but_cannot_open(settings):
    sealed = keystore.seal(b"secret", context="c")
    pair = keystore.generate_key_pair()
    settings.PORTAL_KEY_UNSEALING_KEYS = []  # the web process
    settings.PORTAL_KEY_SEALING_KEY = pair.sealing_key
    web_sealed = keystore.seal(b"imported key", context="c")
    assert web_sealed.key_encryption_key_id == keystore.sealing_key_id_of(pair.sealing_key)
    for blob in (sealed, web_sealed):
        with pytest.raises(keystore.KeystoreError, match="holds no unsealing key"):
            keystore.unseal(blob, context="c")

    settings.PORTAL_KEY_UNSEALING_KEYS = [pair.unsealing_key]  # the worker
    assert keystore.unseal(web_sealed, context="c") == b"imported key"


def test_rotation_rewraps_to_the_new_sealing_key_and_the_old_key_can_go(settings):
    old = settings.PORTAL_KEY_UNSEALING_KEYS[0]
    sealed = keystore.seal(b"secret", context="c")
    new = keystore.generate_key_pair()

    settings.PORTAL_KEY_UNSEALING_KEYS = [old, new.unsealing_key]
    settings.PORTAL_KEY_SEALING_KEY = new.sealing_key
    assert keystore.unseal(sealed, context="c") == b"secret"  # the old key still opens
    rewrapped = keystore.rewrap(sealed, context="c")
    assert rewrapped.key_encryption_key_id == keystore.sealing_key_id_of(new.sealing_key)
    assert rewrapped.key_encryption_key_id != sealed.key_encryption_key_id
    assert keystore.rewrap(rewrapped, context="c") == rewrapped

    settings.PORTAL_KEY_UNSEALING_KEYS = [new.unsealing_key]
    assert keystore.unseal(rewrapped, context="c") == b"secret"
    with pytest.raises(keystore.KeystoreError, match="not configured"):
        keystore.unseal(sealed, context="c")


def test_keys_sealed_before_sealing_was_asymmetric_open_and_move_to_the_sealing_key(settings):
    kek = secrets.token_bytes(32)
    old = legacy_seal(b"secret", context="c", kek=kek)
    with pytest.raises(keystore.KeystoreError, match="PORTAL_KEY_ENCRYPTION_KEYS"):
        keystore.unseal(old, context="c")

    settings.PORTAL_KEY_ENCRYPTION_KEYS = [base64.b64encode(kek).decode()]
    assert keystore.unseal(old, context="c") == b"secret"
    with pytest.raises(keystore.KeystoreError):
        keystore.unseal(old, context="d")
    moved = keystore.rewrap(old, context="c")
    assert moved.blob[:1] == b"\x02"
    assert moved.key_encryption_key_id == keystore.current_key_encryption_key_id()

    settings.PORTAL_KEY_ENCRYPTION_KEYS = []
    assert keystore.unseal(moved, context="c") == b"secret"


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"short").decode()])
def test_malformed_sealing_keys_stop_with_the_variable_name(settings, bad):
    settings.PORTAL_KEY_SEALING_KEY = bad
    with pytest.raises(ImproperlyConfigured, match="PORTAL_KEY_SEALING_KEY"):
        keystore.seal(b"x", context="c")

"""Repository keys are sealed at rest and open only with the right key and context."""

import base64
import secrets

import pytest
from django.core.exceptions import ImproperlyConfigured

from delegations import keystore


def new_kek() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


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


def test_rotation_rewraps_under_the_new_key_and_the_old_key_can_go(settings):
    old = settings.PORTAL_KEY_ENCRYPTION_KEYS[0]
    sealed = keystore.seal(b"secret", context="c")

    settings.PORTAL_KEY_ENCRYPTION_KEYS = [new_kek(), old]
    assert keystore.unseal(sealed, context="c") == b"secret"  # old key still decrypts
    rewrapped = keystore.rewrap(sealed, context="c")
    assert rewrapped.key_encryption_key_id == keystore.current_key_encryption_key_id()
    assert rewrapped.key_encryption_key_id != sealed.key_encryption_key_id

    settings.PORTAL_KEY_ENCRYPTION_KEYS = settings.PORTAL_KEY_ENCRYPTION_KEYS[:1]
    assert keystore.unseal(rewrapped, context="c") == b"secret"
    with pytest.raises(keystore.KeystoreError, match="not configured"):
        keystore.unseal(sealed, context="c")


@pytest.mark.parametrize("bad", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_malformed_key_encryption_keys_stop_with_the_variable_name(settings, bad):
    settings.PORTAL_KEY_ENCRYPTION_KEYS = [bad] if bad else []
    with pytest.raises(ImproperlyConfigured, match="PORTAL_KEY_ENCRYPTION_KEYS"):
        keystore.seal(b"x", context="c")

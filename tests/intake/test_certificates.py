"""Certificate intake: notary's checks, and private keys refused."""

import base64
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.exceptions import ValidationError
from django.utils import timezone

from delegations.intake.certificates import holds_private_key, inspect_certificate
from tests.factories import make_bundle, make_sha1_certificate


def rejection_code(data: bytes) -> str:
    with pytest.raises(ValidationError) as raised:
        inspect_certificate(data, now=timezone.now())
    return raised.value.code


def test_a_bundle_certificate_is_accepted_with_its_key_ids():
    bundle = make_bundle("bob")
    info = inspect_certificate(bundle.cert_pem, now=timezone.now())
    assert info.keytype == "ecdsa-x509"
    assert info.common_name == "bob"
    assert info.key_description == "ECDSA P-256"
    assert info.pem == bundle.cert_pem.decode()
    assert len(info.canonical_key_id) == len(info.tuf_key_id) == 64
    assert info.canonical_key_id != info.tuf_key_id


def test_der_and_crlf_pem_give_the_same_key_as_pem():
    bundle = make_bundle("bob")
    der = bundle.certificate.public_bytes(serialization.Encoding.DER)
    crlf = b"subject=CN=bob\r\n" + bundle.cert_pem.replace(b"\n", b"\r\n")
    expected = inspect_certificate(bundle.cert_pem, now=timezone.now()).tuf_key_id
    assert inspect_certificate(der, now=timezone.now()).tuf_key_id == expected
    assert inspect_certificate(crlf, now=timezone.now()).tuf_key_id == expected


@pytest.mark.parametrize(
    ("make_upload", "code"),
    [
        (lambda tmp: make_bundle("bob").key_pem, "private_key"),
        (lambda tmp: make_bundle("bob").cert_pem + make_bundle("bob").key_pem, "private_key"),
        (lambda tmp: make_bundle("bob", key="rsa").key_pem, "private_key"),
        (
            lambda tmp: ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            "private_key",
        ),
        (lambda tmp: b"\x8f\x00garbage bytes\xff" * 20, "not_a_certificate"),
        (lambda tmp: b"", "empty"),
        (lambda tmp: b"PK\x03\x04rest of a zip", "zip"),
        (lambda tmp: b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
         "not_a_certificate"),
        (lambda tmp: b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
         "not_a_certificate"),
        (lambda tmp: make_bundle("old", not_before=timezone.now() - timedelta(days=400),
                                not_after=timezone.now() - timedelta(days=1)).cert_pem,
         "expired"),
        (lambda tmp: make_bundle("future", not_before=timezone.now() + timedelta(days=3)).cert_pem,
         "not_yet_valid"),
        (lambda tmp: make_bundle("weak", key="rsa", bits=1024).cert_pem, "weak_key"),
        (lambda tmp: make_bundle("p521", curve=ec.SECP521R1()).cert_pem, "unsupported_key"),
        (make_sha1_certificate, "weak_signature"),
    ],
    ids=[
        "ec-private-key", "cert-then-key", "rsa-private-key", "der-private-key", "garbage",
        "empty", "zip", "bad-base64", "public-key", "expired", "not-yet-valid", "rsa-1024",
        "p521", "sha1",
    ],
)  # fmt: skip
def test_bad_uploads_are_refused_with_a_reason(make_upload, code, tmp_path):
    assert rejection_code(make_upload(tmp_path)) == code


def _der_key(bundle) -> bytes:
    return bundle.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize(
    "wrap",
    [
        lambda bundle: bundle.cert_pem + _der_key(bundle),
        lambda bundle: _der_key(bundle) + bundle.cert_pem,
        lambda bundle: bundle.cert_pem + base64.encodebytes(_der_key(bundle)),
        lambda bundle: bundle.cert_pem + b"\n  " + base64.b64encode(_der_key(bundle)) + b"\n",
    ],
    ids=["der-after", "der-before", "base64-lines-after", "base64-indented-after"],
)
def test_a_key_without_its_armour_beside_a_certificate_is_still_found(wrap):
    assert rejection_code(wrap(make_bundle("bob"))) == "private_key"


def test_a_zip_behind_a_certificate_is_still_a_zip():
    bundle = make_bundle("bob")
    assert rejection_code(bundle.cert_pem + bundle.zip()) == "zip"


def certificate_with_a_key_off_its_curve() -> bytes:
    bundle = make_bundle("bob")
    der = bytearray(bundle.certificate.public_bytes(serialization.Encoding.DER))
    point = bundle.certificate.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    der[bytes(der).find(point) + 40] ^= 0xFF  # the signature is not checked, the point is
    return bytes(der)


def test_a_certificate_whose_key_does_not_parse_is_refused_not_a_crash():
    assert rejection_code(certificate_with_a_key_off_its_curve()) == "malformed"


def test_not_before_up_to_a_day_ahead_is_tolerated():
    soon = make_bundle("soon", not_before=timezone.now() + timedelta(hours=20))
    assert inspect_certificate(soon.cert_pem, now=timezone.now()).common_name == "soon"


def test_private_key_message_says_what_to_do():
    with pytest.raises(ValidationError) as raised:
        inspect_certificate(make_bundle("bob").key_pem, now=timezone.now())
    assert "upload only cert.pem" in raised.value.message
    assert "Nothing of this upload was stored" in raised.value.message


def test_encrypted_private_keys_are_recognised():
    key = ec.generate_private_key(ec.SECP256R1())
    encrypted_der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    assert holds_private_key(encrypted_der)
    assert not holds_private_key(make_bundle("bob").cert_pem)

"""Key IDs and signatures, checked against the protocol note's worked example (§3.4)."""

import base64
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from delegations.notary.errors import InvalidKey, InvalidMetadata
from delegations.notary.keys import PublicKey, Signature, SigningKey

# A public certificate from the protocol note's experiment (no private key is involved).
ALICE_CERT_PEM = b"""-----BEGIN CERTIFICATE-----
MIIBYTCCAQigAwIBAgIUdhq4B8ThcJYqTBAVWLPsYhlwO90wCgYIKoZIzj0EAwIw
MTEOMAwGA1UEAwwFYWxpY2UxDDAKBgNVBAsMA3VjcDERMA8GA1UECgwIVGVzdCBP
cmcwHhcNMjYxMTI0MjMzOTM5WhcNMjcxMTI0MjM0NDM5WjAxMQ4wDAYDVQQDDAVh
bGljZTEMMAoGA1UECwwDdWNwMREwDwYDVQQKDAhUZXN0IE9yZzBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABDzdvFu1uBi6V7907cX18vP5bL0Rpc8oFiSgmimXkmmI
AtSVpxlrTgvuUPQPEriBQBqC7a9cX3uawBvC43I/nKgwCgYIKoZIzj0EAwIDRwAw
RAIgeziykc6YZVWpOXt8o2//EdFMgZnP1XZyLfX+0iF9re0CICDoaGrDVfClCSP5
/UbYJvQ2ivR3bEbERA/+Bv6c0W+5
-----END CERTIFICATE-----
"""


def alice_key() -> PublicKey:
    return PublicKey.from_certificate(x509.load_pem_x509_certificate(ALICE_CERT_PEM))


def test_certificate_key_has_the_tuf_id_notary_server_stored():
    key = alice_key()
    assert key.keytype == "ecdsa-x509"
    assert len(key.public) == 720
    assert key.public.startswith("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJZVEND")
    assert key.tuf_id == "80e2e82b60480f4f80fee32feb1c59bedecf0d42a6a1fb55140c9d8c785a14bf"


def test_certificate_key_has_the_canonical_id_notary_delegation_list_shows():
    assert (
        alice_key().canonical_id
        == "11b1695ab911c19056ed8670b285cd6c7a468970df50170b24a7fb292c1d71ce"
    )


def test_crlf_and_text_around_the_certificate_do_not_change_the_key():
    messy = b"Subject: alice\r\n" + ALICE_CERT_PEM.replace(b"\n", b"\r\n")
    start = messy.index(b"-----BEGIN")
    certificate = x509.load_pem_x509_certificate(messy[start:])
    assert PublicKey.from_certificate(certificate).tuf_id == alice_key().tuf_id


def test_bare_keys_have_equal_tuf_and_canonical_ids():
    key = SigningKey.generate().public
    assert key.keytype == "ecdsa"
    assert key.canonical_id == key.tuf_id


@pytest.mark.parametrize(
    "private_key",
    [ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1())],
    ids=["p256", "p384"],
)
def test_ecdsa_signatures_are_raw_r_s_of_the_curve_size(private_key):
    public = PublicKey.from_public_key(private_key.public_key())
    signer = SigningKey(private_key, public)
    signature = signer.sign(b"message")
    size = (private_key.curve.key_size + 7) // 8
    assert (signature.method, len(signature.sig)) == ("ecdsa", 2 * size)
    assert signature.keyid == public.tuf_id
    assert public.verifies(signature, b"message")
    assert not public.verifies(signature, b"other message")


def test_rsa_signatures_are_pss_with_a_32_byte_salt():
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = PublicKey.from_public_key(private_key.public_key())
    signature = SigningKey(private_key, public).sign(b"message")
    assert signature.method == "rsapss"
    assert len(signature.sig) == 256
    assert public.verifies(signature, b"message")


def test_rsa_pkcs1v15_signatures_are_verified_as_notary_does():
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = PublicKey.from_public_key(private_key.public_key())
    raw = private_key.sign(b"message", padding.PKCS1v15(), hashes.SHA256())
    assert public.verifies(Signature(public.tuf_id, "rsapkcs1v15", raw), b"message")
    assert not public.verifies(Signature(public.tuf_id, "rsapss", raw), b"message")


def test_der_encoded_ecdsa_signatures_do_not_verify():
    signer = SigningKey.generate()
    raw = signer.sign(b"m").sig
    der = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
    assert not signer.public.verifies(Signature(signer.public.tuf_id, "ecdsa", der), b"m")


def test_root_key_is_a_certificate_for_the_gun():
    now = datetime(2026, 11, 25, tzinfo=UTC)
    root = SigningKey.generate_root("dtr.example.org/dev/nginx", now=now)
    certificate = root.public.certificate()
    assert root.public.keytype == "ecdsa-x509"
    assert certificate.subject.rfc4514_string() == "CN=dtr.example.org/dev/nginx"
    assert certificate.not_valid_after_utc.year == 2036
    assert root.public.verifies(root.sign(b"root"), b"root")


def test_private_key_round_trips_and_must_match_its_public_key():
    key = SigningKey.generate()
    loaded = SigningKey.from_private_bytes(key.private_bytes(), key.public)
    assert key.public.verifies(loaded.sign(b"x"), b"x")
    with pytest.raises(InvalidKey):
        SigningKey.from_private_bytes(key.private_bytes(), SigningKey.generate().public)


def test_published_keys_with_private_material_are_refused():
    with pytest.raises(InvalidMetadata):
        PublicKey.from_dict(
            {
                "keytype": "ecdsa",
                "keyval": {"public": "AAAA", "private": base64.b64encode(b"x").decode()},
            }
        )


def test_signature_methods_are_lower_cased_on_parse():
    parsed = Signature.from_dict({"keyid": "ab", "method": "ECDSA", "sig": "c2ln"})
    assert parsed.method == "ecdsa"
    assert parsed.to_dict() == {"keyid": "ab", "method": "ecdsa", "sig": "c2ln"}

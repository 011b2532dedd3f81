"""Private key files from notary trust directories: made by the real `notary` CLI where it can,
and built here byte by byte for the variants it does not write (protocol note §9)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from delegations.notary import (
    InvalidKey,
    PassphraseRequired,
    PublicKey,
    SigningKey,
    WrongPassphrase,
    key_file_info,
    load_key_file,
)
from delegations.notary.keyfiles import MAX_PBKDF2_ITERATIONS
from tests.conftest import NOTARY_PASSPHRASE, NotaryCLI
from tests.notary.test_keys import ALICE_CERT_PEM

GUN = "dtr.example.org/keys/app"

PBES2 = "1.2.840.113549.1.5.13"
PBKDF2 = "1.2.840.113549.1.5.12"
HMAC_SHA256 = "1.2.840.113549.2.9"
HMAC_SHA512 = "1.2.840.113549.2.11"
AES_CBC = {
    16: "2.16.840.1.101.3.4.1.2",
    24: "2.16.840.1.101.3.4.1.22",
    32: "2.16.840.1.101.3.4.1.42",
}
PRF_HASHES = {None: "sha1", HMAC_SHA256: "sha256", HMAC_SHA512: "sha512"}
EC_PUBLIC_KEY = "1.2.840.10045.2.1"
P256 = "1.2.840.10045.3.1.7"
NOTARY_ED25519 = "1.3.6.1.4.1.11591.15.1"


# -- DER and PEM written independently of the code under test --------------------------------


def tlv(tag: int, content: bytes) -> bytes:
    if len(content) < 0x80:
        return bytes([tag, len(content)]) + content
    size = len(content).to_bytes((len(content).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def seq(*fields: bytes) -> bytes:
    return tlv(0x30, b"".join(fields))


def integer(value: int) -> bytes:
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def octets(data: bytes) -> bytes:
    return tlv(0x04, data)


def oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    encoded = b""
    for value in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [value & 0x7F]
        while value > 0x7F:
            value >>= 7
            chunk.insert(0, 0x80 | (value & 0x7F))
        encoded += bytes(chunk)
    return tlv(0x06, encoded)


def pem(label: str, der: bytes, headers: dict[str, str] | None = None) -> bytes:
    body = base64.b64encode(der).decode()
    lines = [f"-----BEGIN {label}-----"]
    if headers:
        lines += [f"{name}: {value}" for name, value in sorted(headers.items())] + [""]
    lines += [body[i : i + 64] for i in range(0, len(body), 64)]
    lines.append(f"-----END {label}-----")
    return ("\n".join(lines) + "\n").encode()


def notary_ec_private_key_info(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8 as notary writes an ECDSA key: version 1, SEC1 inside with curve and public key."""
    sec1 = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return seq(integer(1), seq(oid(EC_PUBLIC_KEY), oid(P256)), octets(sec1))


def notary_ed25519_private_key_info() -> bytes:
    """PKCS#8 as notary writes an Ed25519 key: its own OID, public ‖ seed ‖ public inside."""
    key = ed25519.Ed25519PrivateKey.generate()
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return seq(integer(0), seq(oid(NOTARY_ED25519)), octets(public + seed + public))


def pbes2_der(
    ciphertext: bytes,
    *,
    salt: bytes,
    iv: bytes,
    iterations: int,
    prf: str | None = None,
    key_bytes: int = 32,
    key_length_field: bool = False,
) -> bytes:
    kdf_parameters = [octets(salt), integer(iterations)]
    if key_length_field:
        kdf_parameters.append(integer(key_bytes))
    if prf is not None:
        kdf_parameters.append(seq(oid(prf), tlv(0x05, b"")))
    algorithm = seq(
        oid(PBES2),
        seq(seq(oid(PBKDF2), seq(*kdf_parameters)), seq(oid(AES_CBC[key_bytes]), octets(iv))),
    )
    return seq(algorithm, octets(ciphertext))


def encrypted_key_file(
    plain: bytes,
    passphrase: str = NOTARY_PASSPHRASE,
    *,
    iterations: int = 2048,
    prf: str | None = None,
    key_bytes: int = 32,
    key_length_field: bool = False,
    headers: dict[str, str] | None = None,
) -> bytes:
    salt, iv = os.urandom(8), os.urandom(16)
    key = hashlib.pbkdf2_hmac(PRF_HASHES[prf], passphrase.encode(), salt, iterations, key_bytes)
    pad = 16 - len(plain) % 16
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()
    der = pbes2_der(
        ciphertext,
        salt=salt,
        iv=iv,
        iterations=iterations,
        prf=prf,
        key_bytes=key_bytes,
        key_length_field=key_length_field,
    )
    return pem("ENCRYPTED PRIVATE KEY", der, headers)


def same_key(loaded: SigningKey, private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
    return loaded.public == PublicKey.from_public_key(private_key.public_key())


# -- keys the notary CLI made -------------------------------------------------------------------


def cli_root(cli: NotaryCLI, person: str, gun: str) -> dict:
    """root.json as the CLI cached it when it published."""
    path = cli.home / person / "tuf" / gun / "metadata" / "root.json"
    return json.loads(path.read_text())["signed"]


@pytest.fixture(scope="module")
def cli_targets_key(notary_url: str, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A targets key file `notary key generate` wrote (offline; no repository needed)."""
    cli = NotaryCLI(notary_url, tmp_path_factory.mktemp("notary-keys"))
    cli.run("key", "generate", "ecdsa", "--role", "targets")
    (path,) = (cli.home / "owner" / "private").glob("*.key")
    return path.read_bytes()


@pytest.mark.services
def test_every_key_notary_init_made_is_the_key_root_json_names(notary_cli):
    notary_cli.run("init", "-p", GUN)
    root = cli_root(notary_cli, "owner", GUN)
    files = sorted((notary_cli.home / "owner" / "private").glob("*.key"))
    roles = {}
    for path in files:
        data = path.read_bytes()
        info = key_file_info(data)
        key = load_key_file(data, NOTARY_PASSPHRASE)
        roles[info.role] = key
        assert info.encrypted
        assert path.stem == key.public.canonical_id  # notary names files by canonical ID
        named = [PublicKey.from_dict(root["keys"][i]) for i in root["roles"][info.role]["keyids"]]
        if info.role == "root":
            # root.json holds the root key as a certificate: same key, another TUF ID.
            assert info.gun is None
            assert [k.canonical_id for k in named] == [key.public.canonical_id]
        else:
            assert info.gun == GUN
            assert root["roles"][info.role]["keyids"] == [key.public.tuf_id]
        assert named[0].verifies(key.sign(b"probe"), b"probe")
    assert sorted(roles) == ["root", "snapshot", "targets"]
    assert {key.public.keytype for key in roles.values()} == {"ecdsa"}


@pytest.mark.services
def test_an_rsa_key_notary_stored_loads(notary_cli):
    # `notary key generate` makes ECDSA keys only; `notary key import` writes RSA ones.
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    source = notary_cli.home / "rsa.pem"
    source.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    notary_cli.run("key", "import", str(source), "--role", "targets", "--gun", GUN)
    (path,) = (notary_cli.home / "owner" / "private").glob("*.key")

    key = load_key_file(path.read_bytes(), NOTARY_PASSPHRASE)

    assert key.public.keytype == "rsa"
    assert same_key(key, private_key)
    assert path.stem == key.public.canonical_id
    assert key.public.canonical_id in notary_cli.run("key", "list").stdout
    info = key_file_info(path.read_bytes())
    assert (info.role, info.gun, info.encrypted) == ("targets", GUN, True)


@pytest.mark.services
def test_a_wrong_passphrase_is_named(cli_targets_key):
    with pytest.raises(WrongPassphrase, match="passphrase does not open the key file"):
        load_key_file(cli_targets_key, "not-the-passphrase")


@pytest.mark.services
@pytest.mark.parametrize("passphrase", [None, ""])
def test_an_encrypted_file_without_a_passphrase_asks_for_one(cli_targets_key, passphrase):
    with pytest.raises(PassphraseRequired, match="encrypted; give its passphrase"):
        load_key_file(cli_targets_key, passphrase)


@pytest.mark.services
def test_a_truncated_file_is_invalid_at_every_length(cli_targets_key):
    complete = cli_targets_key.rindex(b"-----") + len(b"-----")  # only the last newline missing
    for length in range(complete):
        with pytest.raises(InvalidKey):
            load_key_file(cli_targets_key[:length], NOTARY_PASSPHRASE)
    assert load_key_file(cli_targets_key[:complete], NOTARY_PASSPHRASE)


@pytest.mark.services
def test_a_truncated_key_inside_an_intact_pem_block_is_invalid(cli_targets_key):
    body = b"".join(cli_targets_key.splitlines()[3:-1])
    der = base64.b64decode(body)
    for length in range(len(der)):
        with pytest.raises(InvalidKey):
            load_key_file(pem("ENCRYPTED PRIVATE KEY", der[:length]), NOTARY_PASSPHRASE)
    assert load_key_file(pem("ENCRYPTED PRIVATE KEY", der), NOTARY_PASSPHRASE)


@pytest.mark.services
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_damaged_file_is_invalid_or_still_the_same_key(cli_targets_key, data):
    original = load_key_file(cli_targets_key, NOTARY_PASSPHRASE)
    damaged = bytearray(cli_targets_key)
    for _ in range(data.draw(st.integers(1, 4))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    try:
        key = load_key_file(bytes(damaged), NOTARY_PASSPHRASE)
    except InvalidKey:
        return
    # A change in a header or in whitespace can leave the key readable, never a different key.
    assert key.public == original.public


# -- variants built here ------------------------------------------------------------------------


def test_a_notary_version_1_ecdsa_key_loads_unencrypted_with_or_without_headers():
    private_key = ec.generate_private_key(ec.SECP256R1())
    private_key_info = notary_ec_private_key_info(private_key)
    with pytest.raises(ValueError, match="Invalid key"):
        serialization.load_der_private_key(private_key_info, None)  # why the loader exists
    for headers in [None, {"gun": GUN, "role": "targets"}]:
        data = pem("PRIVATE KEY", private_key_info, headers)
        assert same_key(load_key_file(data, None), private_key)
        assert key_file_info(data).encrypted is False
        assert key_file_info(data).role == (headers and headers["role"])


@pytest.mark.parametrize("key_bytes", [16, 24, 32])
@pytest.mark.parametrize("prf", [None, HMAC_SHA256, HMAC_SHA512])
def test_pbes2_with_any_aes_cbc_and_an_explicit_prf_loads(key_bytes, prf):
    private_key = ec.generate_private_key(ec.SECP256R1())
    data = encrypted_key_file(
        notary_ec_private_key_info(private_key),
        prf=prf,
        key_bytes=key_bytes,
        key_length_field=key_bytes == 24,
        headers={"role": "targets", "gun": GUN},
    )
    assert same_key(load_key_file(data, NOTARY_PASSPHRASE), private_key)


def test_a_pkcs8_key_openssl_encrypted_loads():
    # cryptography (OpenSSL) writes PBES2 with an explicit hmacWithSHA256 PRF.
    private_key = ec.generate_private_key(ec.SECP384R1())
    data = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(NOTARY_PASSPHRASE.encode()),
    )
    assert same_key(load_key_file(data, NOTARY_PASSPHRASE), private_key)


@pytest.mark.parametrize("encrypted", [False, True])
@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_traditional_ec_and_rsa_private_keys_load(kind, encrypted):
    if kind == "ec":
        private_key = ec.generate_private_key(ec.SECP256R1())
    else:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption = (
        serialization.BestAvailableEncryption(NOTARY_PASSPHRASE.encode())
        if encrypted
        else serialization.NoEncryption()
    )
    data = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, encryption
    )
    assert data.startswith(f"-----BEGIN {kind.upper()} PRIVATE KEY-----".encode())
    assert (b"Proc-Type: 4,ENCRYPTED" in data) == encrypted
    assert key_file_info(data).encrypted == encrypted
    assert same_key(load_key_file(data, NOTARY_PASSPHRASE if encrypted else None), private_key)
    if encrypted:
        with pytest.raises(WrongPassphrase):
            load_key_file(data, "not-the-passphrase")


def test_text_around_the_block_and_crlf_line_ends_are_ignored():
    private_key = ec.generate_private_key(ec.SECP256R1())
    data = encrypted_key_file(notary_ec_private_key_info(private_key), headers={"role": "targets"})
    messy = b"Bag Attributes\r\n" + data.replace(b"\n", b"\r\n") + b"trailing\r\n"
    assert same_key(load_key_file(messy, NOTARY_PASSPHRASE), private_key)


@pytest.mark.parametrize("encrypted", [False, True])
def test_an_ed25519_key_is_refused_as_one_the_portal_does_not_sign_with(encrypted):
    plain = notary_ed25519_private_key_info()
    data = encrypted_key_file(plain) if encrypted else pem("PRIVATE KEY", plain)
    with pytest.raises(InvalidKey, match="Ed25519 key; the portal signs targets with ECDSA or RSA"):
        load_key_file(data, NOTARY_PASSPHRASE)
    standard = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(InvalidKey, match="Ed25519"):
        load_key_file(standard, None)


def test_a_small_rsa_key_is_refused():
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    data = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(InvalidKey, match="1024-bit RSA key; notary signs with RSA keys of 2048"):
        load_key_file(data, None)


def test_a_key_whose_public_half_is_another_keys_is_refused():
    private_key, other = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    scalar = private_key.private_numbers().private_value.to_bytes(32, "big")
    point = other.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    public_field = tlv(0xA1, tlv(0x03, b"\0" + point))
    sec1 = seq(integer(1), octets(scalar), tlv(0xA0, oid(P256)), public_field)
    with pytest.raises(InvalidKey):
        load_key_file(pem("EC PRIVATE KEY", sec1), None)


def test_an_iteration_count_bomb_is_refused_before_any_derivation():
    for iterations in [MAX_PBKDF2_ITERATIONS + 1, 2**62, 0]:
        data = pem(
            "ENCRYPTED PRIVATE KEY",
            pbes2_der(os.urandom(64), salt=b"s" * 8, iv=b"i" * 16, iterations=iterations),
        )
        started = time.monotonic()
        with pytest.raises(InvalidKey, match=f"asks for {iterations} PBKDF2 iterations"):
            load_key_file(data, NOTARY_PASSPHRASE)
        # Not a performance figure: deriving 2**62 rounds would take longer than the universe.
        assert time.monotonic() - started < 5


def test_the_largest_iteration_count_allowed_still_loads():
    private_key = ec.generate_private_key(ec.SECP256R1())
    data = encrypted_key_file(
        notary_ec_private_key_info(private_key), iterations=MAX_PBKDF2_ITERATIONS
    )
    assert same_key(load_key_file(data, NOTARY_PASSPHRASE), private_key)


@pytest.mark.parametrize(
    ("algorithm", "message"),
    [
        (seq(oid("1.2.840.113549.1.12.1.3"), seq(octets(b"s" * 8), integer(2048))), "PKCS#12 3DES"),
        (
            seq(
                oid(PBES2),
                seq(
                    seq(oid(PBKDF2), seq(octets(b"s" * 8), integer(2048))),
                    seq(oid("1.2.840.113549.3.7"), octets(b"i" * 8)),
                ),
            ),
            "encrypted with 1.2.840.113549.3.7; the portal reads AES-128, AES-192 and AES-256",
        ),
        (
            seq(
                oid(PBES2),
                seq(
                    seq(oid("1.2.840.113549.1.5.14"), seq(octets(b"s" * 8))),
                    seq(oid(AES_CBC[32]), octets(b"i" * 16)),
                ),
            ),
            "not PBKDF2",
        ),
        (
            seq(
                oid(PBES2),
                seq(
                    seq(
                        oid(PBKDF2),
                        seq(octets(b"s" * 8), integer(2048), seq(oid("1.2.840.113549.2.5"))),
                    ),
                    seq(oid(AES_CBC[32]), octets(b"i" * 16)),
                ),
            ),
            "unknown PRF 1.2.840.113549.2.5",
        ),
    ],
)
def test_an_encryption_notary_does_not_write_is_named(algorithm, message):
    data = pem("ENCRYPTED PRIVATE KEY", seq(algorithm, octets(os.urandom(64))))
    with pytest.raises(InvalidKey, match=re.escape(message)):
        load_key_file(data, NOTARY_PASSPHRASE)


# Built from parts, so that no file in the repository looks like it holds a key.
BEGIN_PKCS8 = b"-----BEGIN " + b"PRIVATE KEY-----"
END_PKCS8 = b"-----END " + b"PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "holds no PEM block"),
        (b"hello", "holds no PEM block"),
        (ALICE_CERT_PEM, "it holds a CERTIFICATE"),
        (BEGIN_PKCS8 + b"\nMIG\n", "has no END line"),
        (BEGIN_PKCS8 + b"\n%%%%\n" + END_PKCS8 + b"\n", "not base64"),
        (BEGIN_PKCS8 + b"\n" + END_PKCS8 + b"\n", "is empty"),
        (pem("PRIVATE KEY", b"\x30\x03\x02\x01"), "damaged or truncated"),
        (pem("ENCRYPTED PRIVATE KEY", b"\x30\x00"), "damaged or truncated"),
        (b"x" * (64 * 1024 + 1), "larger than 64 KiB"),
    ],
)
def test_what_is_not_a_private_key_file_says_so(data, message):
    with pytest.raises(InvalidKey, match=message):
        load_key_file(data, NOTARY_PASSPHRASE)


def test_headers_that_name_another_repository_or_role_are_reported():
    data = encrypted_key_file(
        notary_ec_private_key_info(ec.generate_private_key(ec.SECP256R1())),
        headers={"gun": "dtr.example.org/other/app", "role": "snapshot"},
    )
    info = key_file_info(data)
    assert info.mismatches(gun="dtr.example.org/other/app", role="snapshot") == []
    assert info.mismatches(gun=GUN, role="targets") == [
        "The key file says it is a snapshot key, not a targets key.",
        f"The key file says it belongs to dtr.example.org/other/app, not {GUN}.",
    ]


labels = st.sampled_from(
    ["ENCRYPTED PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"]
)


@settings(max_examples=300, deadline=None)
@given(labels, st.binary(max_size=300), st.one_of(st.none(), st.text(max_size=12)))
def test_garbage_in_any_key_block_is_invalid_key_and_nothing_else(label, body, passphrase):
    with pytest.raises(InvalidKey):
        load_key_file(pem(label, body, {"role": "targets"}), passphrase)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.integers(1, 4096))
def test_garbage_inside_a_well_formed_envelope_is_invalid_key(ciphertext, iterations):
    data = pem(
        "ENCRYPTED PRIVATE KEY",
        pbes2_der(ciphertext, salt=b"salt", iv=b"\0" * 16, iterations=iterations),
    )
    with pytest.raises(InvalidKey):
        load_key_file(data, NOTARY_PASSPHRASE)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_are_invalid_key(data):
    with pytest.raises(InvalidKey):
        load_key_file(data, NOTARY_PASSPHRASE)


def test_an_object_identifier_with_a_huge_arc_is_refused_quickly():
    # One arc of 27,000 base-128 digits: str() of it would refuse, after long work.
    huge_arc = b"\xff" * 27_000 + b"\x7f"
    algorithm = seq(tlv(0x06, b"\x2a" + huge_arc))
    data = pem("PRIVATE KEY", seq(integer(0), algorithm, octets(b"\x00" * 32)))
    started = time.perf_counter()
    with pytest.raises(InvalidKey):
        load_key_file(data, None)
    assert time.perf_counter() - started < 1

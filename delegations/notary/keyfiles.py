"""Private key files of a notary trust directory (`~/.notary/private/<canonical id>.key`): read
to import a key, and written to hand a root key to its owner.

notary writes PKCS#8 `ENCRYPTED PRIVATE KEY` PEM blocks with `gun:` and `role:` headers:
PBES2 with PBKDF2 (HMAC-SHA1, 2048 iterations) and AES-256-CBC. Its ECDSA keys carry a
PrivateKeyInfo version of 1 that `cryptography` refuses, so the envelope is opened here and the
inner structure re-encoded as version 0 before `cryptography` sees it (protocol note §9).
Unencrypted `PRIVATE KEY` blocks, traditional `EC PRIVATE KEY` / `RSA PRIVATE KEY` blocks and
the legacy `Proc-Type: 4,ENCRYPTED` encryption older notary releases wrote load too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from . import der
from .errors import InvalidKey, PassphraseRequired, WrongPassphrase
from .keys import PublicKey, SigningKey

# A notary key file is a few hundred bytes (RSA-4096: about 3.3 KB); the cap stops a hostile
# upload from being base64- and DER-decoded at all.
MAX_KEY_FILE_BYTES = 64 * 1024
# notary and OpenSSL write 2048 iterations. PBKDF2 runs before anything can be checked, so the
# count is bounded to keep one hostile file from holding a CPU for minutes.
MAX_PBKDF2_ITERATIONS = 1_000_000
# RSA keys are validated (primality checks) when loaded, which grows steeply with size; notary's
# verifier refuses keys under 2048 bits.
RSA_BITS = range(2048, 8192 + 1)

ENCRYPTED_PKCS8 = "ENCRYPTED PRIVATE KEY"
PKCS8 = "PRIVATE KEY"
TRADITIONAL = {"EC PRIVATE KEY", "RSA PRIVATE KEY"}
_PRIVATE_KEY_LABELS = {ENCRYPTED_PKCS8, PKCS8, *TRADITIONAL}

_PBES2 = "1.2.840.113549.1.5.13"
_PBKDF2 = "1.2.840.113549.1.5.12"
_PBKDF2_PRFS = {
    "1.2.840.113549.2.7": "sha1",
    "1.2.840.113549.2.8": "sha224",
    "1.2.840.113549.2.9": "sha256",
    "1.2.840.113549.2.10": "sha384",
    "1.2.840.113549.2.11": "sha512",
}
_AES_CBC_KEY_BYTES = {
    "2.16.840.1.101.3.4.1.2": 16,
    "2.16.840.1.101.3.4.1.22": 24,
    "2.16.840.1.101.3.4.1.42": 32,
}
_LEGACY_AES_CBC_KEY_BYTES = {"AES-128-CBC": 16, "AES-192-CBC": 24, "AES-256-CBC": 32}
_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
# notary writes Ed25519 keys under this OID rather than the standard 1.3.101.112.
_ED25519 = {"1.3.6.1.4.1.11591.15.1", "1.3.101.112"}
_ALGORITHM_NAMES = {
    "1.2.840.10040.4.1": "DSA",
    "1.3.101.110": "X25519",
    "1.3.101.111": "X448",
    "1.3.101.113": "Ed448",
    "1.2.840.113549.1.5.3": "PBES1 (MD5, DES)",
    "1.2.840.113549.1.5.10": "PBES1 (SHA-1, DES)",
    "1.2.840.113549.1.12.1.3": "PKCS#12 3DES",
}
_AES_BLOCK_BYTES = 16
_AES_256_CBC = "2.16.840.1.101.3.4.1.42"
# What the portal writes: many more rounds than notary's own 2048, as the file leaves the portal
# for wherever its owner keeps it. notary reads any count, but only the default PRF (HMAC-SHA1:
# with HMAC-SHA256 it reports the passphrase as wrong), so the PRF stays the default.
WRITTEN_PBKDF2_ITERATIONS = 600_000
_WRITTEN_SALT_BYTES = 16
MIN_PASSPHRASE_CHARACTERS = 12

_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,64})-----")
T = TypeVar("T")
_DOES_NOT_OPEN = "The passphrase does not open the key file (or the file is damaged)."


@dataclass(frozen=True)
class KeyFileInfo:
    """What a key file says about itself before it is opened: notary's headers, and whether a
    passphrase is needed."""

    role: str | None
    gun: str | None
    encrypted: bool

    def mismatches(self, *, gun: str, role: str) -> list[str]:
        """Notes for people where the headers name another repository or role than expected.

        The headers are advice only (the key itself decides), but a mismatch usually means the
        wrong file was picked.
        """
        notes = []
        if self.role is not None and self.role != role:
            notes.append(f"The key file says it is a {self.role} key, not a {role} key.")
        if self.gun is not None and self.gun != gun:
            notes.append(f"The key file says it belongs to {self.gun}, not {gun}.")
        return notes


@dataclass(frozen=True)
class _PemBlock:
    label: str
    headers: dict[str, str]
    body: bytes

    @property
    def legacy_encrypted(self) -> bool:
        return self.headers.get("Proc-Type", "").replace(" ", "") == "4,ENCRYPTED"


def key_file_info(data: bytes) -> KeyFileInfo:
    block = _private_key_block(data)
    return KeyFileInfo(
        role=block.headers.get("role"),
        gun=block.headers.get("gun"),
        encrypted=block.label == ENCRYPTED_PKCS8 or block.legacy_encrypted,
    )


def load_key_file(data: bytes, passphrase: str | None) -> SigningKey:
    """The signing key in a notary private key file, published as a bare `ecdsa`/`rsa` key.

    Raises `InvalidKey` (or its `PassphraseRequired` / `WrongPassphrase`) for anything that is
    not a usable ECDSA or RSA key file; nothing from `cryptography` escapes.
    """
    block = _private_key_block(data)
    if block.label == ENCRYPTED_PKCS8:
        plain = _decrypt_pbes2(block.body, _passphrase_bytes(passphrase))
        try:
            private_key_info = _normalised_private_key_info(plain)
        except der.DerError:
            # A wrong key yields garbage that now and then survives the padding check.
            raise WrongPassphrase(_DOES_NOT_OPEN) from None
    elif block.label == PKCS8:
        private_key_info = _damaged_unless_der(_normalised_private_key_info, block.body)
    else:
        body = block.body
        if block.legacy_encrypted:
            body = _decrypt_legacy_pem(block, _passphrase_bytes(passphrase))
        if block.label == "RSA PRIVATE KEY":
            _damaged_unless_der(_check_rsa_size, body)
        private_key_info = body
    return _signing_key(private_key_info)


def _private_key_block(data: bytes) -> _PemBlock:
    if len(data) > MAX_KEY_FILE_BYTES:
        raise InvalidKey(
            f"This is not a key file: it is larger than {MAX_KEY_FILE_BYTES // 1024} KiB, and a "
            "notary key file is a few hundred bytes."
        )
    labels = []
    for match in _PEM_BEGIN.finditer(data):
        label = match.group(1).decode("ascii")
        if label in _PRIVATE_KEY_LABELS:
            end = data.find(b"-----END " + match.group(1) + b"-----", match.end())
            if end < 0:
                raise InvalidKey("The key file is truncated: its PEM block has no END line.")
            return _pem_block(label, data[match.end() : end])
        labels.append(label)
    if labels:
        raise InvalidKey(
            f"This is not a private key file: it holds a {labels[0]}. Import the .key file from "
            "the private/ folder of the notary trust directory."
        )
    raise InvalidKey(
        f"This is not a private key file: it holds no PEM block such as {ENCRYPTED_PKCS8} "
        "(the files in the private/ folder of a notary trust directory)."
    )


def _pem_block(label: str, text: bytes) -> _PemBlock:
    lines = text.replace(b"\r\n", b"\n").split(b"\n")
    if lines and not lines[0].strip():
        lines.pop(0)  # the rest of the BEGIN line
    headers: dict[str, str] = {}
    # As Go's pem.Decode: header lines come first, and end at the first line without a colon.
    while lines and b":" in lines[0]:
        name, _, value = lines.pop(0).partition(b":")
        headers[name.decode("utf-8", "replace").strip()] = value.decode("utf-8", "replace").strip()
    try:
        body = base64.b64decode(b"".join(line.strip() for line in lines), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKey("The key file is damaged: its body is not base64.") from None
    if not body:
        raise InvalidKey("The key file is damaged: its PEM block is empty.")
    return _PemBlock(label, headers, body)


def _passphrase_bytes(passphrase: str | None) -> bytes:
    if not passphrase:
        raise PassphraseRequired("The key file is encrypted; give its passphrase.")
    # Go hands the passphrase's UTF-8 bytes to PBKDF2; surrogates cannot come from a terminal
    # but must not raise here either.
    return passphrase.encode("utf-8", "surrogatepass")


def _damaged_unless_der(parse: Callable[[bytes], T], data: bytes) -> T:
    try:
        return parse(data)
    except der.DerError as error:
        raise InvalidKey(f"The key file is damaged or truncated: {error}.") from None


def _decrypt_pbes2(encrypted_private_key_info: bytes, passphrase: bytes) -> bytes:
    salt, iterations, prf, key_bytes, iv, ciphertext = _damaged_unless_der(
        _pbes2_parameters, encrypted_private_key_info
    )
    if not 1 <= iterations <= MAX_PBKDF2_ITERATIONS:
        raise InvalidKey(
            f"The key file asks for {iterations} PBKDF2 iterations; the portal refuses more than "
            f"{MAX_PBKDF2_ITERATIONS} (notary uses 2048)."
        )
    key = hashlib.pbkdf2_hmac(prf, passphrase, salt, iterations, key_bytes)
    return _aes_cbc_decrypt(key, iv, ciphertext)


def _pbes2_parameters(data: bytes) -> tuple[bytes, int, str, int, bytes, bytes]:
    """salt, iterations, PRF hash name, AES key size, IV and ciphertext of a PBES2 key."""
    algorithm, encrypted = _fields(der.read(data).sequence("EncryptedPrivateKeyInfo"), 2)
    scheme = _fields(algorithm.sequence("encryption algorithm"), 1, 2)
    scheme_oid = scheme[0].object_identifier()
    if scheme_oid != _PBES2 or len(scheme) != 2:
        raise InvalidKey(
            f"The key file is encrypted with {_ALGORITHM_NAMES.get(scheme_oid, scheme_oid)}; the "
            "portal reads PBES2 with PBKDF2 and AES-CBC, as notary writes it."
        )
    kdf, cipher = _fields(scheme[1].sequence("PBES2 parameters"), 2)
    kdf_oid, kdf_parameters = _fields(kdf.sequence("key derivation function"), 2)
    if kdf_oid.object_identifier() != _PBKDF2:
        raise InvalidKey(
            f"The key file derives its key with {kdf_oid.object_identifier()}, not PBKDF2."
        )
    salt_element, iterations_element, *optional = _fields(
        kdf_parameters.sequence("PBKDF2 parameters"), 2, 4
    )
    salt = salt_element.octet_string("PBKDF2 salt")
    iterations = iterations_element.integer("PBKDF2 iteration count")
    key_length = None
    if optional and optional[0].tag == der.INTEGER:
        key_length = optional.pop(0).integer("PBKDF2 key length")
    prf = "sha1"  # the default when no PRF is written, as in notary's files
    if optional:
        prf_oid = _fields(optional.pop(0).sequence("PBKDF2 PRF"), 1, 2)[0].object_identifier()
        if prf_oid not in _PBKDF2_PRFS:
            raise InvalidKey(f"The key file's PBKDF2 uses an unknown PRF {prf_oid}.")
        prf = _PBKDF2_PRFS[prf_oid]
    if optional:
        raise der.DerError("unexpected fields after the PBKDF2 parameters")
    cipher_oid, iv_element = _fields(cipher.sequence("encryption scheme"), 2)
    key_bytes = _AES_CBC_KEY_BYTES.get(cipher_oid.object_identifier())
    if key_bytes is None:
        raise InvalidKey(
            f"The key file is encrypted with {cipher_oid.object_identifier()}; the portal reads "
            "AES-128, AES-192 and AES-256 in CBC mode."
        )
    if key_length is not None and key_length != key_bytes:
        raise der.DerError("the PBKDF2 key length does not match the cipher")
    iv = iv_element.octet_string("AES IV")
    if len(iv) != _AES_BLOCK_BYTES:
        raise der.DerError("the AES IV is not 16 bytes")
    return salt, iterations, prf, key_bytes, iv, encrypted.octet_string("encrypted key")


def _decrypt_legacy_pem(block: _PemBlock, passphrase: bytes) -> bytes:
    """Open OpenSSL's traditional PEM encryption (`DEK-Info: AES-256-CBC,<iv>`)."""
    cipher_name, _, iv_hex = block.headers.get("DEK-Info", "").partition(",")
    key_bytes = _LEGACY_AES_CBC_KEY_BYTES.get(cipher_name.strip().upper())
    if key_bytes is None:
        raise InvalidKey(
            f"The key file is encrypted with {cipher_name.strip() or 'an unnamed cipher'}; the "
            "portal reads AES-CBC encrypted key files."
        )
    try:
        iv = bytes.fromhex(iv_hex.strip())
    except ValueError:
        iv = b""
    if len(iv) != _AES_BLOCK_BYTES:
        raise InvalidKey("The key file is damaged: its DEK-Info IV is not 16 bytes of hex.")
    # EVP_BytesToKey with MD5 and one round, keyed by the first 8 bytes of the IV.
    derived, digest = b"", b""
    while len(derived) < key_bytes:
        digest = hashlib.md5(digest + passphrase + iv[:8], usedforsecurity=False).digest()
        derived += digest
    plain = _aes_cbc_decrypt(derived[:key_bytes], iv, block.body)
    try:
        der.read(plain)
    except der.DerError:
        raise WrongPassphrase(_DOES_NOT_OPEN) from None
    return plain


def _aes_cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    if not ciphertext or len(ciphertext) % _AES_BLOCK_BYTES:
        raise InvalidKey("The key file is damaged: its encrypted part is truncated.")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    pad = padded[-1]
    if not 1 <= pad <= _AES_BLOCK_BYTES or padded[-pad:] != bytes([pad]) * pad:
        raise WrongPassphrase(_DOES_NOT_OPEN)
    return padded[:-pad]


def _normalised_private_key_info(data: bytes) -> bytes:
    """PKCS#8 PrivateKeyInfo as version 0, after checking the key is one the portal signs with.

    notary writes version 1 for ECDSA keys without the public key field version 1 exists for,
    and `cryptography` refuses that; version 0 with the same fields is what it means.
    """
    fields = _fields(der.read(data).sequence("PrivateKeyInfo"), 3, 5)
    version, algorithm, private_key = fields[:3]
    if version.integer("PrivateKeyInfo version") not in (0, 1):
        raise der.DerError("PrivateKeyInfo has an unknown version")
    algorithm_fields = _fields(algorithm.sequence("private key algorithm"), 1, 2)
    algorithm_oid = algorithm_fields[0].object_identifier()
    if algorithm_oid in _ED25519:
        raise InvalidKey(
            "This is an Ed25519 key; the portal signs targets with ECDSA or RSA keys, so it "
            "cannot use it."
        )
    if algorithm_oid == _RSA_ENCRYPTION:
        _check_rsa_size(private_key.octet_string("RSA private key"))
    elif algorithm_oid != _EC_PUBLIC_KEY:
        name = _ALGORITHM_NAMES.get(algorithm_oid, algorithm_oid)
        raise InvalidKey(
            f"This is a {name} key; the portal signs targets with ECDSA or RSA keys, so it "
            "cannot use it."
        )
    private_key.octet_string("private key")
    # [0] attributes may follow; the [1] public key of version 1 is left out of version 0.
    attributes = [field.encoded for field in fields[3:] if field.tag == 0xA0]
    content = b"".join([der.encode_integer(0), algorithm.encoded, private_key.encoded, *attributes])
    return der.encode(der.SEQUENCE, content)


def _check_rsa_size(rsa_private_key: bytes) -> None:
    fields = _fields(der.read(rsa_private_key).sequence("RSA private key"), 2, 10)
    bits = fields[1].integer("RSA modulus").bit_length()
    if bits not in RSA_BITS:
        raise InvalidKey(
            f"This is a {bits}-bit RSA key; notary signs with RSA keys of "
            f"{RSA_BITS.start} to {RSA_BITS.stop - 1} bits."
        )


def _signing_key(private_key_der: bytes) -> SigningKey:
    try:
        private_key = serialization.load_der_private_key(private_key_der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidKey("The key file holds a private key that does not load.") from None
    if not isinstance(private_key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise InvalidKey("The portal signs targets with ECDSA or RSA keys; this is neither.")
    public = PublicKey.from_public_key(private_key.public_key())
    return SigningKey.from_private_bytes(private_key_der, public)


def _fields(elements: list[der.Element], least: int, most: int | None = None) -> list[der.Element]:
    most = least if most is None else most
    if not least <= len(elements) <= most:
        raise der.DerError(f"a structure has {len(elements)} fields, not {least} to {most}")
    return elements


def encrypted_key_file(key: SigningKey, passphrase: str, *, role: str, gun: str | None) -> bytes:
    """`key` as a notary private key file: an `ENCRYPTED PRIVATE KEY` (PBES2: PBKDF2 with
    HMAC-SHA1, AES-256-CBC) with notary's `gun:`, `path:` and `role:` headers, which
    `notary key import` reads and `load_key_file` opens again. Root keys carry no `gun`."""
    if len(passphrase) < MIN_PASSPHRASE_CHARACTERS:
        raise InvalidKey(
            f"The passphrase must have at least {MIN_PASSPHRASE_CHARACTERS} characters: the file "
            "is only as safe as its passphrase once it leaves the portal."
        )
    salt = os.urandom(_WRITTEN_SALT_BYTES)
    iv = os.urandom(_AES_BLOCK_BYTES)
    derived = hashlib.pbkdf2_hmac(
        "sha1", _passphrase_bytes(passphrase), salt, WRITTEN_PBKDF2_ITERATIONS, 32
    )
    plain = key.private_bytes()
    pad = _AES_BLOCK_BYTES - len(plain) % _AES_BLOCK_BYTES
    encryptor = Cipher(algorithms.AES(derived), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()
    kdf = _sequence(
        der.encode_object_identifier(_PBKDF2),
        _sequence(
            der.encode(der.OCTET_STRING, salt),
            der.encode_integer(WRITTEN_PBKDF2_ITERATIONS),
        ),
    )
    cipher = _sequence(der.encode_object_identifier(_AES_256_CBC), der.encode(der.OCTET_STRING, iv))
    algorithm = _sequence(der.encode_object_identifier(_PBES2), _sequence(kdf, cipher))
    document = _sequence(algorithm, der.encode(der.OCTET_STRING, ciphertext))
    # `notary key import` files an encrypted key under its `path` header, as it cannot read the
    # key's ID without the passphrase; the trust directory names keys by canonical ID.
    headers = {"path": key.public.canonical_id, "role": role}
    if gun is not None:
        headers["gun"] = gun
    # As Go's pem.Encode writes it: headers sorted by name, a blank line, 64-column base64.
    body = base64.b64encode(document)
    lines = [f"-----BEGIN {ENCRYPTED_PKCS8}-----".encode()]
    lines += [f"{name}: {value}".encode() for name, value in sorted(headers.items())]
    lines.append(b"")
    lines += [body[i : i + 64] for i in range(0, len(body), 64)]
    lines.append(f"-----END {ENCRYPTED_PKCS8}-----".encode())
    return b"\n".join(lines) + b"\n"


def _sequence(*elements: bytes) -> bytes:
    return der.encode(der.SEQUENCE, b"".join(elements))

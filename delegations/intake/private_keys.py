"""Recognising private key material anywhere in what a member sends, however it is wrapped.

A UCP bundle's `key.pem` is also its owner's login credential, so the portal refuses any upload
or text that holds one: armoured (PEM), raw DER next to a certificate, or bare base64 pasted
without its armour. Everything here is linear in the input, which is capped by the caller.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

_PEM_MARKER = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY")
_OPENSSH_MARKER = b"openssh-key-v1\x00"

# The first bytes of a DER private key: a SEQUENCE (any length form) holding INTEGER 0 or 1 (the
# version of PKCS#8, PKCS#1 and SEC1) followed by an AlgorithmIdentifier, an INTEGER (the RSA
# modulus) or an OCTET STRING (the EC private scalar).
_DER_KEY_START = re.compile(
    rb"\x30(?:[\x00-\x7f]|\x81[\x00-\xff]|\x82[\x00-\xff]{2}|\x83[\x00-\xff]{3})"
    rb"\x02\x01[\x00\x01][\x02\x04\x30]",
    re.DOTALL,
)
# More places that look like the start of a DER key than this is a file made to look so.
MAX_CANDIDATES = 64
# Encrypted PKCS#8 names its encryption scheme by one of these OIDs (DER-encoded): PBES2, and
# PKCS#12's password-based schemes.
_PASSWORD_ENCRYPTION_OIDS = (
    b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x05\x0d",  # 1.2.840.113549.1.5.13 PBES2
    b"\x06\x0a\x2a\x86\x48\x86\xf7\x0d\x01\x0c\x01",  # 1.2.840.113549.1.12.1.* PKCS#12 PBE
)
# Base64 long enough to hold a key (the smallest, a P-256 SEC1 key, is 121 bytes: 164
# characters), with the line breaks and indentation people paste.
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/=\s]{160,}")
_WHITESPACE = re.compile(rb"\s+")
_PADDING = re.compile(rb"=+")


def holds_private_key(data: bytes) -> bool:
    """Whether `data` is, or contains, private key material in PEM, DER or base64 form."""
    if _PEM_MARKER.search(data) or _holds_raw_key(data):
        return True
    return any(_holds_raw_key(decoded) for decoded in _base64_runs(data))


def _holds_raw_key(data: bytes) -> bool:
    """A DER key (plain or encrypted) or an OpenSSH key body anywhere in `data`."""
    if _OPENSSH_MARKER in data or any(oid in data for oid in _PASSWORD_ENCRYPTION_OIDS):
        return True
    for count, start in enumerate(_DER_KEY_START.finditer(data)):
        if count == MAX_CANDIDATES:
            # No certificate looks like this; a file that does is built to hide something.
            return True
        if _is_der_private_key(data, start.start()):
            return True
    return False


def _is_der_private_key(data: bytes, at: int) -> bool:
    length = _der_length(data, at)
    if length is None:
        return False
    try:
        serialization.load_der_private_key(data[at : at + length], password=None)
    except TypeError:
        return True  # an encrypted private key: it parsed far enough to ask for a password
    except (ValueError, UnsupportedAlgorithm):
        return False
    return True


def _der_length(data: bytes, at: int) -> int | None:
    """The total length of the DER element at `at`, or None if it is cut off."""
    if len(data) < at + 2:
        return None
    first = data[at + 1]
    if first < 0x80:
        header, body = 2, first
    else:
        count = first & 0x7F
        if not 1 <= count <= 3 or len(data) < at + 2 + count:
            return None
        header, body = 2 + count, int.from_bytes(data[at + 2 : at + 2 + count], "big")
    total = header + body
    return total if at + total <= len(data) else None


def _base64_runs(data: bytes) -> Iterator[bytes]:
    """What each stretch of base64 in `data` decodes to; padding splits two blobs run together."""
    for run in _BASE64_RUN.finditer(data):
        for piece in _PADDING.split(_WHITESPACE.sub(b"", run.group(0))):
            try:
                yield base64.b64decode(piece + b"=" * (-len(piece) % 4), validate=True)
            except (binascii.Error, ValueError):
                continue

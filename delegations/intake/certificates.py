"""Inspecting an uploaded certificate the way the notary CLI would before delegating to it.

A UCP bundle's `key.pem` is also its owner's UCP login credential, so anything that looks like
private key material is refused before it is parsed any further, and nothing of it is kept.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.exceptions import ValidationError
from django.utils.formats import date_format

from ..notary import InvalidKey, PublicKey
from .private_keys import holds_private_key

# notary refuses a certificate whose validity starts more than a day ahead (clock skew margin).
MAX_NOT_BEFORE_SKEW = timedelta(days=1)
MINIMUM_RSA_BITS = 2048
ACCEPTED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}
WEAK_HASHES = (hashes.SHA1, hashes.MD5)
# A certificate that ends sooner than this is accepted with a warning: the delegation ends with it.
EXPIRY_WARNING = timedelta(days=183)

_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
_PEM_END = re.compile(rb"-----END ([A-Z0-9 ]+)-----")
# A zip's local file header and end-of-directory record; either anywhere means a zip, even one
# with something put in front of it (`cat cert.pem bundle.zip`).
_ZIP_MARKERS = (b"PK\x03\x04", b"PK\x05\x06")
# Far beyond any UCP certificate's subject or issuer, and what the database keeps of them.
MAX_NAME_CHARACTERS = 1024

PRIVATE_KEY_MESSAGE = (
    "This file contains a private key. Never upload key.pem: upload only cert.pem from your "
    "UCP client bundle. Nothing of this upload was stored."
)


@dataclass(frozen=True)
class CertificateInfo:
    """What the portal keeps of an accepted certificate: public facts only."""

    pem: str
    keytype: str
    tuf_key_id: str
    canonical_key_id: str
    sha256: str
    subject: str
    issuer: str
    common_name: str
    not_before: datetime
    not_after: datetime
    key_description: str
    # The parsed certificate, for the checks that need more than these facts.
    certificate: x509.Certificate = field(repr=False, compare=False)

    def expires_soon(self, now: datetime) -> bool:
        return expires_soon(self.not_after, now)

    def expiry_warning(self, now: datetime) -> str:
        days = (self.not_after - now).days
        return (
            f"This certificate expires on {date_format(self.not_after, 'DATE_FORMAT')} (in "
            f"{days} days), and the delegation ends with it: before then, ask again with the "
            "new client bundle UCP gives you."
        )


def inspect_certificate(data: bytes, *, now: datetime) -> CertificateInfo:
    """Parse and check an upload; raise ValidationError with a message that says what to do."""
    if not data.strip():
        raise ValidationError(
            "The file is empty. Upload cert.pem from your UCP client bundle.", code="empty"
        )
    if holds_private_key(data):
        raise ValidationError(PRIVATE_KEY_MESSAGE, code="private_key")
    if any(marker in data for marker in _ZIP_MARKERS):
        raise ValidationError(
            "This is a zip file (perhaps your whole client bundle). Unpack it and upload only "
            "cert.pem.",
            code="zip",
        )
    certificate = _parse(data)
    try:
        return _inspect(certificate, now=now)
    except (ValueError, TypeError, UnsupportedAlgorithm, InvalidKey):
        # cryptography parses lazily: a key off its curve or a name attribute of the wrong ASN.1
        # type only fails here.
        raise ValidationError(
            "This certificate is malformed: its key or names do not parse. Download a new "
            "client bundle from UCP and upload its cert.pem.",
            code="malformed",
        ) from None


def _inspect(certificate: x509.Certificate, *, now: datetime) -> CertificateInfo:
    _check(certificate, now=now)
    key = PublicKey.from_certificate(certificate)
    der = certificate.public_bytes(serialization.Encoding.DER)
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    subject, issuer = certificate.subject.rfc4514_string(), certificate.issuer.rfc4514_string()
    if max(len(subject), len(issuer)) > MAX_NAME_CHARACTERS:
        raise ValidationError(
            f"This certificate's subject or issuer is over {MAX_NAME_CHARACTERS} characters "
            "long; a UCP client certificate names one user. Upload the cert.pem of your client "
            "bundle.",
            code="absurd_name",
        )
    return CertificateInfo(
        pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        keytype=key.keytype,
        tuf_key_id=key.tuf_id,
        canonical_key_id=key.canonical_id,
        sha256=hashlib.sha256(der).hexdigest(),
        subject=subject,
        issuer=issuer,
        common_name=str(names[0].value) if names else "",
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        key_description=_describe_key(certificate.public_key()),
        certificate=certificate,
    )


def expires_soon(not_after: datetime, now: datetime) -> bool:
    """Still valid, but for less than the warning period."""
    return now < not_after < now + EXPIRY_WARNING


def _parse(data: bytes) -> x509.Certificate:
    not_a_certificate = ValidationError(
        "This is not a certificate. Upload the cert.pem file from your UCP client bundle "
        "(PEM or DER).",
        code="not_a_certificate",
    )
    if b"-----BEGIN" in data:
        # Like notary, only the first PEM block counts.
        block = _first_pem_block(data)
        if block is None:
            raise not_a_certificate
        label, text = block
        if label != b"CERTIFICATE":
            raise ValidationError(
                f"The file starts with a {label.decode('ascii').lower()}, not a certificate. "
                "Upload cert.pem.",
                code="not_a_certificate",
            )
        try:
            return x509.load_pem_x509_certificate(text)
        except (ValueError, x509.InvalidVersion):
            raise not_a_certificate from None
    try:
        return x509.load_der_x509_certificate(data)
    except (ValueError, x509.InvalidVersion):
        raise not_a_certificate from None


def _first_pem_block(data: bytes) -> tuple[bytes, bytes] | None:
    """(label, text) of the first BEGIN that a matching END closes, as notary reads a PEM file.

    One pass over the END lines first, so that a file of many unclosed BEGIN lines costs linear
    time rather than a search to the end of the file from each of them.
    """
    ends: dict[bytes, list[int]] = {}
    for end in _PEM_END.finditer(data):
        ends.setdefault(end.group(1), []).append(end.start())
    for begin in _PEM_BEGIN.finditer(data):
        positions = ends.get(begin.group(1), [])
        index = bisect.bisect_left(positions, begin.end())
        if index < len(positions):
            stop = positions[index] + len(b"-----END -----") + len(begin.group(1))
            return begin.group(1), data[begin.start() : stop]
    return None


def _check(certificate: x509.Certificate, *, now: datetime) -> None:
    not_before = certificate.not_valid_before_utc
    not_after = certificate.not_valid_after_utc
    if not_before > not_after:
        raise ValidationError(
            "This certificate's validity ends before it starts. Download a new client bundle.",
            code="invalid_validity",
        )
    try:
        signature_hash = certificate.signature_hash_algorithm
    except UnsupportedAlgorithm:
        signature_hash = None
    if isinstance(signature_hash, WEAK_HASHES):
        raise ValidationError(
            f"This certificate is signed with {signature_hash.name.upper()}, which Notary "
            "refuses. Download a new client bundle from UCP.",
            code="weak_signature",
        )
    public_key = certificate.public_key()
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MINIMUM_RSA_BITS:
            raise ValidationError(
                f"This certificate has an RSA key of {public_key.key_size} bits; Notary needs "
                f"at least {MINIMUM_RSA_BITS}. Download a new client bundle from UCP.",
                code="weak_key",
            )
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in ACCEPTED_CURVES:
            raise ValidationError(
                f"This certificate uses the curve {public_key.curve.name}; Notary signers need "
                "P-256 or P-384.",
                code="unsupported_key",
            )
    else:
        raise ValidationError(
            "This certificate's key is neither ECDSA nor RSA, so Notary cannot use it.",
            code="unsupported_key",
        )
    if not_after <= now:
        raise ValidationError(
            f"This certificate expired on {date_format(not_after, 'DATETIME_FORMAT')} UTC. "
            "Download a new client bundle from UCP and upload its cert.pem.",
            code="expired",
        )
    if not_before > now + MAX_NOT_BEFORE_SKEW:
        raise ValidationError(
            f"This certificate is not valid until {date_format(not_before, 'DATETIME_FORMAT')} "
            "UTC. Check the clock of the machine that issued it.",
            code="not_yet_valid",
        )


def _describe_key(public_key: object) -> str:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"ECDSA {ACCEPTED_CURVES.get(public_key.curve.name, public_key.curve.name)}"
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA {public_key.key_size}"
    return type(public_key).__name__

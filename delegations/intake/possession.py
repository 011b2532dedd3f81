"""Proof of possession: the requester signs a fresh server challenge with the certificate's key.

The bundle's `key.pem` never reaches the portal, so possession is shown by a signature: the
browser makes it with WebCrypto, or the requester runs a one-line `openssl` command. A challenge
is an HMAC-signed token naming the user, its issue time and a random nonce, so issuing one
writes nothing; it is single-use because the request that uses it stores its nonce under a
unique constraint.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import shlex
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from django.conf import settings
from django.core import signing

from ..exceptions import InvalidInput

if TYPE_CHECKING:
    from django.contrib.auth.models import User


CHALLENGE_PREFIX = "delegation-portal-pop"
_SALT = "delegations.possession"
SIGNATURE_FIELD = "possession_signature"
# A P-384 DER signature is at most 104 bytes and an RSA-4096 one 512; anything longer is noise.
MAX_SIGNATURE_CHARACTERS = 2048
# Web servers' clocks differ a little; a challenge from a node slightly ahead is still fresh.
CLOCK_SKEW_SECONDS = 60
# A challenge shown again with a refused form must leave time to sign and submit.
TIME_TO_SIGN_SECONDS = 5 * 60


@dataclass(frozen=True)
class PossessionProof:
    """What the requester sends: the challenge they were given and their signature over it."""

    challenge: str
    signature: str


def challenge_issue(user: User, *, now: datetime) -> str:
    """A new challenge for `user`, valid for PORTAL_POSSESSION_CHALLENGE_SECONDS from `now`."""
    nonce = secrets.token_urlsafe(16)
    issued = int(now.timestamp())
    return signing.Signer(salt=_SALT).sign(f"{CHALLENGE_PREFIX}.{user.pk}.{issued}.{nonce}")


def challenge_still_valid(challenge: str, user: User, *, now: datetime) -> bool:
    """Whether a posted challenge can be shown again with the form (the user may have signed
    it): it must hold for a few more minutes, or the next submission would fail on it."""
    later = datetime.fromtimestamp(now.timestamp() + TIME_TO_SIGN_SECONDS, tz=now.tzinfo)
    try:
        _nonce_of(challenge, user, now=later)
    except InvalidInput:
        return False
    return True


def openssl_command(challenge: str) -> str:
    """The one line that signs `challenge` with the bundle's key.pem and prints what to paste."""
    return (
        f"printf '%s' {shlex.quote(challenge)} | openssl dgst -sha256 -sign key.pem "
        "| openssl base64 -A"
    )


def possession_verify(
    proof: PossessionProof,
    *,
    public_key: CertificatePublicKeyTypes,
    user: User,
    now: datetime,
) -> str:
    """Check `proof` against the certificate's public key; return the challenge's nonce.

    The caller stores the nonce with the request it creates, which is what makes the challenge
    single-use.
    """
    nonce = _nonce_of(proof.challenge, user, now=now)
    signature = _decode_signature(proof.signature)
    message = proof.challenge.encode("ascii")
    if not _verifies(public_key, signature, message):
        raise InvalidInput(
            "This signature was not made with the private key of this certificate. Sign the "
            "challenge with the key.pem of the same client bundle as the cert.pem you upload.",
            field=SIGNATURE_FIELD,
        )
    return nonce


def _nonce_of(challenge: str, user: User, *, now: datetime) -> str:
    stale = InvalidInput(
        "This page's challenge has expired or is not valid. The form now has a new one: sign it "
        "again (drop your bundle again, or run the new openssl command).",
        field=SIGNATURE_FIELD,
    )
    try:
        value = signing.Signer(salt=_SALT).unsign(challenge)
    except signing.BadSignature:
        raise stale from None
    # The HMAC held, so the value is one this module made: prefix.user.issued.nonce.
    prefix, user_id, issued, nonce = value.split(".", 3)
    if prefix != CHALLENGE_PREFIX or user_id != str(user.pk):
        raise stale
    age = now.timestamp() - int(issued)
    if not -CLOCK_SKEW_SECONDS <= age <= settings.PORTAL_POSSESSION_CHALLENGE_SECONDS:
        raise stale
    return nonce


def _decode_signature(text: str) -> bytes:
    compact = "".join(text.split())
    if not compact:
        raise InvalidInput(
            "Prove that you hold the certificate's private key: drop your client bundle, or run "
            "the openssl command shown and paste its output into Signature.",
            field=SIGNATURE_FIELD,
        )
    if len(compact) > MAX_SIGNATURE_CHARACTERS:
        raise InvalidInput(
            "This is far longer than a signature. Paste only the one line the openssl command "
            "prints.",
            field=SIGNATURE_FIELD,
        )
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(
            "The signature is not base64. Paste exactly the line the openssl command prints.",
            field=SIGNATURE_FIELD,
        ) from None


def _verifies(public_key: CertificatePublicKeyTypes, signature: bytes, message: bytes) -> bool:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return any(
            _ecdsa_verifies(public_key, candidate, message)
            for candidate in _ecdsa_der_candidates(public_key, signature)
        )
    if isinstance(public_key, rsa.RSAPublicKey):
        try:
            public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return True
    return False


def _ecdsa_der_candidates(public_key: ec.EllipticCurvePublicKey, signature: bytes) -> list[bytes]:
    """WebCrypto signs as raw r‖s, openssl as DER; a raw one has exactly twice the field size."""
    size = (public_key.curve.key_size + 7) // 8
    candidates = [signature]
    if len(signature) == 2 * size:
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        candidates.insert(0, encode_dss_signature(r, s))
    return candidates


def _ecdsa_verifies(public_key: ec.EllipticCurvePublicKey, der: bytes, message: bytes) -> bool:
    try:
        public_key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True

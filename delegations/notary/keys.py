"""TUF keys as notary writes them, their two kinds of ID, and signing.

A key in metadata is `{"keytype": T, "keyval": {"private": null, "public": B64}}`. Its *TUF ID*
is the sha256 of that object's canonical JSON; for certificate keys (`*-x509`) the hash covers
the whole certificate PEM. The *canonical ID* that `notary delegation list`, key file names and
`docker trust inspect` show hashes the bare public key instead (protocol note §3).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .canonical import encode_canonical
from .errors import InvalidKey, InvalidMetadata

ECDSA = "ecdsa"
ECDSA_X509 = "ecdsa-x509"
RSA = "rsa"
RSA_X509 = "rsa-x509"
ED25519 = "ed25519"

X509_KEYTYPES = {ECDSA_X509: ECDSA, RSA_X509: RSA}

METHOD_ECDSA = "ecdsa"
METHOD_RSAPSS = "rsapss"
METHOD_EDDSA = "eddsa"
METHOD_RSA_PKCS1V15 = "rsapkcs1v15"  # verified, never produced (as in notary)

# notary's verifier demands exactly this PSS salt length (the hash length); MAX_LENGTH fails.
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
_RSA_VERIFY_PADDING = {METHOD_RSAPSS: _PSS, METHOD_RSA_PKCS1V15: padding.PKCS1v15()}
_MINIMUM_RSA_BITS = 2048

# Repository keys the portal can make: name -> (kind, size in bits).
ECDSA_P256 = "ecdsa-p256"
KEY_ALGORITHMS = {
    ECDSA_P256: (ECDSA, 256),
    "ecdsa-p384": (ECDSA, 384),
    "rsa-2048": (RSA, 2048),
    "rsa-3072": (RSA, 3072),
    "rsa-4096": (RSA, 4096),
}
ROOT_CERTIFICATE_LIFETIME = timedelta(days=3652)
# `docker trust inspect` and `notary key list` show key IDs cut to this many characters.
SHORT_KEY_ID_LENGTH = 12


def short_key_id(key_id: str) -> str:
    """A key ID in the short form Docker's tools show: enough to tell keys apart."""
    return key_id[:SHORT_KEY_ID_LENGTH]


@dataclass(frozen=True)
class Signature:
    keyid: str
    method: str
    sig: bytes

    @classmethod
    def from_dict(cls, data: object) -> Signature:
        if not isinstance(data, dict):
            raise InvalidMetadata("a signature that is not an object")
        keyid, method, sig = data.get("keyid"), data.get("method"), data.get("sig")
        if not isinstance(keyid, str) or not isinstance(method, str) or not isinstance(sig, str):
            raise InvalidMetadata("a signature without keyid, method and sig")
        # Go lower-cases the method when it parses a signature.
        return cls(keyid=keyid, method=method.lower(), sig=decode_base64(sig, "signature"))

    def to_dict(self) -> dict[str, str]:
        return {
            "keyid": self.keyid,
            "method": self.method,
            "sig": base64.b64encode(self.sig).decode("ascii"),
        }


@dataclass(frozen=True)
class PublicKey:
    """A public key as it appears in root.json or in a targets file's delegations."""

    keytype: str
    public: str

    @classmethod
    def from_dict(cls, data: object) -> PublicKey:
        if not isinstance(data, dict) or not isinstance(data.get("keyval"), dict):
            raise InvalidMetadata("a key that is not {keytype, keyval}")
        keytype, keyval = data.get("keytype"), data["keyval"]
        if not isinstance(keytype, str) or not isinstance(keyval.get("public"), str):
            raise InvalidMetadata("a key without keytype or public value")
        if keyval.get("private") is not None:
            raise InvalidMetadata("published metadata holds private key material")
        # Go stores the value as bytes and writes it back as standard base64.
        raw = decode_base64(keyval["public"], "public key")
        return cls(keytype=keytype, public=base64.b64encode(raw).decode("ascii"))

    @classmethod
    def from_certificate(cls, certificate: x509.Certificate) -> PublicKey:
        """The key `notary delegation add cert.pem` writes: the certificate's normalised PEM."""
        public_key = certificate.public_key()
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            keytype = ECDSA_X509
        elif isinstance(public_key, rsa.RSAPublicKey):
            keytype = RSA_X509
        else:
            raise InvalidKey("notary accepts only ECDSA and RSA certificates")
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        return cls(keytype=keytype, public=base64.b64encode(pem).decode("ascii"))

    @classmethod
    def from_public_key(cls, public_key: object) -> PublicKey:
        """The bare `ecdsa` or `rsa` key notary writes for a public key (DER SPKI)."""
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            keytype = ECDSA
        elif isinstance(public_key, rsa.RSAPublicKey):
            keytype = RSA
        else:
            raise InvalidKey("notary signs with ECDSA and RSA keys only")
        spki = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(keytype=keytype, public=base64.b64encode(spki).decode("ascii"))

    def to_dict(self) -> dict[str, object]:
        return {"keytype": self.keytype, "keyval": {"private": None, "public": self.public}}

    @cached_property
    def tuf_id(self) -> str:
        return hashlib.sha256(encode_canonical(self.to_dict())).hexdigest()

    @cached_property
    def canonical_id(self) -> str:
        if self.keytype not in X509_KEYTYPES:
            return self.tuf_id
        return PublicKey.from_public_key(self.certificate().public_key()).tuf_id

    @property
    def short_id(self) -> str:
        return short_key_id(self.canonical_id)

    def certificate(self) -> x509.Certificate:
        if self.keytype not in X509_KEYTYPES:
            raise InvalidKey(f"a {self.keytype} key holds no certificate")
        try:
            return x509.load_pem_x509_certificate(base64.b64decode(self.public))
        except ValueError as error:
            raise InvalidKey(f"the key's certificate does not parse: {error}") from None

    def verifies(self, signature: Signature, message: bytes) -> bool:
        """Whether `signature` is a valid signature of `message` by this key, as notary checks."""
        try:
            return self._verify(signature, message)
        except (InvalidSignature, InvalidKey, ValueError):
            return False

    def _verify(self, signature: Signature, message: bytes) -> bool:
        if self.keytype == ED25519:
            if signature.method != METHOD_EDDSA:
                return False
            key = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(self.public))
            key.verify(signature.sig, message)
            return True
        public_key = self._crypto_public_key()
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            size = (public_key.curve.key_size + 7) // 8
            if signature.method != METHOD_ECDSA or len(signature.sig) != 2 * size:
                return False
            r = int.from_bytes(signature.sig[:size], "big")
            s = int.from_bytes(signature.sig[size:], "big")
            public_key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
            return True
        if isinstance(public_key, rsa.RSAPublicKey):
            scheme = _RSA_VERIFY_PADDING.get(signature.method)
            if scheme is None or public_key.key_size < _MINIMUM_RSA_BITS:
                return False
            public_key.verify(signature.sig, message, scheme, hashes.SHA256())
            return True
        return False

    def _crypto_public_key(self) -> object:
        if self.keytype in X509_KEYTYPES:
            return self.certificate().public_key()
        if self.keytype in (ECDSA, RSA):
            return serialization.load_der_public_key(base64.b64decode(self.public))
        raise InvalidKey(f"unsupported key type {self.keytype!r}")


def canonical_id_or_none(key: PublicKey) -> str | None:
    """A key's canonical ID, or None for a certificate that does not parse (which then matches
    no key)."""
    try:
        return key.canonical_id
    except InvalidKey:
        return None


def certificate_common_name(key: PublicKey) -> str:
    """The CN of a certificate key, which for a root key must be the repository's GUN."""
    names = key.certificate().subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


class SigningKey:
    """A private key the portal signs metadata with, with the public key it publishes."""

    def __init__(
        self,
        private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
        public: PublicKey,
    ) -> None:
        self._private_key = private_key
        self.public = public

    @classmethod
    def generate(cls, algorithm: str = ECDSA_P256) -> SigningKey:
        """A new key published as a bare `ecdsa` or `rsa` key, like notary's targets keys.

        `algorithm` is one of KEY_ALGORITHMS; notary itself makes ECDSA P-256 keys.
        """
        if algorithm not in KEY_ALGORITHMS:
            raise InvalidKey(
                f"unknown key algorithm {algorithm!r}; use one of {', '.join(KEY_ALGORITHMS)}"
            )
        kind, size = KEY_ALGORITHMS[algorithm]
        private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
        if kind == ECDSA:
            private_key = ec.generate_private_key(ec.SECP384R1() if size == 384 else ec.SECP256R1())
        else:
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=size)
        return cls(private_key, PublicKey.from_public_key(private_key.public_key()))

    @classmethod
    def generate_root(cls, gun: str, *, now: datetime) -> SigningKey:
        """A new root key: ECDSA P-256 behind a self-signed certificate whose CN is the GUN."""
        private_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, gun)])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + ROOT_CERTIFICATE_LIFETIME)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_encipherment=True,
                    content_commitment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(private_key, hashes.SHA256())
        )
        return cls(private_key, PublicKey.from_certificate(certificate))

    @classmethod
    def from_private_bytes(cls, der: bytes, public: PublicKey) -> SigningKey:
        """Load a PKCS#8 DER private key and check that it belongs to `public`."""
        try:
            private_key = serialization.load_der_private_key(der, password=None)
        except (ValueError, TypeError) as error:
            raise InvalidKey(f"the private key does not load: {error}") from None
        if not isinstance(private_key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
            raise InvalidKey("only ECDSA and RSA signing keys are supported")
        signing_key = cls(private_key, public)
        probe = b"key pairing check"
        if not public.verifies(signing_key.sign(probe), probe):
            raise InvalidKey("the private key does not match its public key")
        return signing_key

    def private_bytes(self) -> bytes:
        """PKCS#8 DER, unencrypted: only ever handed to the key store's envelope encryption."""
        return self._private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sign(self, message: bytes) -> Signature:
        if isinstance(self._private_key, ec.EllipticCurvePrivateKey):
            der = self._private_key.sign(message, ec.ECDSA(hashes.SHA256()))
            r, s = decode_dss_signature(der)
            size = (self._private_key.curve.key_size + 7) // 8
            raw = r.to_bytes(size, "big") + s.to_bytes(size, "big")
            return Signature(keyid=self.public.tuf_id, method=METHOD_ECDSA, sig=raw)
        raw = self._private_key.sign(message, _PSS, hashes.SHA256())
        return Signature(keyid=self.public.tuf_id, method=METHOD_RSAPSS, sig=raw)


def decode_base64(text: str, what: str) -> bytes:
    """Decode standard base64 strictly, as Go does, or raise InvalidMetadata."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidMetadata(f"the {what} is not standard base64") from None

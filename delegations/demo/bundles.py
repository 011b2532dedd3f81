"""UCP-shaped client bundles from a local CA, for the embedded demo and the tests.

A real UCP hands each user a zip holding `cert.pem` (the client certificate, CN = username),
`key.pem` (its private key, also the user's UCP login credential), `ca.pem` (UCP's client CA),
`cert.pub` (the public key) and `env.sh`. The demo makes the same shape so a newcomer can drop a
bundle on the request form exactly as they would at work.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_LIFETIME = timedelta(days=5 * 365)
CLIENT_LIFETIME = timedelta(days=365)
# A demo bundle this close to its end is issued again, before the portal warns about it.
REISSUE_BEFORE = timedelta(days=200)
# A clock a little behind the portal's still accepts a certificate issued just now.
BACKDATE = timedelta(hours=1)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class ClientCA:
    """A client certificate authority like the one UCP runs."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, *, now: datetime, common_name: str = "UCP Client Root CA") -> ClientCA:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    @classmethod
    def load_or_create(cls, directory: Path, *, now: datetime) -> tuple[ClientCA, bool]:
        """The CA kept in `directory` (`ca.pem`, `ca-key.pem`), made first if there is none."""
        cert_path, key_path = directory / "ca.pem", directory / "ca-key.pem"
        if cert_path.exists() and key_path.exists():
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if (
                isinstance(key, ec.EllipticCurvePrivateKey)
                and certificate.not_valid_after_utc > now
            ):
                return cls(certificate, key), False
        ca = cls.create(now=now)
        directory.mkdir(parents=True, exist_ok=True)
        _write_private(key_path, _pem_private_key(ca.key))
        cert_path.write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
        return ca, True

    def issue(
        self,
        username: str,
        *,
        now: datetime,
        key: PrivateKey | None = None,
        lifetime: timedelta = CLIENT_LIFETIME,
    ) -> tuple[x509.Certificate, PrivateKey]:
        """A client certificate for `username` (its CN), with a new P-256 key unless given one."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, username)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )
        return certificate, key


def bundle_zip(
    certificate: x509.Certificate,
    key: PrivateKey,
    ca_certificate: x509.Certificate,
    *,
    ucp_host: str = "ucp.example.org",
) -> bytes:
    """The zip UCP's "New client bundle" downloads, with the files a member's tools expect."""
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    env_sh = (
        '# Run `eval "$(<env.sh)"` in this folder to talk to UCP with this bundle.\n'
        "export DOCKER_TLS_VERIFY=1\n"
        "export COMPOSE_TLS_VERSION=TLSv1_2\n"
        'export DOCKER_CERT_PATH="$PWD"\n'
        f"export DOCKER_HOST=tcp://{ucp_host}:443\n"
    )
    files = {
        "ca.pem": ca_certificate.public_bytes(serialization.Encoding.PEM),
        "cert.pem": certificate.public_bytes(serialization.Encoding.PEM),
        "cert.pub": public_pem,
        "env.sh": env_sh.encode("ascii"),
        "key.pem": _pem_private_key(key),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def write_demo_bundles(
    directory: Path, ca: ClientCA, usernames: list[str], *, now: datetime
) -> list[Path]:
    """`ucp-bundle-<user>.zip` per user in `directory` (owner-only). A bundle already there is
    kept, so a member's copy stays valid, unless another CA issued it or it is near its end."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for username in usernames:
        path = directory / f"ucp-bundle-{username}.zip"
        if not _still_good(path, ca, now=now):
            certificate, key = ca.issue(username, now=now)
            _write_private(path, bundle_zip(certificate, key, ca.certificate))
        paths.append(path)
    return paths


def _still_good(path: Path, ca: ClientCA, *, now: datetime) -> bool:
    try:
        with zipfile.ZipFile(path) as bundle:
            ca_pem, cert_pem = bundle.read("ca.pem"), bundle.read("cert.pem")
        certificate = x509.load_pem_x509_certificate(cert_pem)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return False
    return (
        ca_pem == ca.certificate.public_bytes(serialization.Encoding.PEM)
        and certificate.not_valid_after_utc > now + REISSUE_BEFORE
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _pem_private_key(key: PrivateKey) -> bytes:
    # UCP writes EC keys as SEC1 ("EC PRIVATE KEY") and RSA ones as PKCS#1, OpenSSL's
    # traditional forms.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, content: bytes) -> None:
    """Write a file that holds a private key readable by its owner only, from the first byte."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)

"""Test data made at run time: member certificates with their keys, users, teams, owners."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from delegations import services
from delegations.certificates import inspect_certificate

PASSWORD = "test-password"


@dataclass
class Bundle:
    """What a UCP client bundle gives a member: the certificate and its private key."""

    cert_pem: bytes
    key_pem: bytes
    certificate: x509.Certificate


def make_bundle(
    common_name: str = "bob",
    *,
    key: str = "ec",
    bits: int = 2048,
    curve: ec.EllipticCurve | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    same_key_as: Bundle | None = None,
) -> Bundle:
    """A UCP-like bundle; `same_key_as` makes a new certificate for an existing key pair."""
    now = timezone.now()
    if same_key_as is not None:
        private_key = serialization.load_pem_private_key(same_key_as.key_pem, password=None)
        key = "ec" if isinstance(private_key, ec.EllipticCurvePrivateKey) else "rsa"
    elif key == "ec":
        private_key = ec.generate_private_key(curve or ec.SECP256R1())
    else:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "ucp"),
        ]
    )
    ca_key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "UCP Client Root CA")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(hours=1))
        .not_valid_after(not_after or now + timedelta(days=365))
        .sign(ca_key, hashes.SHA256())
    )
    return Bundle(
        cert_pem=certificate.public_bytes(serialization.Encoding.PEM),
        key_pem=private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL
            if key == "ec"
            else serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        certificate=certificate,
    )


def make_sha1_certificate(tmp_path: Path) -> bytes:
    """A SHA-1 signed certificate. cryptography refuses to make one, so openssl does."""
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-sha1", "-subj", "/CN=bob", "-days", "30", "-nodes",
            "-keyout", str(tmp_path / "sha1.key"), "-out", str(tmp_path / "sha1.pem"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return (tmp_path / "sha1.pem").read_bytes()


def make_user(username: str, *, teams: tuple[str, ...] = (), owns: tuple[str, ...] = ()):
    """A user with a password, in the given teams and owners groups."""
    user = get_user_model().objects.create_user(
        username=username, email=f"{username}@example.org", password=PASSWORD
    )
    for team in teams:
        user.groups.add(
            Group.objects.get_or_create(name=settings.PORTAL_TEAM_GROUP_PREFIX + team)[0]
        )
    for group in owns:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


def submission(repository, requester, *, team="qa", bundle: Bundle | None = None) -> dict:
    """The arguments of `services.request_submit` for a member's request with a new bundle."""
    bundle = bundle or make_bundle(requester.get_username())
    return {
        "requester": requester,
        "repository": repository,
        "team": team,
        "certificate": inspect_certificate(bundle.cert_pem, now=timezone.now()),
        "reason": "I sign the <nginx> & friends images",
    }


def submit_request(repository, requester, *, team="qa", bundle: Bundle | None = None):
    return services.request_submit(**submission(repository, requester, team=team, bundle=bundle))

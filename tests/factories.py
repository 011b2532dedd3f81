"""Test data made at run time: member certificates with their keys, users, teams, owners."""

from __future__ import annotations

import base64
import html
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from delegations import services
from delegations.demo.bundles import ClientCA, bundle_zip
from delegations.intake.certificates import inspect_certificate
from delegations.intake.possession import PossessionProof, challenge_issue

PASSWORD = "test-password"


@cache
def test_ca() -> ClientCA:
    """The UCP client CA of this test run: every `make_bundle` certificate is issued by it."""
    return ClientCA.create(now=timezone.now(), common_name="Test UCP Client Root CA")


@dataclass
class Bundle:
    """What a UCP client bundle gives a member: the certificate and its private key."""

    cert_pem: bytes
    key_pem: bytes
    certificate: x509.Certificate
    ca: ClientCA

    @property
    def private_key(self):
        return serialization.load_pem_private_key(self.key_pem, password=None)

    def zip(self) -> bytes:
        """The bundle as UCP downloads it: cert.pem, key.pem, ca.pem, cert.pub, env.sh."""
        return bundle_zip(self.certificate, self.private_key, self.ca.certificate)

    def sign(self, message: bytes) -> bytes:
        """What `openssl dgst -sha256 -sign key.pem` prints for `message` (before base64)."""
        key = self.private_key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(message, ec.ECDSA(hashes.SHA256()))
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())

    def prove(self, user, *, challenge: str | None = None, now=None) -> PossessionProof:
        """A proof of possession of this bundle's key for `user`, on a new challenge by default."""
        challenge = challenge or challenge_issue(user, now=now or timezone.now())
        signature = base64.b64encode(self.sign(challenge.encode("ascii"))).decode("ascii")
        return PossessionProof(challenge=challenge, signature=signature)


def make_bundle(
    common_name: str = "bob",
    *,
    key: str = "ec",
    bits: int = 2048,
    curve: ec.EllipticCurve | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    same_key_as: Bundle | None = None,
    ca: ClientCA | None = None,
    subject: x509.Name | None = None,
) -> Bundle:
    """A UCP-like bundle issued by `ca` (the run's test CA by default); `same_key_as` makes a new
    certificate for an existing key pair."""
    ca = ca or test_ca()
    now = timezone.now()
    if same_key_as is not None:
        private_key = serialization.load_pem_private_key(same_key_as.key_pem, password=None)
        key = "ec" if isinstance(private_key, ec.EllipticCurvePrivateKey) else "rsa"
    elif key == "ec":
        private_key = ec.generate_private_key(curve or ec.SECP256R1())
    else:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = subject or x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "ucp"),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.certificate.subject)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(hours=1))
        .not_valid_after(not_after or now + timedelta(days=365))
        .sign(ca.key, hashes.SHA256())
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
        ca=ca,
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
        "proof": bundle.prove(requester),
    }


def submit_request(repository, requester, *, team="qa", bundle: Bundle | None = None):
    return services.request_submit(**submission(repository, requester, team=team, bundle=bundle))


def signed_form_data(client, repository, bundle: Bundle, *, team="qa", reason="nginx releases"):
    """The request form as a member fills it in: cert.pem, and the page's challenge signed with
    the bundle's key (what the page's openssl command prints)."""
    page = client.get(reverse("delegations:request_create")).content.decode()
    challenge = html.unescape(re.search(r'name="challenge" value="([^"]+)"', page).group(1))
    return {
        "repository": repository.pk,
        "team": team,
        "reason": reason,
        "certificate": SimpleUploadedFile("cert.pem", bundle.cert_pem, "application/x-pem-file"),
        "challenge": challenge,
        "possession_signature": base64.b64encode(bundle.sign(challenge.encode("ascii"))).decode(),
    }

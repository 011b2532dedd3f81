"""The demo's UCP: a client CA and bundles shaped like the zip UCP downloads."""

from __future__ import annotations

import stat
import zipfile

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.utils import timezone

from delegations.demo.bundles import ClientCA, write_demo_bundles
from delegations.intake.identity import identity_check
from tests.factories import make_user


def test_demo_bundles_hold_what_ucp_puts_in_a_bundle_and_chain_to_the_demo_ca(
    db, tmp_path, settings
):
    now = timezone.now()
    ca, created = ClientCA.load_or_create(tmp_path / "ca", now=now)
    assert created
    settings.PORTAL_UCP_CA_BUNDLE = str(tmp_path / "ca" / "ca.pem")
    [path] = write_demo_bundles(tmp_path, ca, ["bob"], now=now)

    assert path.name == "ucp-bundle-bob.zip"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca" / "ca-key.pem").stat().st_mode) == 0o600
    with zipfile.ZipFile(path) as bundle:
        assert sorted(bundle.namelist()) == ["ca.pem", "cert.pem", "cert.pub", "env.sh", "key.pem"]
        certificate = x509.load_pem_x509_certificate(bundle.read("cert.pem"))
        key = serialization.load_pem_private_key(bundle.read("key.pem"), password=None)
        assert bundle.read("key.pem").startswith(b"-----BEGIN EC ")  # SEC1, as UCP writes it
        assert bundle.read("ca.pem") == ca.certificate.public_bytes(serialization.Encoding.PEM)
        assert b"DOCKER_CERT_PATH" in bundle.read("env.sh")
    assert certificate.public_key() == key.public_key()
    identity_check(certificate, make_user("bob"), now=now)


def test_a_second_run_keeps_the_ca_and_the_bundles_a_new_ca_replaces_them(tmp_path):
    now = timezone.now()
    ca, _ = ClientCA.load_or_create(tmp_path / "ca", now=now)
    [path] = write_demo_bundles(tmp_path, ca, ["bob"], now=now)
    first = path.read_bytes()
    again, created = ClientCA.load_or_create(tmp_path / "ca", now=now)
    assert not created
    assert again.certificate == ca.certificate
    write_demo_bundles(tmp_path, again, ["bob"], now=now)
    assert path.read_bytes() == first

    write_demo_bundles(tmp_path, ClientCA.create(now=now), ["bob"], now=now)
    assert path.read_bytes() != first

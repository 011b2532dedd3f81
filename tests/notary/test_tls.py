"""The client against notary-server on https, with a CA made for the test session."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from delegations.notary import (
    RELEASES,
    AddKey,
    NotaryClient,
    PermanentNotaryError,
    PublicKey,
    SigningKey,
    TransientNotaryError,
    Transport,
    team_role_name,
)
from delegations.notary.errors import TLSVerificationFailed
from stack.processes import LOOPBACK, free_port
from tests.conftest import NotaryCLI
from tests.factories import make_bundle
from tests.pki import make_ca


def now() -> datetime:
    return datetime.now(UTC)


def new_gun() -> str:
    return f"dtr.example.org/t{uuid.uuid4().hex[:10]}/nginx"


def test_the_client_works_end_to_end_over_tls_with_the_ca_bundle(tls_notary, tmp_path):
    gun = new_gun()
    client = NotaryClient(Transport(tls_notary.url, gun, verify=str(tls_notary.ca_path)))
    targets_key = SigningKey.generate()
    client.initialise(
        root_key=SigningKey.generate_root(gun, now=now()), targets_key=targets_key, now=now()
    )
    key = PublicKey.from_certificate(make_bundle("bob").certificate)
    client.publish_change(
        AddKey(key, (RELEASES, team_role_name("qa"))), targets_key=targets_key, now=now()
    )
    assert client.fetch(now=now()).targets.signed.version == 2

    cli = NotaryCLI(tls_notary.url, tmp_path, options=("--tlscacert", str(tls_notary.ca_path)))
    listed = cli.delegations(gun)
    assert set(listed) == {RELEASES, team_role_name("qa")}
    assert listed[RELEASES]["keys"] == [key.canonical_id]


def test_a_certificate_the_system_store_does_not_trust_is_a_configuration_error(tls_notary):
    with pytest.raises(TLSVerificationFailed) as raised:
        Transport(tls_notary.url, new_gun()).get("root.json")
    assert isinstance(raised.value, PermanentNotaryError)
    assert "PORTAL_NOTARY_CA_BUNDLE" in str(raised.value)


def test_another_ca_or_an_unusable_bundle_is_a_configuration_error(tls_notary, tmp_path):
    other_ca, _ = make_ca("some other CA").write(tmp_path, "other-ca")
    not_pem = tmp_path / "not-pem.pem"
    not_pem.write_text("not a certificate\n")
    for bundle in (other_ca, not_pem, tmp_path / "missing.pem"):
        with pytest.raises(TLSVerificationFailed, match="PORTAL_NOTARY_CA_BUNDLE"):
            Transport(tls_notary.url, new_gun(), verify=str(bundle)).get("root.json")


def test_a_server_that_is_not_there_is_still_transient(tls_notary):
    closed = f"https://{LOOPBACK}:{free_port()}"
    with pytest.raises(TransientNotaryError):
        Transport(closed, new_gun(), verify=str(tls_notary.ca_path)).get("root.json")

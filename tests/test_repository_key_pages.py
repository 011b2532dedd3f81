"""Owners take over a repository initialised with the notary CLI from its page: they import its
targets key and pin its root certificate. Bad input is refused with the reason and changes
nothing; other people get 404."""

from __future__ import annotations

import base64
import socket

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from django.views.debug import SafeExceptionReporterFilter

from delegations import trust
from delegations.models import AuditEvent, KeyRole, Repository, RepositoryKey
from tests.conftest import NOTARY_PASSPHRASE
from tests.factories import make_user
from tests.test_key_import import CLIRepository, cli_initialised

pytestmark = [pytest.mark.django_db, pytest.mark.services]


@pytest.fixture
def from_cli(notary_cli) -> CLIRepository:
    return cli_initialised(notary_cli, server_managed_snapshot=True)


@pytest.fixture
def owner(from_cli):
    return make_user("olivia", teams=("it-ops",), owns=(from_cli.repository.owners_group,))


def import_page(client, repository, key_file: bytes, passphrase: str):
    return client.post(
        reverse("delegations:key_import", args=[repository.pk]),
        {
            "role": KeyRole.TARGETS,
            "key_file": SimpleUploadedFile("targets.key", key_file),
            "passphrase": passphrase,
        },
        follow=True,
    )


def served_root_certificate(repository: Repository) -> str:
    state = trust.probe(repository.notary_url, repository.gun, now=timezone.now())
    assert state is not None
    (root_key,) = state.root.signed.role_keys("root")
    return base64.b64decode(root_key.public).decode()


def test_an_owner_imports_the_targets_key_from_the_page(client, from_cli, owner, notary_cli):
    client.force_login(owner)
    page = client.get(reverse("delegations:repository_detail", args=[from_cli.repository.pk]))
    assert "Import the targets key" in page.text

    response = import_page(
        client, from_cli.repository, from_cli.key_file("targets").read_bytes(), NOTARY_PASSPHRASE
    )

    assert f"Imported the targets key {from_cli.key_file('targets').stem}" in response.text
    assert NOTARY_PASSPHRASE not in response.text
    stored = RepositoryKey.objects.get(repository=from_cli.repository, role=KeyRole.TARGETS)
    assert stored.canonical_key_id == from_cli.key_file("targets").stem
    event = AuditEvent.objects.get(action="repository.key_imported")
    assert event.actor == owner
    assert "Import the targets key" not in response.text  # done: the section is gone


def test_error_reports_of_the_import_leave_out_the_passphrase(client, from_cli, owner):
    client.force_login(owner)
    posted = client.post(
        reverse("delegations:key_import", args=[from_cli.repository.pk]),
        {
            "role": KeyRole.TARGETS,
            "key_file": SimpleUploadedFile("targets.key", b"not a key"),
            "passphrase": NOTARY_PASSPHRASE,
        },
    )
    reported = SafeExceptionReporterFilter().get_post_parameters(posted.wsgi_request)
    assert reported["passphrase"] != NOTARY_PASSPHRASE


def test_a_wrong_passphrase_or_another_repositorys_key_is_refused(
    client, from_cli, owner, notary_cli
):
    other = cli_initialised(notary_cli, server_managed_snapshot=True)
    client.force_login(owner)
    key_file = from_cli.key_file("targets").read_bytes()

    wrong = import_page(client, from_cli.repository, key_file, "not the passphrase")
    assert "Nothing was imported: The passphrase does not open the key file" in wrong.text

    foreign = import_page(
        client, from_cli.repository, other.key_file("targets").read_bytes(), NOTARY_PASSPHRASE
    )
    assert "Nothing was imported" in foreign.text
    assert f"is not the targets key of {from_cli.gun}" in foreign.text
    assert f"The key file says it belongs to {other.gun}" not in foreign.text  # refused first

    assert not RepositoryKey.objects.filter(repository=from_cli.repository).exists()
    assert not AuditEvent.objects.filter(action="repository.key_imported").exists()


def test_an_owner_pins_the_root_certificate_and_a_wrong_one_is_refused(
    client, from_cli, owner, notary_cli
):
    client.force_login(owner)
    pin = reverse("delegations:root_pin", args=[from_cli.repository.pk])
    impostor = cli_initialised(notary_cli, server_managed_snapshot=True)

    # Another repository's root: its CN names that repository.
    refused = client.post(
        pin, {"root_certificate_pem": served_root_certificate(impostor.repository)}, follow=True
    )
    assert "Nothing was pinned" in refused.text
    assert Repository.objects.get(pk=from_cli.repository.pk).root_certificate_pem == ""

    pinned = client.post(
        pin, {"root_certificate_pem": served_root_certificate(from_cli.repository)}, follow=True
    )
    assert "Root certificate pinned" in pinned.text
    repository = Repository.objects.get(pk=from_cli.repository.pk)
    assert repository.root_certificate_pem.startswith("-----BEGIN CERTIFICATE-----")
    assert trust.fetch(repository, now=timezone.now()).root.signed.version == 2


def test_other_people_cannot_reach_a_repositorys_key_actions(client, from_cli, notary_cli):
    for outsider in (
        make_user("mallory", teams=("qa",)),
        make_user("other-owner", owns=("owners:somewhere/else",)),
    ):
        client.force_login(outsider)
        for name, data in (
            ("key_import", {"role": "targets"}),
            ("root_pin", {"root_certificate_pem": "x"}),
            ("root_key_request", {"passphrase": "x" * 12, "passphrase_again": "x" * 12}),
            ("root_key_confirm", {"stored": "yes"}),
        ):
            url = reverse(f"delegations:{name}", args=[from_cli.repository.pk])
            response = client.post(url, data)
            assert response.status_code == 404, name
    assert not RepositoryKey.objects.filter(repository=from_cli.repository).exists()


def test_registering_against_a_notary_server_that_does_not_answer_saves_nothing(client):
    admin = get_user_model().objects.create_superuser("root-admin", password="x")
    client.force_login(admin)
    with socket.socket() as closed:  # a loopback port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    page = client.post(
        reverse("delegations:repository_register"),
        {
            "dtr_host": "dtr.example.org",
            "namespace": "dev",
            "name": "unreachable",
            "notary_url": f"http://127.0.0.1:{port}",
            "owners_group": "owners:dev/unreachable",
            "approvals_required": 1,
        },
    )
    assert page.status_code == 400
    assert f"The Notary server at http://127.0.0.1:{port} does not answer" in page.text
    assert not Repository.objects.exists()

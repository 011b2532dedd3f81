"""Taking over a repository whose trust the notary CLI set up: its owner's targets key is
imported (service, management command, admin action), and the portal then delegates for it."""

from __future__ import annotations

import base64
import io
import json
import re
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.views.debug import SafeExceptionReporterFilter

from delegations import services, trust
from delegations.exceptions import InvalidInput, TrustSetupError
from delegations.models import AuditEvent, KeyRole, Repository, RepositoryKey
from delegations.notary import load_key_file
from tests.conftest import NOTARY_PASSPHRASE, NotaryCLI
from tests.factories import make_bundle

pytestmark = [pytest.mark.django_db, pytest.mark.services]

ROLES = ["targets/releases", "targets/qa"]


@dataclass
class CLIRepository:
    """A repository the notary CLI initialised, registered in the portal without its keys."""

    repository: Repository
    private_dir: Path

    @property
    def gun(self) -> str:
        return self.repository.gun

    def key_file(self, role: str) -> Path:
        (path,) = [
            path
            for path in self.private_dir.glob("*.key")
            if f"role: {role}\n" in path.read_text() and f"gun: {self.gun}\n" in path.read_text()
        ]
        return path


def cli_initialised(notary_cli: NotaryCLI, *, server_managed_snapshot: bool) -> CLIRepository:
    namespace = f"cli{uuid.uuid4().hex[:8]}"
    gun = f"dtr.example.org/{namespace}/app"
    notary_cli.run("init", "-p", gun)
    if server_managed_snapshot:
        notary_cli.run("key", "rotate", gun, "snapshot", "-r")
    repository = services.repository_register(
        dtr_host="dtr.example.org",
        namespace=namespace,
        name="app",
        notary_url=notary_cli.server_url,
        owners_group=f"owners:{namespace}/app",
    )
    return CLIRepository(repository, notary_cli.home / "owner" / "private")


@pytest.fixture
def from_cli(notary_cli) -> CLIRepository:
    return cli_initialised(notary_cli, server_managed_snapshot=True)


def import_targets_key(from_cli: CLIRepository, **options) -> RepositoryKey:
    return services.repository_key_import(
        repository_id=from_cli.repository.pk,
        role=KeyRole.TARGETS,
        key_file=from_cli.key_file("targets").read_bytes(),
        passphrase=NOTARY_PASSPHRASE,
        **options,
    )


def test_an_imported_targets_key_lets_the_portal_delegate(from_cli, notary_cli):
    assert from_cli.repository.trust_initialised_at is None
    now = timezone.now()

    stored = import_targets_key(from_cli, now=now)

    assert stored.role == KeyRole.TARGETS
    assert stored.canonical_key_id == from_cli.key_file("targets").stem
    repository = Repository.objects.get(pk=from_cli.repository.pk)
    assert repository.trust_initialised_at == now
    event = AuditEvent.objects.get(action="repository.key_imported")
    assert event.repository == repository
    assert event.details == {
        "role": "targets",
        "canonical_key_id": stored.canonical_key_id,
        "tuf_key_id": stored.tuf_key_id,
        "replaced_canonical_key_id": None,
        "root_version": 2,  # the snapshot key rotation re-signed root
    }

    bundle = make_bundle("bob")
    result = trust.publish(repository, trust.adding(bundle.cert_pem.decode(), ROLES), now=now)

    assert result.changed
    listed = notary_cli.delegations(from_cli.gun)
    bob = trust.certificate_key(bundle.cert_pem.decode()).canonical_id
    assert {role: listed[role]["keys"] for role in ROLES} == {role: [bob] for role in ROLES}
    # The delegate can sign into the roles the portal published.
    signed = notary_cli.sign(
        from_cli.gun, person="bob", key_pem=bundle.key_pem, tag="v1", roles=[ROLES[0]]
    )
    assert re.search(r"^v1\s", signed, re.MULTILINE)


def test_a_key_of_another_repository_is_refused_and_nothing_is_stored(from_cli, notary_cli):
    other = cli_initialised(notary_cli, server_managed_snapshot=True)
    foreign = other.key_file("targets")
    expected = from_cli.key_file("targets").stem

    with pytest.raises(TrustSetupError) as refused:
        services.repository_key_import(
            repository_id=from_cli.repository.pk,
            role=KeyRole.TARGETS,
            key_file=foreign.read_bytes(),
            passphrase=NOTARY_PASSPHRASE,
        )

    assert refused.value.message == (
        f"The key {foreign.stem} is not the targets key of {from_cli.gun}: its root.json names "
        f"{expected} for targets."
    )
    assert not RepositoryKey.objects.exists()
    assert not AuditEvent.objects.filter(action="repository.key_imported").exists()
    assert Repository.objects.get(pk=from_cli.repository.pk).trust_initialised_at is None


def test_importing_again_replaces_the_key_and_says_which_it_replaced(from_cli):
    first = import_targets_key(from_cli)
    initialised_at = Repository.objects.get(pk=from_cli.repository.pk).trust_initialised_at

    second = import_targets_key(from_cli)

    assert list(RepositoryKey.objects.values_list("pk", flat=True)) == [second.pk]
    assert second.canonical_key_id == first.canonical_key_id
    events = AuditEvent.objects.filter(action="repository.key_imported").order_by("pk")
    assert events.last().details["replaced_canonical_key_id"] == first.canonical_key_id
    assert Repository.objects.get(pk=from_cli.repository.pk).trust_initialised_at == initialised_at


def test_a_client_managed_snapshot_key_imports_without_marking_trust_initialised(notary_cli):
    from_cli = cli_initialised(notary_cli, server_managed_snapshot=False)

    stored = services.repository_key_import(
        repository_id=from_cli.repository.pk,
        role=KeyRole.SNAPSHOT,
        key_file=from_cli.key_file("snapshot").read_bytes(),
        passphrase=NOTARY_PASSPHRASE,
    )

    assert stored.role == KeyRole.SNAPSHOT
    assert stored.canonical_key_id == from_cli.key_file("snapshot").stem
    assert Repository.objects.get(pk=from_cli.repository.pk).trust_initialised_at is None


def test_with_the_snapshot_key_too_the_portal_delegates_where_the_client_signs_snapshots(
    notary_cli,
):
    from_cli = cli_initialised(notary_cli, server_managed_snapshot=False)
    for role in (KeyRole.TARGETS, KeyRole.SNAPSHOT):
        services.repository_key_import(
            repository_id=from_cli.repository.pk,
            role=role,
            key_file=from_cli.key_file(role).read_bytes(),
            passphrase=NOTARY_PASSPHRASE,
        )
    repository = Repository.objects.get(pk=from_cli.repository.pk)
    bundle = make_bundle("carol")

    trust.publish(repository, trust.adding(bundle.cert_pem.decode(), ROLES), now=timezone.now())

    carol = trust.certificate_key(bundle.cert_pem.decode()).canonical_id
    listed = notary_cli.delegations(from_cli.gun)
    assert {role: listed[role]["keys"] for role in ROLES} == {role: [carol] for role in ROLES}


def test_a_targets_key_offered_as_the_snapshot_key_is_refused(from_cli):
    with pytest.raises(TrustSetupError, match="is not the snapshot key of"):
        services.repository_key_import(
            repository_id=from_cli.repository.pk,
            role=KeyRole.SNAPSHOT,
            key_file=from_cli.key_file("targets").read_bytes(),
            passphrase=NOTARY_PASSPHRASE,
        )
    assert not RepositoryKey.objects.exists()


@pytest.mark.parametrize(
    ("role", "passphrase", "message"),
    [
        ("root", NOTARY_PASSPHRASE, "Only a targets or snapshot key can be imported"),
        ("targets", "wrong", "The passphrase does not open the key file"),
        ("targets", "", "The key file is encrypted; give its passphrase."),
    ],
)
def test_bad_input_changes_nothing(from_cli, role, passphrase, message):
    with pytest.raises(InvalidInput, match=re.escape(message)):
        services.repository_key_import(
            repository_id=from_cli.repository.pk,
            role=role,
            key_file=from_cli.key_file("targets").read_bytes(),
            passphrase=passphrase,
        )
    assert not RepositoryKey.objects.exists()
    assert not AuditEvent.objects.filter(action="repository.key_imported").exists()


def test_a_repository_without_trust_data_is_told_to_initialise(notary_url):
    repository = services.repository_register(
        dtr_host="dtr.example.org",
        namespace=f"new{uuid.uuid4().hex[:8]}",
        name="app",
        notary_url=notary_url,
        owners_group="owners",
    )
    private_key = make_bundle("owner").key_pem  # any loadable key: the server is asked next
    with pytest.raises(TrustSetupError, match=r"has no trust data on .* initialise its trust"):
        services.repository_key_import(
            repository_id=repository.pk, role="targets", key_file=private_key, passphrase=""
        )


def test_no_key_material_or_passphrase_reaches_the_database(from_cli, client):
    key_file = from_cli.key_file("targets").read_bytes()
    import_targets_key(from_cli)

    private_der = load_key_file(key_file, NOTARY_PASSPHRASE).private_bytes()
    scalar = serialization.load_der_private_key(private_der, None).private_numbers().private_value
    scalar_bytes = scalar.to_bytes(32, "big")
    file_body = b"".join(body_lines(key_file))
    secrets_as_bytes = [private_der, scalar_bytes, file_body, NOTARY_PASSPHRASE.encode()]
    secrets_as_text = [
        *(base64.b64encode(secret).decode() for secret in (private_der, scalar_bytes)),
        private_der.hex(),
        scalar_bytes.hex(),
        file_body.decode()[:64],
        NOTARY_PASSPHRASE,
    ]
    for table, value in every_database_value():
        if isinstance(value, (bytes, memoryview)):
            data = bytes(value)
            assert not any(secret in data for secret in secrets_as_bytes), table
        elif isinstance(value, str):
            assert not any(secret in value for secret in secrets_as_text), table
    details = json.dumps(list(AuditEvent.objects.values_list("details", flat=True)))
    assert NOTARY_PASSPHRASE not in details


def body_lines(key_file: bytes) -> list[bytes]:
    """The base64 lines of a PEM file: after the headers' blank line, before the END line."""
    lines = key_file.splitlines()
    return lines[lines.index(b"") + 1 : -1]


def every_database_value():
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                for value in row:
                    yield table, value


# -- the management command -----------------------------------------------------------------------


def test_the_command_imports_with_the_passphrase_from_the_environment(
    from_cli, monkeypatch, capsys
):
    monkeypatch.setenv("NOTARY_TARGETS_PASSPHRASE", NOTARY_PASSPHRASE)
    path = from_cli.key_file("targets")

    call_command("keys_import", from_cli.gun, str(path), "--role", "targets")

    assert f"Imported the targets key {path.stem} of {from_cli.gun}" in capsys.readouterr().out
    assert RepositoryKey.objects.get().canonical_key_id == path.stem
    assert Repository.objects.get(pk=from_cli.repository.pk).trust_initialised_at is not None


def test_the_command_reads_a_named_variable_or_asks(from_cli, monkeypatch, capsys):
    path = from_cli.key_file("targets")
    monkeypatch.delenv("NOTARY_TARGETS_PASSPHRASE", raising=False)
    monkeypatch.setenv("OWNER_KEY_PASSPHRASE", NOTARY_PASSPHRASE)
    call_command("keys_import", from_cli.gun, str(path), "--passphrase-env", "OWNER_KEY_PASSPHRASE")
    assert RepositoryKey.objects.count() == 1

    monkeypatch.setattr(sys, "stdin", TTY())
    asked = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or NOTARY_PASSPHRASE)
    call_command("keys_import", from_cli.gun, str(path))
    assert asked == [f"Passphrase for {path}: "]
    assert "Imported the targets key" in capsys.readouterr().out


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_command_says_what_went_wrong(from_cli, notary_cli, monkeypatch, tmp_path):
    path = str(from_cli.key_file("targets"))
    monkeypatch.delenv("NOTARY_TARGETS_PASSPHRASE", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    with pytest.raises(CommandError, match="is encrypted: set its passphrase in NOTARY_TARGETS"):
        call_command("keys_import", from_cli.gun, path)

    monkeypatch.setenv("NOTARY_TARGETS_PASSPHRASE", "wrong")
    with pytest.raises(CommandError, match="Nothing was imported: The passphrase does not open"):
        call_command("keys_import", from_cli.gun, path)

    monkeypatch.setenv("NOTARY_TARGETS_PASSPHRASE", NOTARY_PASSPHRASE)
    with pytest.raises(CommandError, match="is not registered in the portal"):
        call_command("keys_import", "dtr.example.org/no/such", path)
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("keys_import", from_cli.gun, str(tmp_path / "missing.key"))
    certificate = tmp_path / "cert.pem"
    certificate.write_bytes(make_bundle("bob").cert_pem)
    with pytest.raises(CommandError, match="it holds a CERTIFICATE"):
        call_command("keys_import", from_cli.gun, str(certificate))
    other = cli_initialised(notary_cli, server_managed_snapshot=True).key_file("targets")
    with pytest.raises(CommandError, match=f"The key {other.stem} is not the targets key"):
        call_command("keys_import", from_cli.gun, str(other))
    assert not RepositoryKey.objects.exists()


def test_the_command_warns_when_the_file_names_another_role(notary_cli, monkeypatch, capsys):
    from_cli = cli_initialised(notary_cli, server_managed_snapshot=False)
    monkeypatch.setenv("NOTARY_SNAPSHOT_PASSPHRASE", NOTARY_PASSPHRASE)
    # The snapshot key's file, offered as a targets key: refused, with the header's hint first.
    with pytest.raises(CommandError, match="is not the targets key"):
        call_command(
            "keys_import",
            from_cli.gun,
            str(from_cli.key_file("snapshot")),
            "--passphrase-env",
            "NOTARY_SNAPSHOT_PASSPHRASE",
        )
    assert "Warning: The key file says it is a snapshot key, not a targets key." in (
        capsys.readouterr().err
    )


# -- the admin action -----------------------------------------------------------------------------


@pytest.fixture
def admin_client() -> Client:
    get_user_model().objects.create_superuser("root", "root@example.org", "admin-password")
    client = Client(enforce_csrf_checks=True)
    assert client.login(username="root", password="admin-password")
    return client


def csrf_token(page) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]


def test_the_admin_action_imports_through_a_form(from_cli, admin_client):
    changelist = reverse("admin:delegations_repository_changelist")
    listing = admin_client.get(changelist)
    selected = {"action": "import_key", helpers.ACTION_CHECKBOX_NAME: [from_cli.repository.pk]}

    form_page = admin_client.post(
        changelist, {**selected, "csrfmiddlewaretoken": csrf_token(listing)}
    )

    assert form_page.status_code == 200
    html = form_page.content.decode()
    assert f"Import a key for {from_cli.gun}" in html
    assert 'enctype="multipart/form-data"' in html
    assert 'type="password" name="passphrase"' in html
    key_file = from_cli.key_file("targets")

    with key_file.open("rb") as upload:
        done = admin_client.post(
            changelist,
            {
                **selected,
                "import": "yes",
                "role": "targets",
                "passphrase": NOTARY_PASSPHRASE,
                "key_file": upload,
                "csrfmiddlewaretoken": csrf_token(form_page),
            },
            follow=True,
        )

    assert done.redirect_chain == [(changelist, 302)]
    assert f"Imported the targets key {key_file.stem} of {from_cli.gun}." in done.content.decode()
    assert RepositoryKey.objects.get().canonical_key_id == key_file.stem
    event = AuditEvent.objects.get(action="repository.key_imported")
    assert event.actor_name == "root"


def test_a_failed_admin_import_shows_the_reason_and_echoes_nothing(from_cli, admin_client):
    changelist = reverse("admin:delegations_repository_changelist")
    form_page = admin_client.post(
        changelist,
        {
            "action": "import_key",
            helpers.ACTION_CHECKBOX_NAME: [from_cli.repository.pk],
            "csrfmiddlewaretoken": csrf_token(admin_client.get(changelist)),
        },
    )
    key_file = from_cli.key_file("targets")
    secret = "not-the-passphrase-1234"

    with key_file.open("rb") as upload:
        page = admin_client.post(
            changelist,
            {
                "action": "import_key",
                helpers.ACTION_CHECKBOX_NAME: [from_cli.repository.pk],
                "import": "yes",
                "role": "targets",
                "passphrase": secret,
                "key_file": upload,
                "csrfmiddlewaretoken": csrf_token(form_page),
            },
        )

    html = page.content.decode()
    assert page.status_code == 200
    assert "Nothing was imported: The passphrase does not open the key file" in html
    assert secret not in html
    reported = SafeExceptionReporterFilter().get_post_parameters(page.wsgi_request)
    assert reported["passphrase"] != secret  # masked in error reports
    assert body_lines(key_file.read_bytes())[0].decode() not in html
    assert not RepositoryKey.objects.exists()


def test_the_admin_action_wants_exactly_one_repository(from_cli, notary_cli, admin_client):
    other = cli_initialised(notary_cli, server_managed_snapshot=True)
    changelist = reverse("admin:delegations_repository_changelist")
    page = admin_client.post(
        changelist,
        {
            "action": "import_key",
            helpers.ACTION_CHECKBOX_NAME: [from_cli.repository.pk, other.repository.pk],
            "csrfmiddlewaretoken": csrf_token(admin_client.get(changelist)),
        },
        follow=True,
    )
    assert "Select exactly one repository to import a key for." in page.content.decode()

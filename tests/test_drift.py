"""The reconciler and the drift report: changes made with the notary CLI behind the portal's back
are found in one run, mailed once, and put right from the owners' page (checked with the CLI)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from django.core import mail
from django.core.management import call_command
from django.urls import reverse

from delegations import services, trust
from delegations.models import (
    AuditEvent,
    Delegation,
    DriftFinding,
    DriftKind,
    KeyRole,
    RequestStatus,
)
from tests.factories import make_bundle, make_user, submit_request

pytestmark = [pytest.mark.services, pytest.mark.django_db]

RELEASES, QA = "targets/releases", "targets/qa"


@pytest.fixture
def owner_cli(repository, notary_cli, tmp_path):
    """The notary CLI holding the repository's targets key: an owner working outside the
    portal."""
    key = trust.signing_key(repository.keys.get(role=KeyRole.TARGETS))
    private = serialization.load_der_private_key(key.private_bytes(), password=None)
    path = tmp_path / "targets.pem"
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    notary_cli.run("key", "import", str(path), "--role", "targets", "--gun", repository.gun)
    return notary_cli


def cli_add(cli, repository, cert_pem: bytes, roles: list[str], tmp_path) -> None:
    path = tmp_path / "outside.pem"
    path.write_bytes(cert_pem)
    for role in roles:
        cli.run("delegation", "add", repository.gun, role, str(path), "--all-paths")
    cli.run("publish", repository.gun)


def keys_in(cli, repository) -> dict[str, set[str]]:
    return {role: set(listed["keys"]) for role, listed in cli.delegations(repository.gun).items()}


def drift_mails():
    return [message for message in mail.outbox if "differs from the portal" in message.subject]


def test_a_key_added_with_the_cli_is_found_once_mailed_once_and_adopted(
    repository, people, owner_cli, tmp_path, run_jobs, django_capture_on_commit_callbacks
):
    bundle = make_bundle("carol")
    carol = make_user("carol", teams=("qa",))
    cli_add(owner_cli, repository, bundle.cert_pem, [RELEASES, QA], tmp_path)

    with django_capture_on_commit_callbacks(execute=True):
        report = services.repository_reconcile(repository_id=repository.pk)
    run_jobs()

    (finding,) = report.found
    assert finding.kind == DriftKind.UNKNOWN_KEY
    assert (finding.subject, finding.roles_present) == ("carol", [RELEASES, QA])
    assert sorted(message.to[0] for message in drift_mails()) == [
        "alice@example.org",
        "olga@example.org",
    ]
    assert AuditEvent.objects.filter(action="drift.found").count() == 1

    # A second run finds the same: nothing new, nobody mailed again.
    with django_capture_on_commit_callbacks(execute=True):
        again = services.repository_reconcile(repository_id=repository.pk)
    run_jobs()
    assert (again.found, again.open) == ([], 1)
    assert len(drift_mails()) == 2

    # An owner sees it on the page, with a badge in the navigation.
    client = _signed_in(people["alice"])
    page = client.get(reverse("delegations:drift_list")).content.decode()
    assert finding.short_key_id in page
    assert 'aria-label="1 open drift findings"' in page

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("delegations:drift_adopt", args=[finding.pk]),
            {"member": "carol", "team": "qa", "comment": "carol's CI key, added by hand"},
        )
    run_jobs()

    delegation = Delegation.objects.get(member=carol)
    assert delegation.request.status == RequestStatus.DELEGATED
    assert delegation.canonical_key_id == finding.canonical_key_id
    adopted = AuditEvent.objects.get(action="drift.adopted")
    assert (adopted.actor_name, adopted.details["member"]) == ("alice", "carol")
    roles = keys_in(owner_cli, repository)
    assert roles[RELEASES] == roles[QA] == {finding.canonical_key_id}
    assert services.repository_reconcile(repository_id=repository.pk).open == 0


def test_a_key_added_with_the_cli_is_removed_from_both_roles(
    repository, people, owner_cli, tmp_path, run_jobs, django_capture_on_commit_callbacks
):
    bob = submit_request(repository, people["bob"])
    services.request_approve(request_id=bob.pk, acting_user=people["alice"])
    services.repository_publish(repository_id=repository.pk)
    cli_add(owner_cli, repository, make_bundle("mallory").cert_pem, [RELEASES, QA], tmp_path)
    (finding,) = services.repository_reconcile(repository_id=repository.pk).found

    with django_capture_on_commit_callbacks(execute=True):
        services.drift_action_request(
            finding_id=finding.pk, acting_user=people["olga"], action="remove"
        )
    run_jobs()

    finding.refresh_from_db()
    assert (finding.resolution, finding.resolved_by) == ("removed", people["olga"])
    roles = keys_in(owner_cli, repository)
    bob.refresh_from_db()
    assert roles[RELEASES] == roles[QA] == {bob.canonical_key_id}  # bob's key untouched
    published = AuditEvent.objects.filter(action="notary.published").latest("id")
    assert published.details["drift_findings"] == [finding.pk]


def test_a_delegated_key_removed_with_the_cli_is_found_missing_and_published_again(
    repository, people, owner_cli, run_jobs, django_capture_on_commit_callbacks
):
    bob = submit_request(repository, people["bob"])
    services.request_approve(request_id=bob.pk, acting_user=people["alice"])
    services.repository_publish(repository_id=repository.pk)
    bob.refresh_from_db()
    owner_cli.run("delegation", "remove", repository.gun, QA, bob.canonical_key_id, "-y")
    owner_cli.run("publish", repository.gun)

    (finding,) = services.repository_reconcile(repository_id=repository.pk).found
    assert finding.kind == DriftKind.ONE_ROLE_ONLY
    assert (finding.roles_present, finding.roles_missing) == ([RELEASES], [QA])
    assert finding.delegation == Delegation.objects.get(request=bob)

    with pytest.raises(Exception, match="revoke it"):
        services.drift_action_request(
            finding_id=finding.pk, acting_user=people["alice"], action="remove"
        )
    with django_capture_on_commit_callbacks(execute=True):
        services.drift_action_request(
            finding_id=finding.pk, acting_user=people["alice"], action="republish"
        )
    run_jobs()

    roles = keys_in(owner_cli, repository)
    assert roles[RELEASES] == roles[QA] == {bob.canonical_key_id}
    assert DriftFinding.objects.get(pk=finding.pk).resolution == "republished"
    assert services.repository_reconcile(repository_id=repository.pk).open == 0


def test_drift_that_goes_away_closes_and_strangers_cannot_act(
    repository, people, owner_cli, tmp_path, stranger
):
    bundle = make_bundle("carol")
    cli_add(owner_cli, repository, bundle.cert_pem, [RELEASES], tmp_path)
    (finding,) = services.repository_reconcile(repository_id=repository.pk).found

    with pytest.raises(Exception, match="not on a repository you own"):
        services.drift_action_request(finding_id=finding.pk, acting_user=stranger, action="remove")
    with pytest.raises(Exception, match="their own delegation"):
        services.drift_adopt(
            finding_id=finding.pk,
            acting_user=people["olga"],
            member_username="olga",
            team="qa",
            comment="mine",
        )

    owner_cli.run("delegation", "remove", repository.gun, RELEASES, finding.canonical_key_id, "-y")
    owner_cli.run("publish", repository.gun)
    report = services.repository_reconcile(repository_id=repository.pk)
    assert (report.gone, report.open) == (1, 0)
    assert DriftFinding.objects.get(pk=finding.pk).resolution == "gone"


def test_the_command_reports_drift(repository, owner_cli, tmp_path, capsys):
    cli_add(owner_cli, repository, make_bundle("carol").cert_pem, [RELEASES, QA], tmp_path)
    call_command("reconcile", repository.gun)
    output = capsys.readouterr().out
    assert "1 new finding(s), 1 open" in output
    assert "A key the portal did not delegate" in output


def _signed_in(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client

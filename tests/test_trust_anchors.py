"""What the portal trusts before reading a repository: its pinned root and its memory of earlier
reads, kept per repository in the database, against a real notary-server."""

from __future__ import annotations

import base64

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from delegations import services, trust
from delegations.exceptions import InvalidInput
from delegations.models import AuditEvent, Repository
from delegations.notary import (
    InvalidMetadata,
    RepositoryNotInitialised,
    RollbackDetected,
    SigningKey,
)
from stack.processes import LOOPBACK, free_port, notary_service
from tests.factories import make_bundle
from tests.notary.repos import Repo, key_of, now
from tests.notary.tampering import TamperingProxy


def certificate_pem(signing_key: SigningKey) -> str:
    return base64.b64decode(signing_key.public.public).decode("ascii")


@pytest.fixture
def adopted(db, notary_url):
    """A repository whose trust someone else set up, registered in the portal without keys."""
    outside = Repo(notary_url)
    host, namespace, name = outside.gun.split("/")
    repository = services.repository_register(
        dtr_host=host, namespace=namespace, name=name, notary_url=notary_url, owners_group="o"
    )
    return outside, repository


def test_every_read_is_remembered_in_the_database(repository):
    trust.publish(
        repository,
        trust.adding(make_bundle("bob").cert_pem.decode(), ["targets/releases", "targets/qa"]),
        now=timezone.now(),
    )
    repository = Repository.objects.get(pk=repository.pk)
    assert repository.seen_versions["targets"] == 2
    assert repository.seen_versions["root"] == 1
    assert repository.trusted_root.startswith('{"signed":{"_type":"Root"')


def test_a_replay_is_refused_until_the_memory_is_deliberately_cleared(repository, notary_url):
    with TamperingProxy(notary_url) as proxy:
        Repository.objects.filter(pk=repository.pk).update(notary_url=proxy.url)
        repository.refresh_from_db()
        trust.fetch(repository, now=timezone.now())  # the proxy keeps this timestamp
        trust.publish(
            repository,
            trust.adding(make_bundle("bob").cert_pem.decode(), ["targets/releases", "targets/qa"]),
            now=timezone.now(),
        )
        timestamp = proxy.path_of(repository.gun, "timestamp.json")
        proxy.tamper = lambda path, body: proxy.seen[path] if path == timestamp else None

        with pytest.raises(RollbackDetected):
            trust.fetch(Repository.objects.get(pk=repository.pk), now=timezone.now())

        services.repository_trust_forget(repository_id=repository.pk)
        trust.fetch(Repository.objects.get(pk=repository.pk), now=timezone.now())
    assert AuditEvent.objects.filter(action="repository.trust_memory_cleared").exists()


def test_a_pinned_root_certificate_anchors_an_adopted_repository(adopted):
    outside, repository = adopted
    services.repository_root_pin(
        repository_id=repository.pk, root_certificate_pem=certificate_pem(outside.root_key)
    )
    repository.refresh_from_db()
    assert trust.fetch(repository, now=now()).root.signed.version == 1
    event = AuditEvent.objects.get(action="repository.root_pinned")
    assert event.details["canonical_key_id"] == outside.root_key.public.canonical_id


def test_a_root_not_signed_by_the_pinned_certificate_is_refused(adopted):
    outside, repository = adopted
    impostor = SigningKey.generate_root(outside.gun, now=now())
    with pytest.raises(InvalidInput, match="does not fit this certificate"):
        services.repository_root_pin(
            repository_id=repository.pk, root_certificate_pem=certificate_pem(impostor)
        )
    assert Repository.objects.get(pk=repository.pk).root_certificate_pem == ""

    # Pinned without the check (the server's root rotated away from it later, say), reads
    # refuse the served root.
    services.repository_root_pin(
        repository_id=repository.pk,
        root_certificate_pem=certificate_pem(impostor),
        check_notary=False,
    )
    repository.refresh_from_db()
    with pytest.raises(InvalidMetadata, match="not signed by the root key the portal trusts"):
        trust.fetch(repository, now=now())


def test_pinning_replaces_what_was_trusted_on_first_use(adopted):
    outside, repository = adopted
    trust.fetch(repository, now=now())  # trusted on first use, and remembered
    impostor = SigningKey.generate_root(outside.gun, now=now())
    services.repository_root_pin(
        repository_id=repository.pk,
        root_certificate_pem=certificate_pem(impostor),
        check_notary=False,
    )
    repository.refresh_from_db()
    assert repository.trusted_root == ""
    with pytest.raises(InvalidMetadata):
        trust.fetch(repository, now=now())


def test_a_root_certificate_for_another_repository_is_refused(adopted):
    _, repository = adopted
    elsewhere = SigningKey.generate_root("dtr.example.org/other/repo", now=now())
    with pytest.raises(InvalidInput, match=r"names 'dtr\.example\.org/other/repo'"):
        services.repository_root_pin(
            repository_id=repository.pk, root_certificate_pem=certificate_pem(elsewhere)
        )
    with pytest.raises(InvalidInput, match="not usable"):
        services.repository_root_pin(
            repository_id=repository.pk, root_certificate_pem="not a certificate"
        )
    assert Repository.objects.get(pk=repository.pk).root_certificate_pem == ""


def test_a_repository_the_portal_initialised_keeps_its_own_root_key(repository):
    stranger = SigningKey.generate_root(repository.gun, now=now())
    with pytest.raises(InvalidInput, match="pins its own root key"):
        services.repository_root_pin(
            repository_id=repository.pk, root_certificate_pem=certificate_pem(stranger)
        )


def test_the_register_command_pins_a_root_certificate(db, notary_url, tmp_path):
    outside = Repo(notary_url)
    pem_file = tmp_path / "root.pem"
    pem_file.write_text(certificate_pem(outside.root_key))
    register_with_root(outside.gun, notary_url, pem_file)
    repository = Repository.objects.get(name="nginx", namespace=outside.gun.split("/")[1])
    assert trust.fetch(repository, now=now()).root.signed.version == 1
    outside.delegate(key_of(make_bundle("bob")), "qa")
    pem_file.write_text("garbage")
    with pytest.raises(CommandError, match="root was not pinned"):
        register_with_root(outside.gun, notary_url, pem_file)


def register_with_root(gun: str, notary_url: str, pem_file) -> None:
    call_command(
        "repository_register",
        gun,
        *("--notary-url", notary_url, "--owners-group", "owners"),
        *("--root-certificate", str(pem_file)),
    )


def test_the_admin_form_refuses_a_root_certificate_of_another_repository(adopted, admin_client):
    outside, repository = adopted
    elsewhere = SigningKey.generate_root("dtr.example.org/other/repo", now=now())

    def save_with_root(signing_key: SigningKey):
        return admin_client.post(
            f"/admin/delegations/repository/{repository.pk}/change/",
            {
                "notary_url": repository.notary_url,
                "owners_group": repository.owners_group,
                "approvals_required": repository.approvals_required,
                "review_deadline_days": repository.review_deadline_days,
                "review_unreviewed": repository.review_unreviewed,
                "root_certificate_pem": certificate_pem(signing_key),
                "keys-TOTAL_FORMS": "0",
                "keys-INITIAL_FORMS": "0",
            },
        )

    refused = save_with_root(elsewhere)
    assert refused.status_code == 200
    assert "names &#x27;dtr.example.org/other/repo&#x27;" in refused.content.decode()
    assert save_with_root(outside.root_key).status_code == 302
    assert AuditEvent.objects.filter(action="repository.root_pinned").exists()


def test_a_read_that_began_before_the_memory_was_cleared_does_not_write_it_back(repository):
    with trust.client_for(repository) as client:
        client.fetch(now=timezone.now())
        services.repository_trust_forget(repository_id=repository.pk)
    cleared = Repository.objects.get(pk=repository.pk)
    assert (cleared.trusted_root, cleared.seen_versions) == ("", {})
    trust.fetch(cleared, now=timezone.now())  # a read that begins afterwards remembers again
    assert Repository.objects.get(pk=repository.pk).trusted_root


def test_the_verified_snapshot_and_targets_are_remembered_so_the_next_publish_skips_them(
    repository, notary_url
):
    with TamperingProxy(notary_url) as proxy:
        Repository.objects.filter(pk=repository.pk).update(notary_url=proxy.url)
        for member in ("bob", "carol"):
            fetched: list[str] = []
            proxy.tamper = lambda path, body, fetched=fetched: fetched.append(
                path.rsplit("/", 1)[-1].split(".")[0]
            )
            trust.publish(
                Repository.objects.get(pk=repository.pk),  # as a new job would load it
                trust.adding(make_bundle(member).cert_pem.decode(), ["targets/releases"]),
                now=timezone.now(),
            )
    assert fetched == ["timestamp", "timestamp", "snapshot"]  # carol's: nothing re-downloaded
    remembered = dict(repository.trust_files.values_list("role", "data"))
    assert sorted(remembered) == ["snapshot", "targets"]
    assert b"targets/releases" in bytes(remembered["targets"])

    services.repository_trust_forget(repository_id=repository.pk)
    assert not repository.trust_files.exists()


def test_a_server_that_lost_the_trust_data_is_initialised_again(repository, tmp_path):
    """A memory-backed notary-server restarted (as `make run`'s is after a stop): the portal
    remembers a root, the server has nothing. That is 'not initialised', and initialising
    publishes the same trust data again with the keys the portal holds."""
    trust.fetch(repository, now=now())  # the root is remembered now
    assert repository.trusted_root
    port = free_port()
    with notary_service(port=port, data_dir=tmp_path / "notary"):
        Repository.objects.filter(pk=repository.pk).update(notary_url=f"http://{LOOPBACK}:{port}")
        repository.refresh_from_db()
        with pytest.raises(RepositoryNotInitialised):
            trust.fetch(repository, now=now())
        services.repository_initialise_trust(repository_id=repository.pk)
        repository.refresh_from_db()
        assert trust.fetch(repository, now=now()).root.signed.version == 1

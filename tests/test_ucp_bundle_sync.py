"""The directory sync and UCP's client bundles (`PORTAL_UCP_SYNC_BUNDLES`): a member who deletes
the bundle behind a delegation loses that delegation at the next sync.

Against the real slapd (the demo tree: alice owns dev/nginx, bob and carol are in qa), the
stand-in of UCP's account API (stack/dtr_standin.py) and the real notary-server, read back with
the `notary` CLI.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from django.contrib.auth import get_user_model
from django.core import mail

from delegations import services
from delegations.audit.chain import DIRECTORY_SYNC_ACTOR
from delegations.models import AuditEvent, Delegation, EndReason, RequestStatus
from delegations.notary import RELEASES
from stack.dtr_standin import DtrStandIn, dtr_standin_service
from tests.directory.test_directory import keys_in, sync_and_apply
from tests.directory_settings import DEMO_OWNERS, directory_user
from tests.factories import Bundle, make_bundle, submit_request

pytestmark = [pytest.mark.django_db, pytest.mark.services]

SERVICE = "svc-portal"
SERVICE_PASSWORD = secrets.token_urlsafe(16)  # made at run time
KEYS_PATH = "/accounts/{}/publicKeys"


def public_pem(bundle: Bundle) -> str:
    return (
        bundle.certificate.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def bundle_delete(ucp: DtrStandIn, username: str, bundle: Bundle) -> None:
    """What the member does in UCP (My profile, Client bundles, Delete)."""
    pem = public_pem(bundle)
    ucp.public_keys[username] = [k for k in ucp.public_keys[username] if k["publicKey"] != pem]


def keys_asked(ucp: DtrStandIn, username: str) -> int:
    return sum(1 for call in ucp.recorded if call.path == KEYS_PATH.format(username))


@pytest.fixture
def ucp(settings) -> Iterator[DtrStandIn]:
    """UCP with the portal's reading account and bob's and carol's, configured as the
    environment would (PORTAL_UCP_SYNC_BUNDLES left at its default)."""
    registry = DtrStandIn()
    registry.account_add(SERVICE, SERVICE_PASSWORD)
    for member in ("bob", "carol"):
        registry.account_add(member, f"{member}-password")
    with dtr_standin_service(registry) as running:
        settings.PORTAL_UCP_URL = running.url
        settings.PORTAL_UCP_USERNAME, settings.PORTAL_UCP_PASSWORD = SERVICE, SERVICE_PASSWORD
        yield running


@pytest.fixture
def nginx(repository):
    """The test repository, owned (as in the demo tree) by the LDAP group owners:dev/nginx."""
    repository.owners_group = DEMO_OWNERS
    repository.save(update_fields=["owners_group"])
    return repository


Delegate = Callable[[str, str], tuple[Delegation, Bundle]]


@pytest.fixture
def delegated(use_directory, ucp, nginx, run_jobs, django_capture_on_commit_callbacks) -> Delegate:
    """A directory member makes a bundle in UCP, asks with its cert.pem (UCP lists the key, so
    the request is taken), and alice's approval and the worker delegate it."""
    alice = directory_user("alice")

    def delegate(username: str, team: str) -> tuple[Delegation, Bundle]:
        member = directory_user(username)
        bundle = make_bundle(username)
        ucp.public_key_add(username, public_pem(bundle), label=f"{username}'s laptop")
        request = submit_request(nginx, member, team=team, bundle=bundle)
        with django_capture_on_commit_callbacks(execute=True):
            services.request_approve(request_id=request.pk, acting_user=alice)
        run_jobs()
        request.refresh_from_db()
        assert request.status == RequestStatus.DELEGATED, request.failure_reason
        return Delegation.objects.get(request=request), bundle

    return delegate


def test_a_deleted_bundle_ends_its_delegation_in_both_roles_and_a_listed_one_stays(
    nginx, delegated, ucp, ldap_tree, notary_cli, run_jobs, django_capture_on_commit_callbacks
):
    ldap_tree.add_member(ldap_tree.team_dn("dev"), ldap_tree.user_dn("bob"))
    bob_qa, qa_bundle = delegated("bob", "qa")
    bob_dev, _ = delegated("bob", "dev")  # another bundle of bob's, which he keeps
    carol, _ = delegated("carol", "qa")
    mail.outbox.clear()
    ucp.recorded.clear()

    bundle_delete(ucp, "bob", qa_bundle)
    report = sync_and_apply(run_jobs, django_capture_on_commit_callbacks)

    assert [(e.member, e.team, e.reason) for e in report.endings] == [
        ("bob", "qa", EndReason.BUNDLE_DELETED)
    ]
    # One question per member, however many delegations they hold.
    assert (keys_asked(ucp, "bob"), keys_asked(ucp, "carol")) == (1, 1)
    roles = keys_in(notary_cli, nginx.gun)
    assert roles[RELEASES] == {bob_dev.canonical_key_id, carol.canonical_key_id}
    assert roles["targets/qa"] == {carol.canonical_key_id}
    assert roles["targets/dev"] == {bob_dev.canonical_key_id}
    for kept in (bob_dev, carol):
        kept.refresh_from_db()
        assert kept.is_active
        assert not kept.ending
    bob_qa.refresh_from_db()
    assert bob_qa.end_reason == EndReason.BUNDLE_DELETED
    assert bob_qa.request.status == RequestStatus.REVOKED
    assert get_user_model().objects.get(username="bob").is_active  # still in the company

    events = AuditEvent.objects.filter(request=bob_qa.request).order_by("pk")
    asked = events.get(action="delegation.bundle_deleted")
    assert (asked.actor, asked.actor_name) == (None, DIRECTORY_SYNC_ACTOR)
    assert "client bundles" in asked.details["comment"]
    assert asked.details["end_reason"] == EndReason.BUNDLE_DELETED
    assert events.get(action="request.revoked").actor_name == DIRECTORY_SYNC_ACTOR

    sent = {tuple(message.to): message for message in mail.outbox}
    assert set(sent) == {("alice@example.org",), ("bob@example.org",)}
    to_bob, to_alice = sent[("bob@example.org",)], sent[("alice@example.org",)]
    assert "Your delegation as team qa ended: its client bundle was deleted in UCP" in (
        to_bob.subject
    )
    assert "download a new client bundle from UCP" in to_bob.body
    assert "bob's delegation as team qa ended: its client bundle was deleted in UCP" in (
        to_alice.subject
    )
    assert "witness" in to_alice.body

    # Nothing more on the next run.
    assert sync_and_apply(run_jobs, django_capture_on_commit_callbacks).endings == []


def test_a_ucp_that_cannot_answer_ends_nothing_until_it_answers_again(
    delegated, ucp, run_jobs, django_capture_on_commit_callbacks
):
    bob, bundle = delegated("bob", "qa")
    carol, _ = delegated("carol", "qa")
    bundle_delete(ucp, "bob", bundle)
    ucp.fail_with = 503
    ucp.recorded.clear()

    report = sync_and_apply(run_jobs, django_capture_on_commit_callbacks)

    assert report.endings == []
    assert report.bundles_unreadable == ["bob", "carol"]
    assert "client bundles UCP could not list, left alone: bob, carol" in report.summary()
    # Down for one is down for all: carol is not asked after bob's answer timed out or failed.
    assert len(ucp.recorded) == 1
    for delegation in (bob, carol):
        delegation.refresh_from_db()
        assert delegation.is_active
        assert not delegation.ending

    ucp.fail_with = None
    report = sync_and_apply(run_jobs, django_capture_on_commit_callbacks)
    assert [(e.member, e.reason) for e in report.endings] == [("bob", EndReason.BUNDLE_DELETED)]
    assert report.bundles_unreadable == []
    bob.refresh_from_db()
    assert bob.end_reason == EndReason.BUNDLE_DELETED


def test_a_listed_key_the_portal_cannot_read_ends_nothing_for_that_member(
    delegated, ucp, run_jobs, django_capture_on_commit_callbacks
):
    bob, bundle = delegated("bob", "qa")
    bundle_delete(ucp, "bob", bundle)
    # What UCP lists may be the member's key in a form the portal does not parse.
    ucp.public_key_add("bob", "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")

    report = sync_and_apply(run_jobs, django_capture_on_commit_callbacks)

    assert report.endings == []
    assert report.bundles_unreadable == ["bob"]
    bob.refresh_from_db()
    assert bob.is_active


def test_a_member_ucp_has_no_account_of_keeps_their_delegations_until_the_directory_disables_them(
    delegated, ucp, ldap_tree, notary_cli, nginx, run_jobs, django_capture_on_commit_callbacks
):
    bob, _ = delegated("bob", "qa")
    del ucp.accounts["bob"]  # renamed in UCP, or a UCP wired to another directory

    report = sync_and_apply(run_jobs, django_capture_on_commit_callbacks)
    assert report.endings == []
    assert report.bundles_unknown == ["bob"]
    bob.refresh_from_db()
    assert bob.is_active

    # Gone from the directory as well: the directory's end, not UCP's, and UCP is not asked.
    ldap_tree.disable("bob")
    ucp.recorded.clear()
    report = sync_and_apply(run_jobs, django_capture_on_commit_callbacks)
    assert [(e.member, e.reason) for e in report.endings] == [("bob", EndReason.DISABLED)]
    assert keys_asked(ucp, "bob") == 0
    assert bob.canonical_key_id not in keys_in(notary_cli, nginx.gun).get(RELEASES, set())


def test_bundle_ends_count_against_the_same_cap_as_the_directorys(
    use_directory, delegated, ucp, ldap_tree, run_jobs, django_capture_on_commit_callbacks
):
    get_user_model().objects.create_superuser("root", "root@example.org", None)
    bob, bundle = delegated("bob", "qa")
    carol, _ = delegated("carol", "qa")
    use_directory(PORTAL_DIRECTORY_SYNC_MAX_ENDINGS=1)
    bundle_delete(ucp, "bob", bundle)
    ldap_tree.remove_member(ldap_tree.team_dn("qa"), ldap_tree.user_dn("carol"))

    report = sync_and_apply(run_jobs, django_capture_on_commit_callbacks)

    assert report.held
    assert sorted((e.member, e.reason) for e in report.endings) == [
        ("bob", EndReason.BUNDLE_DELETED),
        ("carol", EndReason.LEFT_TEAM),
    ]
    for delegation in (bob, carol):
        delegation.refresh_from_db()
        assert delegation.is_active
        assert not delegation.ending
    held = AuditEvent.objects.get(action="directory.sync_held")
    assert held.details["would_end"] == 2
    assert any("directory sync is holding" in message.subject for message in mail.outbox)

    report = sync_and_apply(run_jobs, django_capture_on_commit_callbacks, force=True)
    assert not report.held
    bob.refresh_from_db()
    carol.refresh_from_db()
    assert (bob.end_reason, carol.end_reason) == (EndReason.BUNDLE_DELETED, EndReason.LEFT_TEAM)


def test_switched_off_the_sync_does_not_ask_ucp(
    delegated, ucp, settings, run_jobs, django_capture_on_commit_callbacks
):
    bob, bundle = delegated("bob", "qa")
    bundle_delete(ucp, "bob", bundle)
    settings.PORTAL_UCP_SYNC_BUNDLES = False
    ucp.recorded.clear()

    assert sync_and_apply(run_jobs, django_capture_on_commit_callbacks).endings == []
    assert ucp.recorded == []
    bob.refresh_from_db()
    assert bob.is_active

"""Ending active delegations: an owner revokes one after a preview of what it un-signs, a member
gives up their own.

Checked from the outside: the `notary` CLI reads the roles from the real notary-server, members
sign and witness with their own keys, and the portal's rows, audit events and emails say what
happened.
"""

from __future__ import annotations

import html
import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from delegations import queueing, services, trust
from delegations.exceptions import IllegalTransition, InvalidInput, NotAllowed
from delegations.models import (
    AuditEvent,
    Delegation,
    EndReason,
    KeyRole,
    Notification,
    RequestStatus,
)
from delegations.notary import RELEASES, RemoveKey, change_impact
from tests.factories import make_bundle, make_user, submit_request
from tests.notary.repos import Repo, key_of, now
from tests.notary.tampering import TamperingProxy, flip_byte_inside

pytestmark = [pytest.mark.django_db, pytest.mark.services]

QA = "targets/qa"


def page_text(response) -> str:
    """What a reader sees: the page's text without tags, spaces collapsed."""
    without_tags = re.sub(r"<[^>]+>", " ", response.content.decode())
    return re.sub(r"\s+", " ", html.unescape(without_tags))


def losing_tags(response) -> dict[str, list[str]]:
    """The preview's table: {role: [tags]}."""
    table = re.search(r'<table class="losing-tags">(.*?)</table>', response.content.decode(), re.S)
    rows = re.findall(r"<tr>\s*<td><code>([^<]+)</code>.*?</td>\s*<td>(.*?)</td>", table[1], re.S)
    return {role: re.findall(r"<code>([^<]+)</code>", tags) for role, tags in rows}


@pytest.fixture
def delegate(repository, people, run_jobs, django_capture_on_commit_callbacks):
    """Take a member's request through approval and the worker; returns their Delegation."""

    def delegate(member, bundle, *, team: str = "qa") -> Delegation:
        request = submit_request(repository, member, team=team, bundle=bundle)
        with django_capture_on_commit_callbacks(execute=True):
            services.request_approve(request_id=request.pk, acting_user=people["alice"])
        run_jobs()
        request.refresh_from_db()
        assert request.status == RequestStatus.DELEGATED, request.failure_reason
        return Delegation.objects.get(request=request)

    return delegate


@pytest.fixture
def team_qa(people, delegate):
    """bob and carol, both of team qa, delegated on the repository, with their bundles."""
    carol = make_user("carol", teams=("qa",))
    bundles = {"bob": make_bundle("bob"), "carol": make_bundle("carol")}
    return {
        "bob": delegate(people["bob"], bundles["bob"]),
        "carol": delegate(carol, bundles["carol"]),
        "bundles": bundles,
        "carol_user": carol,
    }


def revoke(client, delegation, comment: str, capture):
    with capture(execute=True):
        return client.post(
            reverse("delegations:delegation_revoke", args=[delegation.pk]),
            {"comment": comment},
            follow=True,
        )


def keys_in(notary_cli, gun: str) -> dict[str, set[str]]:
    return {role: set(row["keys"]) for role, row in notary_cli.delegations(gun).items()}


def test_an_owner_revokes_one_member_after_the_preview_and_the_others_keep_signing(
    client,
    repository,
    people,
    team_qa,
    notary_cli,
    run_jobs,
    django_capture_on_commit_callbacks,
):
    bob, carol = team_qa["bob"], team_qa["carol"]
    gun = repository.gun
    notary_cli.sign(
        gun,
        person="bob",
        key_pem=team_qa["bundles"]["bob"].key_pem,
        tag="v1",
        roles=[RELEASES, QA],
    )
    assert "v1" in notary_cli.run("list", gun).stdout

    # The owner's Delegations page has a Revoke button for each active delegation.
    client.force_login(people["alice"])
    listing = client.get(reverse("delegations:delegation_list")).content.decode()
    assert listing.count(">Revoke</button>") == 2

    # The confirmation page previews what bob's key alone vouches for.
    confirm = reverse("delegations:delegation_revoke", args=[bob.pk])
    response = client.get(confirm)
    preview = page_text(response)
    assert "Signed tags that lose their only valid signature" in preview
    assert "These tags stop verifying for UCP" in preview
    assert losing_tags(response) == {RELEASES: ["v1"], QA: ["v1"]}
    witness = (
        f"notary -s {repository.notary_url} -d ~/.docker/trust witness -p {gun} {RELEASES} {QA}"
    )
    assert witness in preview
    assert "Remaining signers of targets/releases : carol" in preview

    # A revocation says why: without a comment nothing happens.
    refused = client.post(confirm, {"comment": "  "})
    assert refused.status_code == 400
    assert "Say why you revoke this delegation" in page_text(refused)
    assert Delegation.objects.get(pk=bob.pk).ending == ""

    before = trust.fetch(repository, now=timezone.now()).targets.signed.version
    done = revoke(client, bob, "bob moved to the platform team", django_capture_on_commit_callbacks)
    assert "Revoking bob's delegation" in page_text(done)
    run_jobs()

    # The CLI: bob's key is gone from both roles, carol's is in both, the roles stay.
    roles = keys_in(notary_cli, gun)
    assert roles[RELEASES] == {carol.canonical_key_id}
    assert roles[QA] == {carol.canonical_key_id}
    # ...and what only bob vouched for no longer verifies, until carol witnesses it.
    assert "v1" not in notary_cli.run("list", gun).stdout
    carol_key = notary_cli.home / "carol-key.pem"
    carol_key.write_bytes(team_qa["bundles"]["carol"].key_pem)
    notary_cli.run("key", "import", str(carol_key), person="carol")
    notary_cli.run("witness", "-p", gun, RELEASES, QA, person="carol")
    assert "v1" in notary_cli.run("list", gun).stdout

    # The portal's record.
    bob.refresh_from_db()
    assert bob.ended_at is not None
    assert bob.end_reason == EndReason.REVOKED
    assert bob.request.status == RequestStatus.REVOKED
    assert Delegation.objects.get(pk=carol.pk).is_active
    asked = AuditEvent.objects.get(request=bob.request, action="delegation.revoke_requested")
    assert asked.actor_name == "alice"
    assert asked.details["comment"] == "bob moved to the platform team"
    published = AuditEvent.objects.filter(repository=repository, action="notary.published").latest(
        "id"
    )
    assert published.details["ended_requests"] == [bob.request_id]
    assert published.details["requests"] == []
    assert published.details["targets_version_before"] == before
    assert published.details["targets_version_after"] == before + 1
    revoked = AuditEvent.objects.get(request=bob.request, action="request.revoked")
    assert revoked.details["published_in"] == published.pk
    assert revoked.details["canonical_key_id"] == bob.canonical_key_id
    assert revoked.actor_name == "alice"
    assert (revoked.details["from"], revoked.details["to"]) == ("delegated", "revoked")
    assert revoked.details["targets_version_after"] == before + 1
    assert revoked.details["roles"] == [RELEASES, QA]

    # bob is told who revoked and why; nobody else is.
    told = Notification.objects.get(request=bob.request, kind="delegation_revoked")
    assert told.recipient.username == "bob"
    services.notification_send(notification_id=told.pk)
    (message,) = mail.outbox[-1:]
    assert message.to == ["bob@example.org"]
    assert "alice revoked your delegation" in message.subject
    assert "bob moved to the platform team" in message.body
    assert bob.canonical_key_id in message.body

    # The page and the request show it ended; revoking again is refused cleanly.
    after = client.get(reverse("delegations:delegation_list")).content.decode()
    assert after.count(">Revoke</button>") == 1
    again = revoke(client, bob, "again", django_capture_on_commit_callbacks)
    assert "has ended already" in page_text(again)
    with pytest.raises(IllegalTransition, match="has ended already"):
        services.delegation_revoke(delegation_id=bob.pk, acting_user=people["olga"], comment="x")
    detail = client.get(reverse("delegations:request_detail", args=[bob.request_id]))
    assert ">Revoked</span>" in detail.content.decode()


def test_a_double_click_asks_once_and_the_list_shows_the_revocation_under_way(
    client, people, team_qa, rq_queue, django_capture_on_commit_callbacks
):
    bob = team_qa["bob"]
    client.force_login(people["alice"])
    first = revoke(client, bob, "leaving", django_capture_on_commit_callbacks)
    second = revoke(client, bob, "leaving", django_capture_on_commit_callbacks)
    assert "Revoking bob's delegation" in page_text(first)
    assert "is being ended already" in page_text(second)
    jobs = [job.func_name for job in rq_queue.jobs]
    assert jobs.count(queueing.REPOSITORY_PUBLISH_JOB) == 1
    assert AuditEvent.objects.filter(action="delegation.revoke_requested").count() == 1
    # Under way: no button for bob, the key still signs until the worker is done.
    listing = client.get(reverse("delegations:delegation_list"))
    assert "Being revoked" in page_text(listing)
    assert listing.content.decode().count(">Revoke</button>") == 1
    with pytest.raises(IllegalTransition):
        services.delegation_give_up(delegation_id=bob.pk, acting_user=people["bob"])


def test_only_owners_of_the_repository_revoke(client, repository, people, team_qa, stranger):
    bob = team_qa["bob"]
    confirm = reverse("delegations:delegation_revoke", args=[bob.pk])
    for person in (people["dave"], people["bob"], team_qa["carol_user"], stranger):
        with pytest.raises(NotAllowed):
            services.delegation_revoke(delegation_id=bob.pk, acting_user=person, comment="no")
        client.force_login(person)
        assert client.get(confirm).status_code == 403
        assert client.post(confirm, {"comment": "no"}).status_code == 403
    # A number that names no delegation gets the same answer.
    client.force_login(people["alice"])
    missing = reverse("delegations:delegation_revoke", args=[bob.pk + 1000])
    assert client.get(missing).status_code == 403
    bob.refresh_from_db()
    assert bob.is_active
    assert bob.ending == ""
    assert not AuditEvent.objects.filter(action="delegation.revoke_requested").exists()


def test_a_member_gives_up_their_own_delegation_and_the_owners_are_told(
    client, repository, people, team_qa, notary_cli, run_jobs, django_capture_on_commit_callbacks
):
    bob, carol = team_qa["bob"], team_qa["carol"]
    # Nobody else gives up bob's delegation: not another member, not an owner.
    for person in (team_qa["carol_user"], people["alice"]):
        with pytest.raises(NotAllowed):
            services.delegation_give_up(delegation_id=bob.pk, acting_user=person)
    client.force_login(team_qa["carol_user"])
    give_up = reverse("delegations:delegation_give_up", args=[bob.pk])
    assert client.post(give_up).status_code == 403

    client.force_login(people["bob"])
    detail = reverse("delegations:request_detail", args=[bob.request_id])
    assert ">Give up</button>" in client.get(detail).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(give_up, {"comment": "I switch teams"}, follow=True)
    page = page_text(response)
    assert "You gave up signing" in page
    assert ">Give up</button>" not in page
    run_jobs()

    roles = keys_in(notary_cli, repository.gun)
    assert roles[RELEASES] == {carol.canonical_key_id}
    assert roles[QA] == {carol.canonical_key_id}
    bob.refresh_from_db()
    assert bob.end_reason == EndReason.GIVEN_UP
    assert bob.request.status == RequestStatus.REVOKED
    event = AuditEvent.objects.get(request=bob.request, action="request.given_up")
    assert event.actor_name == "bob"
    assert event.details["comment"] == "I switch teams"
    told = Notification.objects.filter(request=bob.request, kind="delegation_given_up")
    assert sorted(n.recipient.username for n in told) == ["alice", "olga"]
    services.notification_send(notification_id=told[0].pk)
    assert "bob gave up signing as team qa" in mail.outbox[-1].subject
    witness = f"-d ~/.docker/trust witness -p {repository.gun} {RELEASES} {QA}"
    assert f"notary -s {repository.notary_url} {witness}" in mail.outbox[-1].body
    # Given up is final: a second click is refused with the reason.
    with pytest.raises(IllegalTransition, match="has ended already"):
        services.delegation_give_up(delegation_id=bob.pk, acting_user=people["bob"])


def test_a_crash_between_publish_and_record_is_recovered_by_running_the_job_again(
    client, repository, people, team_qa, notary_cli, rq_queue, run_jobs, settings,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    bob, carol = team_qa["bob"], team_qa["carol"]
    client.force_login(people["alice"])
    revoke(client, bob, "compromised laptop", django_capture_on_commit_callbacks)
    # The worker published, then died before recording; its job is lost with it.
    change = trust.removing(bob.request.certificate_pem, bob.roles)
    published = trust.publish(repository, change, now=timezone.now())
    assert published.changed
    rq_queue.connection.flushdb()
    assert Delegation.objects.get(pk=bob.pk).is_active

    # The cron sweep queues the end again; the run finds the key gone and records that once.
    assert services.waiting_publishes_resume() == [repository.pk]
    run_jobs()
    bob.refresh_from_db()
    assert bob.end_reason == EndReason.REVOKED
    assert bob.request.status == RequestStatus.REVOKED
    found = AuditEvent.objects.get(request=bob.request, action="notary.found_removed")
    assert found.details["targets_version_before"] == published.version_after
    assert found.details["targets_version_after"] == published.version_after
    removals = AuditEvent.objects.filter(request=bob.request, details__change="remove")
    assert [event.action for event in removals] == ["notary.found_removed"]

    # Running it yet again changes nothing and records nothing.
    events = AuditEvent.objects.count()
    assert queueing.enqueue_repository_publish(repository.pk)
    run_jobs()
    assert AuditEvent.objects.count() == events
    assert services.waiting_publishes_resume() == []
    assert Notification.objects.filter(request=bob.request, kind="delegation_revoked").count() == 1
    roles = keys_in(notary_cli, repository.gun)
    assert roles[RELEASES] == roles[QA] == {carol.canonical_key_id}


def test_a_key_another_team_still_delegates_stays_in_releases(
    client, repository, people, team_qa, notary_cli, run_jobs, django_capture_on_commit_callbacks
):
    bob, carol = team_qa["bob"], team_qa["carol"]
    # Delegated outside the portal for team dev too (as `notary delegation add` would).
    trust.publish(
        repository,
        trust.adding(bob.request.certificate_pem, [RELEASES, "targets/dev"]),
        now=timezone.now(),
    )
    client.force_login(people["alice"])
    preview = page_text(client.get(reverse("delegations:delegation_revoke", args=[bob.pk])))
    assert "The key stays in targets/releases : targets/dev still delegates it" in preview
    revoke(client, bob, "not qa any more", django_capture_on_commit_callbacks)
    run_jobs()
    roles = keys_in(notary_cli, repository.gun)
    assert roles[QA] == {carol.canonical_key_id}
    assert roles[RELEASES] == {bob.canonical_key_id, carol.canonical_key_id}
    assert roles["targets/dev"] == {bob.canonical_key_id}
    assert Delegation.objects.get(pk=bob.pk).end_reason == EndReason.REVOKED


def test_the_preview_leaves_out_tags_a_remaining_signer_also_vouches_for(
    repository, team_qa, notary_cli
):
    bob, carol = team_qa["bob"], team_qa["carol"]
    bundles = team_qa["bundles"]
    gun = repository.gun
    notary_cli.sign(
        gun, person="bob", key_pem=bundles["bob"].key_pem, tag="v1", roles=[RELEASES, QA]
    )
    # carol signs into the team role: the client re-signs the whole file, so it is now carol's
    # alone, while targets/releases stays bob's alone.
    notary_cli.sign(gun, person="carol", key_pem=bundles["carol"].key_pem, tag="v2", roles=[QA])

    def losing(delegation) -> dict[str, tuple[str, ...]]:
        change = trust.removing(delegation.request.certificate_pem, delegation.roles)
        impact = trust.impact(repository, change, now=timezone.now())
        return {role.name: role.tags_losing_signature for role in impact.losing}

    assert losing(bob) == {RELEASES: ("v1",)}
    assert losing(carol) == {QA: ("v1", "v2")}


def test_the_preview_says_so_when_notary_cannot_be_reached_and_revoking_still_works(
    client, repository, people, team_qa, django_capture_on_commit_callbacks
):
    bob = team_qa["bob"]
    repository.notary_url = "http://127.0.0.1:9"  # discard port: nothing listens
    repository.save(update_fields=["notary_url"])
    client.force_login(people["alice"])
    preview = client.get(reverse("delegations:delegation_revoke", args=[bob.pk]))
    assert preview.status_code == 200
    assert "could not read the repository's trust data" in page_text(preview)
    revoke(client, bob, "leaving", django_capture_on_commit_callbacks)
    assert Delegation.objects.get(pk=bob.pk).ending == EndReason.REVOKED


def test_a_permanent_failure_keeps_the_delegation_and_tells_who_asked(
    client, repository, people, team_qa, notary_cli, run_jobs, django_capture_on_commit_callbacks
):
    bob = team_qa["bob"]
    client.force_login(people["alice"])
    revoke(client, bob, "leaving", django_capture_on_commit_callbacks)
    repository.keys.filter(role=KeyRole.TARGETS).delete()  # the portal lost its targets key
    run_jobs()
    bob.refresh_from_db()
    assert bob.is_active
    assert bob.ending == ""
    assert bob.request.status == RequestStatus.DELEGATED
    failed = AuditEvent.objects.get(request=bob.request, action="delegation.end_failed")
    assert "holds no targets key" in failed.details["reason"]
    told = Notification.objects.filter(request=bob.request, kind="delegation_end_failed")
    assert sorted(n.recipient.username for n in told) == ["alice", "olga"]
    services.notification_send(notification_id=told[0].pk)
    assert "holds no targets key" in mail.outbox[-1].body
    assert bob.canonical_key_id in keys_in(notary_cli, repository.gun)[QA]
    # It may be asked for again.
    again = services.delegation_revoke(
        delegation_id=bob.pk, acting_user=people["olga"], comment="retry"
    )
    assert again.ending == EndReason.REVOKED


def test_a_comment_holding_a_private_key_is_refused_and_not_stored(people, team_qa):
    bob = team_qa["bob"]
    pasted = "-----BEGIN " + "EC PRIVATE KEY-----\nMHcCAQEE\n-----END " + "EC PRIVATE KEY-----"
    with pytest.raises(InvalidInput):
        services.delegation_revoke(
            delegation_id=bob.pk, acting_user=people["alice"], comment=pasted
        )
    with pytest.raises(InvalidInput):
        services.delegation_give_up(delegation_id=bob.pk, acting_user=people["bob"], comment=pasted)
    bob.refresh_from_db()
    assert bob.ending == ""
    assert bob.ending_comment == ""


def test_the_preview_believes_only_role_files_the_verified_snapshot_lists(notary_url, notary_cli):
    repo = Repo(notary_url)
    bundle = make_bundle("bob")
    repo.delegate(key_of(bundle), "qa")
    notary_cli.sign(repo.gun, person="bob", key_pem=bundle.key_pem, tag="v1", roles=[RELEASES, QA])
    change = RemoveKey(key_of(bundle), (RELEASES, QA))
    with TamperingProxy(notary_url) as proxy:
        client = repo.new_client(proxy.url)
        honest = change_impact(client, change, now=now())
        assert {role.name: role.tags_losing_signature for role in honest.losing} == {
            RELEASES: ("v1",),
            QA: ("v1",),
        }
        # The server (or someone in the middle) serves other bytes for targets/releases.
        proxy.tamper = lambda path, body: (
            flip_byte_inside(body, b'"targets":{"')
            if path.rsplit("/", 1)[-1].startswith("releases.")
            else None
        )
        tampered = change_impact(client, change, now=now())
    releases = next(role for role in tampered.roles if role.name == RELEASES)
    assert not releases.verifies_now
    assert "does not match its length and hashes" in releases.problem
    assert [role.name for role in tampered.losing] == [QA]

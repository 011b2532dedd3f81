"""The company directory: LDAP login, teams and owners from groups, and the directory sync.

Against a real slapd seeded with deploy/ldap/demo.ldif: alice (it-ops, owner of dev/nginx), bob
and carol (qa), dave and erin (dev; erin disabled). The Notary side is checked with the `notary`
CLI against the real notary-server.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from delegations import directory, selectors, services
from delegations.audit.chain import DIRECTORY_SYNC_ACTOR
from delegations.exceptions import IllegalTransition
from delegations.forms import DIRECTORY_DOWN_MESSAGE
from delegations.models import (
    AuditEvent,
    Delegation,
    DirectoryAccount,
    EndReason,
    Notification,
    RequestStatus,
)
from delegations.notary import RELEASES
from tests.conftest import start_process, stop_process, wait_for
from tests.directory_settings import DEMO_OWNERS, directory_user, portal_ldap_values
from tests.factories import PASSWORD, make_bundle, make_user, submit_request
from tests.pki import make_ca

pytestmark = [pytest.mark.django_db, pytest.mark.services]

WRONG_PASSWORD = "Please enter a correct username and password"


DEMO_PASSWORD = "demo"  # the demo tree's, deploy/ldap/demo.ldif


def log_in(client, username: str, password: str = DEMO_PASSWORD):
    return client.post(reverse("login"), {"username": username, "password": password}, follow=True)


def team_choices(client) -> list[str]:
    page = client.get(reverse("delegations:request_create")).content.decode()
    select = re.search(r'<select name="team".*?</select>', page, re.S)[0]
    return [value for value in re.findall(r'<option value="([^"]*)"', select) if value]


@pytest.fixture
def nginx(repository):
    """The test repository, owned (as in the demo tree) by the LDAP group owners:dev/nginx."""
    repository.owners_group = DEMO_OWNERS
    repository.save(update_fields=["owners_group"])
    return repository


# -- login -----------------------------------------------------------------------------------------


def test_a_directory_account_logs_in_and_becomes_a_portal_user(client, use_directory):
    response = log_in(client, "bob")
    assert response.redirect_chain, response.content.decode()
    bob = get_user_model().objects.get(username="bob")
    assert response.context["user"] == bob
    assert bob.email == "bob@example.org"
    assert (bob.first_name, bob.is_active, bob.is_staff) == ("Bob", True, False)
    assert not bob.has_usable_password()
    assert DirectoryAccount.objects.get(user=bob).dn == f"uid=bob,{'ou=people,dc=example,dc=org'}"


def test_a_wrong_password_and_a_disabled_account_do_not_log_in(client, use_directory):
    assert WRONG_PASSWORD in log_in(client, "bob", "not-demo").content.decode()
    assert WRONG_PASSWORD in log_in(client, "erin").content.decode()
    assert WRONG_PASSWORD in log_in(client, "nobody").content.decode()
    assert not get_user_model().objects.filter(username__in=["bob", "erin"]).exists()


def test_the_admin_group_makes_portal_administrators(client, use_directory):
    log_in(client, "alice")
    alice = get_user_model().objects.get(username="alice")
    assert alice.is_staff
    assert alice.is_superuser


def test_a_local_password_does_not_outlive_the_directory_account(client, use_directory):
    # bob had a local account before the directory was set up; logging in once links them.
    make_user("bob")
    log_in(client, "bob")
    client.logout()
    bob = get_user_model().objects.get(username="bob")
    bob.set_password(PASSWORD)
    bob.save()
    assert WRONG_PASSWORD in log_in(client, "bob", PASSWORD).content.decode()


def test_a_stopped_directory_gives_a_clear_login_error_and_local_accounts_still_log_in(
    client, use_directory, ldap_tree
):
    make_user("localadmin")
    ldap_tree.stop()
    try:
        response = log_in(client, "bob")
        assert response.status_code == 200
        assert DIRECTORY_DOWN_MESSAGE in response.content.decode().replace("&#x27;", "'")
        response = log_in(client, "localadmin", PASSWORD)
        assert response.context["user"].get_username() == "localadmin"
    finally:
        ldap_tree.start()
    client.logout()
    assert log_in(client, "bob").context["user"].get_username() == "bob"


def test_starttls_and_ldaps_with_the_ca_file(client, use_directory, ldap_tree, tmp_path):
    use_directory(PORTAL_LDAP_START_TLS=True, PORTAL_LDAP_CA_FILE=str(ldap_tree.ca_file))
    assert log_in(client, "bob").context["user"].get_username() == "bob"
    assert selectors.teams_of(get_user_model().objects.get(username="bob")) == ["qa"]
    client.logout()

    use_directory(PORTAL_LDAP_URI=ldap_tree.ldaps_uri, PORTAL_LDAP_CA_FILE=str(ldap_tree.ca_file))
    assert log_in(client, "carol").context["user"].get_username() == "carol"
    client.logout()

    # A directory whose certificate does not chain to the CA file is refused, and said so.
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(make_ca("Some other CA").cert_pem)
    use_directory(PORTAL_LDAP_START_TLS=True, PORTAL_LDAP_CA_FILE=str(other_ca))
    response = log_in(client, "dave")
    assert DIRECTORY_DOWN_MESSAGE in response.content.decode().replace("&#x27;", "'")
    with pytest.raises(directory.DirectoryUnavailable):
        directory.account("dave")


# -- teams and owners ------------------------------------------------------------------------------


def test_the_team_list_shows_only_the_users_own_directory_groups(client, use_directory):
    log_in(client, "bob")
    bob = get_user_model().objects.get(username="bob")
    # A local group left over from before the directory does not count for a directory account.
    make_user("olga", teams=("dev",)).groups.first().user_set.add(bob)
    assert team_choices(client) == ["qa"]
    client.logout()
    log_in(client, "alice")
    assert team_choices(client) == ["it-ops"]


def test_ownership_follows_the_directory_group(client, use_directory, ldap_tree, nginx):
    bob = directory_user("bob")
    alice = directory_user("alice")
    assert selectors.is_owner(alice, nginx)
    assert not selectors.is_owner(bob, nginx)
    assert list(selectors.owners_of(nginx)) == [alice]

    owners_dn = ldap_tree.group_dn(DEMO_OWNERS)
    ldap_tree.add_member(owners_dn, ldap_tree.user_dn("bob"))
    ldap_tree.remove_member(owners_dn, ldap_tree.user_dn("alice"))
    assert selectors.is_owner(bob, nginx)
    assert not selectors.is_owner(alice, nginx)
    assert list(selectors.owners_of(nginx)) == [bob]

    client.force_login(bob, backend="delegations.directory.login.DirectoryBackend")
    assert client.get(reverse("delegations:approval_queue")).status_code == 200


def test_an_owner_who_never_logged_in_is_still_told_of_a_new_request(
    use_directory, nginx, django_capture_on_commit_callbacks
):
    bob = directory_user("bob")
    assert not get_user_model().objects.filter(username="alice").exists()
    with django_capture_on_commit_callbacks(execute=True):
        submit_request(nginx, bob, team="qa")
    alice = get_user_model().objects.get(username="alice")
    assert alice.directory_account.dn.startswith("uid=alice,")
    assert not alice.has_usable_password()
    told = Notification.objects.get(recipient=alice, kind="request_submitted")
    services.notification_send(notification_id=told.pk)
    assert [message.to for message in mail.outbox] == [["alice@example.org"]]


def test_a_disabled_owner_owns_nothing(use_directory, ldap_tree, nginx):
    alice = directory_user("alice")
    ldap_tree.disable("alice")
    assert list(selectors.owners_of(nginx)) == []
    assert not selectors.is_owner(alice, nginx)  # her session may outlive the sync


def test_a_username_in_capitals_is_one_portal_user(client, use_directory, ldap_tree, nginx):
    ldap_tree.add_member(ldap_tree.group_dn(DEMO_OWNERS), ldap_tree.add_user("JSmith"))
    log_in(client, "jsmith")
    # Reading owners writes nothing: alice, who never logged in, is made a portal user first.
    provisioned = services.repository_owners_provision(repository=nginx)
    owners = [owner.get_username() for owner in provisioned]
    assert owners == ["alice", "jsmith"]
    assert get_user_model().objects.filter(username__iexact="jsmith").count() == 1
    assert services.directory_sync().disabled == []


def test_a_disabled_account_cannot_log_in_again(client, use_directory, ldap_tree):
    log_in(client, "bob")
    client.logout()
    ldap_tree.disable("bob")
    assert WRONG_PASSWORD in log_in(client, "bob").content.decode()


def test_logging_in_enables_again_an_account_the_sync_disabled_through_the_same_service(
    client, use_directory, ldap_tree
):
    log_in(client, "bob")
    client.logout()
    ldap_tree.disable("bob")
    assert services.directory_sync().disabled == ["bob"]
    ldap_tree.enable("bob")

    assert log_in(client, "bob").redirect_chain
    bob = get_user_model().objects.get(username="bob")
    assert bob.is_active
    assert bob.directory_account.disabled_at is None
    enabled = AuditEvent.objects.get(action="account.enabled")
    assert (enabled.actor, enabled.details["username"]) == (bob, "bob")
    # The sync has nothing more to enable.
    assert services.directory_sync().enabled == []


def test_a_local_administrator_is_not_taken_over_by_the_directory(client, use_directory, nginx):
    make_user("alice").__class__.objects.filter(username="alice").update(is_staff=True)
    assert WRONG_PASSWORD in log_in(client, "alice").content.decode()
    assert list(selectors.owners_of(nginx)) == []
    assert not DirectoryAccount.objects.exists()


def test_a_cached_answer_carries_pages_through_a_directory_restart(
    use_directory, ldap_tree, settings
):
    use_directory(PORTAL_DIRECTORY_CACHE_SECONDS=60)
    bob, carol = directory_user("bob"), directory_user("carol")
    assert selectors.teams_of(bob) == ["qa"]
    ldap_tree.stop()
    try:
        assert selectors.teams_of(bob) == ["qa"]
        # Never asked before, so nothing to fall back on; and the sync never uses old answers.
        with pytest.raises(directory.DirectoryUnavailable):
            selectors.teams_of(carol)
        with pytest.raises(directory.DirectoryUnavailable):
            directory.memberships(bob.directory_account.dn, fresh=True)
    finally:
        ldap_tree.start()


def test_a_page_met_by_a_directory_outage_says_so(client, use_directory, ldap_tree):
    log_in(client, "bob")
    ldap_tree.stop()
    try:
        response = client.get(reverse("delegations:request_create"))
    finally:
        ldap_tree.start()
    assert response.status_code == 503
    assert "company directory cannot be reached" in response.content.decode()


# -- the sync --------------------------------------------------------------------------------------


@pytest.fixture
def delegated(use_directory, nginx, run_jobs, django_capture_on_commit_callbacks):
    """Take a directory member's request through alice's approval and the worker."""
    alice = directory_user("alice")

    def delegate(username: str, team: str) -> Delegation:
        member = directory_user(username)
        request = submit_request(nginx, member, team=team, bundle=make_bundle(username))
        with django_capture_on_commit_callbacks(execute=True):
            services.request_approve(request_id=request.pk, acting_user=alice)
        run_jobs()
        request.refresh_from_db()
        assert request.status == RequestStatus.DELEGATED, request.failure_reason
        return Delegation.objects.get(request=request)

    return delegate


def keys_in(notary_cli, gun: str) -> dict[str, set[str]]:
    return {role: set(row["keys"]) for role, row in notary_cli.delegations(gun).items()}


def sync_and_apply(run_jobs, capture, **options):
    """Run the sync, the worker's ends it queues, and the emails those queue."""
    with capture(execute=True):
        report = services.directory_sync(**options)
    with capture(execute=True):
        run_jobs()
    run_jobs()
    return report


def test_leaving_qa_in_the_directory_revokes_the_delegation_and_tells_member_and_owners(
    nginx, delegated, ldap_tree, notary_cli, run_jobs, django_capture_on_commit_callbacks
):
    bob = delegated("bob", "qa")
    carol = delegated("carol", "qa")
    assert keys_in(notary_cli, nginx.gun)["targets/qa"] == {
        bob.canonical_key_id,
        carol.canonical_key_id,
    }
    mail.outbox.clear()

    ldap_tree.remove_member(ldap_tree.team_dn("qa"), ldap_tree.user_dn("bob"))
    report = sync_and_apply(run_jobs, django_capture_on_commit_callbacks)

    assert [(e.member, e.team, e.reason) for e in report.endings] == [
        ("bob", "qa", EndReason.LEFT_TEAM)
    ]
    roles = keys_in(notary_cli, nginx.gun)
    assert roles[RELEASES] == roles["targets/qa"] == {carol.canonical_key_id}
    bob.refresh_from_db()
    assert bob.end_reason == EndReason.LEFT_TEAM
    assert bob.ended_at is not None
    assert bob.request.status == RequestStatus.REVOKED
    assert get_user_model().objects.get(username="bob").is_active  # still in the company

    events = AuditEvent.objects.filter(request=bob.request).order_by("pk")
    asked = events.get(action="delegation.left_team")
    assert asked.actor_name == DIRECTORY_SYNC_ACTOR
    assert asked.actor is None
    assert "no longer in team qa" in asked.details["comment"]
    assert events.get(action="request.revoked").actor_name == DIRECTORY_SYNC_ACTOR

    told = sorted(address for message in mail.outbox for address in message.to)
    assert told == ["alice@example.org", "bob@example.org"]

    # Nothing more on the next run.
    assert sync_and_apply(run_jobs, django_capture_on_commit_callbacks).endings == []


def test_a_pending_request_of_a_member_who_left_the_team_is_withdrawn_and_they_are_told(
    nginx, delegated, ldap_tree, run_jobs, django_capture_on_commit_callbacks
):
    delegated("carol", "qa")  # a directory account the sync checks, staying in qa
    bob = directory_user("bob")
    pending = submit_request(nginx, bob, team="qa", bundle=make_bundle("bob"))
    mail.outbox.clear()

    ldap_tree.remove_member(ldap_tree.team_dn("qa"), ldap_tree.user_dn("bob"))
    report = sync_and_apply(run_jobs, django_capture_on_commit_callbacks)

    assert [(w.member, w.team, w.reason) for w in report.withdrawals] == [
        ("bob", "qa", EndReason.LEFT_TEAM)
    ]
    pending.refresh_from_db()
    assert pending.status == RequestStatus.WITHDRAWN
    withdrawn = AuditEvent.objects.get(request=pending, action="request.withdrawn")
    assert withdrawn.actor_name == DIRECTORY_SYNC_ACTOR
    (told,) = mail.outbox
    assert told.to == ["bob@example.org"]
    assert "no longer lists you in team qa" in told.body
    assert sync_and_apply(run_jobs, django_capture_on_commit_callbacks).withdrawals == []


def test_a_disabled_account_loses_every_delegation_and_its_session(
    client, nginx, delegated, ldap_tree, notary_cli, run_jobs, django_capture_on_commit_callbacks
):
    carol = delegated("carol", "qa")
    dave = delegated("dave", "dev")
    log_in(client, "carol")
    assert client.get(reverse("delegations:request_list")).status_code == 200

    ldap_tree.disable("carol")
    report = sync_and_apply(run_jobs, django_capture_on_commit_callbacks)

    assert report.disabled == ["carol"]
    carol.refresh_from_db()
    assert carol.end_reason == EndReason.DISABLED
    roles = keys_in(notary_cli, nginx.gun)
    assert roles[RELEASES] == {dave.canonical_key_id}
    assert "targets/qa" not in roles or not roles["targets/qa"]
    assert not get_user_model().objects.get(username="carol").is_active
    assert client.get(reverse("delegations:request_list")).status_code == 302  # logged out
    assert AuditEvent.objects.get(action="account.disabled").actor_name == DIRECTORY_SYNC_ACTOR

    # Enabled again in the directory: the account comes back, the delegation does not.
    ldap_tree.enable("carol")
    report = sync_and_apply(run_jobs, django_capture_on_commit_callbacks)
    assert report.enabled == ["carol"]
    assert report.endings == []
    assert get_user_model().objects.get(username="carol").is_active


def test_a_directory_outage_right_after_a_publish_does_not_undo_its_record(
    nginx, delegated, ldap_tree, notary_cli, run_jobs, django_capture_on_commit_callbacks
):
    bob = delegated("bob", "qa")
    services.delegation_give_up(delegation_id=bob.pk, acting_user=bob.member)  # owners are told
    ldap_tree.stop()
    try:
        run = services.repository_publish(repository_id=nginx.pk)
    finally:
        ldap_tree.start()
    assert run.ended == [bob.pk]
    bob.refresh_from_db()
    assert bob.ended_at is not None
    assert bob.request.status == RequestStatus.REVOKED
    assert bob.canonical_key_id not in keys_in(notary_cli, nginx.gun).get(RELEASES, set())


def test_a_sync_that_cannot_read_the_directory_changes_nothing(
    delegated, ldap_tree, run_jobs, django_capture_on_commit_callbacks
):
    bob = delegated("bob", "qa")
    ldap_tree.stop()
    try:
        with pytest.raises(directory.DirectoryUnavailable):
            services.directory_sync()
    finally:
        ldap_tree.start()
    bob.refresh_from_db()
    assert bob.is_active
    assert not bob.ending


def test_a_sync_that_would_end_too_many_delegations_at_once_ends_none(
    use_directory, delegated, ldap_tree, run_jobs, django_capture_on_commit_callbacks
):
    get_user_model().objects.create_superuser("root", "root@example.org", None)
    get_user_model().objects.create_superuser("quiet", "", None)  # no address: not mailed
    bob = delegated("bob", "qa")
    carol = delegated("carol", "qa")
    use_directory(PORTAL_DIRECTORY_SYNC_MAX_ENDINGS=1)
    # A team renamed or moved looks like everyone leaving it.
    ldap_tree.remove_member(ldap_tree.team_dn("qa"), ldap_tree.user_dn("bob"))
    ldap_tree.remove_member(ldap_tree.team_dn("qa"), ldap_tree.user_dn("carol"))

    report = sync_and_apply(run_jobs, django_capture_on_commit_callbacks)
    assert report.held
    assert len(report.endings) == 2
    for delegation in (bob, carol):
        delegation.refresh_from_db()
        assert delegation.is_active
        assert not delegation.ending
    held = AuditEvent.objects.get(action="directory.sync_held")
    assert held.details["would_end"] == 2
    assert held.actor_name == DIRECTORY_SYNC_ACTOR
    # The administrators are mailed: a held sync waits for a person.
    (alert,) = [
        message for message in mail.outbox if "directory sync is holding" in message.subject
    ]
    assert alert.to == ["root@example.org"]
    assert "directory_sync --force" in alert.body

    report = sync_and_apply(run_jobs, django_capture_on_commit_callbacks, force=True)
    assert not report.held
    bob.refresh_from_db()
    assert bob.end_reason == EndReason.LEFT_TEAM


def test_local_accounts_are_left_to_their_local_groups(
    use_directory, repository, people, run_jobs, django_capture_on_commit_callbacks
):
    # The repository fixture's people are local accounts: the sync does not touch them.
    report = sync_and_apply(run_jobs, django_capture_on_commit_callbacks)
    assert report.accounts == 0
    assert report.endings == []
    assert selectors.teams_of(people["bob"]) == ["qa"]


def test_no_directory_means_no_sync():
    assert services.directory_sync().accounts == 0


def test_the_sync_command_lists_what_it_ends(
    use_directory, delegated, ldap_tree, run_jobs, django_capture_on_commit_callbacks
):
    from io import StringIO

    from django.core.management import call_command

    delegated("bob", "qa")
    ldap_tree.remove_member(ldap_tree.team_dn("qa"), ldap_tree.user_dn("bob"))
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("directory_sync", stdout=out)
    assert "ending: bob's delegation" in out.getvalue()
    assert "1 delegations ending" in out.getvalue()


def test_filters_are_escaped(use_directory):
    assert directory.account("*") is None
    assert directory.account("bob)(uid=*") is None
    assert directory.group_members("*") == []


def test_ldap_errors_name_the_problem(use_directory, ldap_tree):
    use_directory(PORTAL_LDAP_BIND_PASSWORD="wrong")
    with pytest.raises(directory.DirectoryUnavailable, match="Invalid credentials"):
        directory.account("bob")


def test_a_request_whose_requester_left_the_team_cannot_be_approved(
    use_directory, nginx, ldap_tree
):
    alice, bob = directory_user("alice"), directory_user("bob")
    request = submit_request(nginx, bob, team="qa")
    ldap_tree.remove_member(ldap_tree.team_dn("qa"), ldap_tree.user_dn("bob"))
    with pytest.raises(IllegalTransition, match="bob is no longer in team qa"):
        services.request_approve(request_id=request.pk, acting_user=alice)
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING
    assert not request.decisions.exists()
    services.request_reject(request_id=request.pk, acting_user=alice, comment="left qa")


def test_the_scheduled_sync_runs_in_the_worker_and_mails_through_smtp(
    use_directory,
    ldap_tree,
    worker_env,
    nginx,
    notary_cli,
    smtp_server,
    tmp_path,
    django_capture_on_commit_callbacks,
):
    """The whole way as deployed: rqworker and rqcron processes configured from the environment,
    the sync queued by the cron scheduler at its start, the emails through a real SMTP server."""
    env = {**worker_env, **{name: str(v) for name, v in portal_ldap_values(ldap_tree).items()}}
    smtp_server.clear()
    worker = start_process(["rqworker", "default", "--with-scheduler"], env, tmp_path / "w.log")
    try:
        alice, bob = directory_user("alice"), directory_user("bob")
        with django_capture_on_commit_callbacks(execute=True):
            request = submit_request(nginx, bob, team="qa")
        with django_capture_on_commit_callbacks(execute=True):
            services.request_approve(request_id=request.pk, acting_user=alice)
        delegation = wait_for(
            lambda: Delegation.objects.filter(request=request).first(), what="bob's delegation"
        )
        ldap_tree.remove_member(ldap_tree.team_dn("qa"), ldap_tree.user_dn("bob"))
        cron = start_process(["rqcron", "delegations.cron"], env, tmp_path / "cron.log")
        try:
            wait_for(
                lambda: Delegation.objects.get(pk=delegation.pk).ended_at,
                what="the scheduled sync to end bob's delegation",
            )
            told = wait_for(
                lambda: (
                    {
                        to
                        for recipients, message in smtp_server.messages()
                        if "left the team" in message["Subject"]
                        for to in recipients
                    }
                    >= {"alice@example.org", "bob@example.org"}
                ),
                what="bob and alice to be mailed",
            )
        finally:
            stop_process(cron, tmp_path / "cron.log")
    finally:
        stop_process(worker, tmp_path / "w.log")
    assert told
    assert delegation.canonical_key_id not in str(notary_cli.delegations(nginx.gun))
    assert Delegation.objects.get(pk=delegation.pk).end_reason == EndReason.LEFT_TEAM


def test_a_wrong_base_or_attribute_spelling_is_never_read_as_everyone_leaving(
    use_directory, delegated, run_jobs, django_capture_on_commit_callbacks
):
    bob = delegated("bob", "qa")
    use_directory(PORTAL_LDAP_USER_BASE="ou=persons,dc=example,dc=org")
    with pytest.raises(directory.DirectoryUnavailable, match="does not exist"):
        services.directory_sync()
    use_directory(PORTAL_LDAP_TEAM_BASE="ou=squads,ou=groups,dc=example,dc=org")
    with pytest.raises(directory.DirectoryUnavailable, match="does not exist"):
        services.directory_sync()
    use_directory(PORTAL_LDAP_GROUP_MEMBER_ATTRIBUTE="Member")  # names are case-insensitive
    assert sync_and_apply(run_jobs, django_capture_on_commit_callbacks).endings == []
    bob.refresh_from_db()
    assert bob.is_active
    assert not bob.ending
    assert get_user_model().objects.filter(is_active=False).count() == 0


def test_an_end_that_failed_is_not_asked_again_every_run(
    delegated, ldap_tree, django_capture_on_commit_callbacks
):
    bob = delegated("bob", "qa")
    ldap_tree.remove_member(ldap_tree.team_dn("qa"), ldap_tree.user_dn("bob"))
    assert len(services.directory_sync().endings) == 1
    services.delegation_end_fail(delegation_id=bob.pk, reason="the server refused it")
    assert services.directory_sync().endings == []
    assert Notification.objects.filter(kind="delegation_end_failed").count() == 1


def test_an_end_that_failed_is_not_asked_again_after_an_owners_revoke_failed_too(
    delegated, ldap_tree, nginx, django_capture_on_commit_callbacks
):
    bob = delegated("bob", "qa")
    alice = directory_user("alice")
    ldap_tree.remove_member(ldap_tree.team_dn("qa"), ldap_tree.user_dn("bob"))
    assert len(services.directory_sync().endings) == 1
    services.delegation_end_fail(delegation_id=bob.pk, reason="the server refused it")
    # An owner tries by hand, as the email suggests, and that fails as well.
    services.delegation_revoke(delegation_id=bob.pk, acting_user=alice, comment="left qa")
    services.delegation_end_fail(delegation_id=bob.pk, reason="still refused")
    assert services.directory_sync().endings == []

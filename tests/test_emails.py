"""Who is told what: each notification reaches exactly the people concerned.

The jobs run through the real queue (Redis) and a real RQ worker in this process, so the
messages land in Django's locmem outbox.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from delegations import emails, services
from delegations.emails import KINDS
from delegations.models import (
    Delegation,
    EndReason,
    Extension,
    Notification,
    NotificationKind,
    Repository,
)
from delegations.services.reminders import reminders_send
from stack.processes import free_port
from tests.factories import make_user, submission

pytestmark = pytest.mark.django_db


@pytest.fixture
def flow(repository, people, run_jobs, django_capture_on_commit_callbacks):
    """Runs a service, commits, and runs the jobs it queued; returns the mails sent."""

    def step(service, **kwargs):
        mail.outbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            result = service(**kwargs)
        # Jobs run inside the test's transaction, so what they queue on commit is captured
        # and run too, until nothing new is queued.
        while True:
            with django_capture_on_commit_callbacks(execute=True) as queued:
                run_jobs()
            if not queued:
                break
        return result, {tuple(message.to): message for message in mail.outbox}

    return step


def test_a_new_request_is_mailed_to_that_repositorys_owners_only(flow, repository, people):
    make_user("zed", teams=("qa",), owns=("owners:other/repo",))  # owns something else

    request, sent = flow(services.request_submit, **submission(repository, people["bob"]))

    assert set(sent) == {("alice@example.org",), ("olga@example.org",)}
    message = sent[("alice@example.org",)]
    assert "bob asks to sign as team qa" in message.subject
    assert f"http://portal.test/requests/{request.pk}/" in message.body
    assert "http://portal.test/approvals/" in message.body
    assert "<nginx> & friends" in message.body  # plain text is not HTML-escaped
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert "&lt;nginx&gt; &amp; friends" in html
    assert f'href="http://portal.test/requests/{request.pk}/"' in html


def test_an_owners_own_request_is_not_mailed_to_them_as_owner(flow, repository, people):
    _, sent = flow(services.request_submit, **submission(repository, people["olga"]))
    assert set(sent) == {("alice@example.org",)}


def test_decisions_are_mailed_to_the_requester_naming_the_owner(flow, repository, people):
    request, _ = flow(services.request_submit, **submission(repository, people["bob"]))
    _, sent = flow(
        services.request_reject,
        request_id=request.pk,
        acting_user=people["alice"],
        comment="Use your qa bundle",
    )
    assert set(sent) == {("bob@example.org",)}
    message = sent[("bob@example.org",)]
    assert "was rejected by alice" in message.subject
    assert "Use your qa bundle" in message.body


def test_approval_then_delegation_mail_the_requester_with_the_signing_commands(
    flow, repository, people
):
    request, _ = flow(services.request_submit, **submission(repository, people["bob"]))
    _, sent = flow(
        services.request_approve, request_id=request.pk, acting_user=people["alice"], comment="ok"
    )
    # The approval queued the apply job too, so the worker delegated and mailed again.
    assert set(sent) == {("bob@example.org",)}
    subjects = sorted(message.subject for message in mail.outbox)
    assert any("was approved by alice" in subject for subject in subjects)
    delegated = next(m for m in mail.outbox if "You can now sign" in m.subject)
    assert "docker trust key load key.pem --name bob" in delegated.body
    assert f"docker trust sign {repository.gun}:<tag>" in delegated.body
    assert "--roles targets/releases --roles targets/qa" in delegated.body
    assert request.canonical_key_id in delegated.body


def test_a_failure_is_mailed_to_the_requester_and_the_owners(flow, repository, people):
    request, _ = flow(services.request_submit, **submission(repository, people["bob"]))
    repository.notary_url = f"http://127.0.0.1:{free_port()}"
    repository.save(update_fields=["notary_url"])
    _, sent = flow(services.request_approve, request_id=request.pk, acting_user=people["alice"])
    # The first attempt meets a transient error and is scheduled for retry: nothing failed yet.
    assert all("failed" not in message.subject for message in mail.outbox)

    _, sent = flow(services.request_fail, request_id=request.pk, reason="the server is gone")

    assert set(sent) == {("bob@example.org",), ("alice@example.org",), ("olga@example.org",)}
    assert "the server is gone" in sent[("alice@example.org",)].body
    assert "please look into" in sent[("alice@example.org",)].body
    assert "please look into" not in sent[("bob@example.org",)].body


# -- who hears about what, for every kind ---------------------------------------------------------
# Each test asserts the exact set of addresses. Besides the repository's people, an owner of
# another repository (`stranger`) and a superuser with an address are about: neither is ever told.


@pytest.fixture(autouse=True)
def bystanders(stranger):
    get_user_model().objects.create_superuser("root", "root@example.org", "pw")


@pytest.fixture
def delegate(flow, repository, people):
    """Take a member's request through approval and the worker (real Notary)."""

    def delegate(member, *, team: str = "qa", bundle=None) -> Delegation:
        request, _ = flow(
            services.request_submit, **submission(repository, member, team=team, bundle=bundle)
        )
        approver = people["olga"] if member == people["alice"] else people["alice"]
        flow(services.request_approve, request_id=request.pk, acting_user=approver)
        return Delegation.objects.select_related("request").get(request=request)

    return delegate


def test_with_several_approvals_the_requester_hears_once_naming_every_approver(
    flow, repository, people
):
    Repository.objects.filter(pk=repository.pk).update(approvals_required=2)
    request, _ = flow(services.request_submit, **submission(repository, people["bob"]))

    _, sent = flow(
        services.request_approve, request_id=request.pk, acting_user=people["alice"], comment="ok"
    )
    assert sent == {}  # one approval of two decides nothing yet

    flow(
        services.request_approve,
        request_id=request.pk,
        acting_user=people["olga"],
        comment="fine by me",
    )
    decided = [m for m in mail.outbox if "was approved" in m.subject]
    assert [m.to for m in decided] == [["bob@example.org"]]
    assert "was approved by alice and olga" in decided[0].subject
    assert "alice commented: ok" in decided[0].body
    assert "olga commented: fine by me" in decided[0].body


def test_an_expiring_request_reminds_its_requester_only(flow, repository, people):
    request, _ = flow(services.request_submit, **submission(repository, people["bob"]))
    expires_at = request.created_at + timedelta(days=7)

    _, sent = flow(reminders_send, now=expires_at - timedelta(hours=2))

    assert set(sent) == {("bob@example.org",)}
    message = sent[("bob@example.org",)]
    assert f"expires on {expires_at:%Y-%m-%d %H:%M} UTC without a decision" in message.subject
    assert f"http://portal.test/requests/{request.pk}/" in message.body


def test_an_expired_request_is_mailed_to_its_requester_only(flow, repository, people):
    request, _ = flow(services.request_submit, **submission(repository, people["bob"]))
    _, sent = flow(services.requests_expire, now=request.created_at + timedelta(days=8))
    assert set(sent) == {("bob@example.org",)}
    assert "http://portal.test/requests/new/" in sent[("bob@example.org",)].body


def test_a_revocation_is_mailed_to_the_member_only(flow, delegate, people):
    bob = delegate(people["bob"])
    _, sent = flow(
        services.delegation_revoke,
        delegation_id=bob.pk,
        acting_user=people["alice"],
        comment="moved teams",
    )
    assert set(sent) == {("bob@example.org",)}


def test_an_owner_revoking_their_own_delegation_is_not_mailed(flow, delegate, people):
    olga = delegate(people["olga"])
    _, sent = flow(
        services.delegation_revoke,
        delegation_id=olga.pk,
        acting_user=people["olga"],
        comment="not needed",
    )
    assert Delegation.objects.get(pk=olga.pk).end_reason == EndReason.REVOKED
    assert sent == {}


def test_giving_up_is_mailed_to_the_owners_but_not_the_member(flow, delegate, people):
    bob, olga = delegate(people["bob"]), delegate(people["olga"])

    _, sent = flow(services.delegation_give_up, delegation_id=bob.pk, acting_user=people["bob"])
    assert set(sent) == {("alice@example.org",), ("olga@example.org",)}

    _, sent = flow(services.delegation_give_up, delegation_id=olga.pk, acting_user=people["olga"])
    assert set(sent) == {("alice@example.org",)}


def test_a_failed_end_is_mailed_to_who_asked_and_the_owners(flow, delegate, people):
    bob = delegate(people["bob"])
    # Asked, but its job never runs here: the end is then given up as the worker would.
    services.delegation_revoke(delegation_id=bob.pk, acting_user=people["alice"], comment="bye")

    _, sent = flow(services.delegation_end_fail, delegation_id=bob.pk, reason="no targets key")

    assert set(sent) == {("alice@example.org",), ("olga@example.org",)}
    assert "no targets key" in sent[("olga@example.org",)].body


def test_a_failed_directory_end_is_mailed_to_the_owners_saying_they_revoke_it_by_hand(
    flow, delegate, people
):
    bob = delegate(people["bob"])
    Delegation.objects.filter(pk=bob.pk).update(ending=EndReason.LEFT_TEAM)  # as the sync asks

    _, sent = flow(services.delegation_end_fail, delegation_id=bob.pk, reason="no targets key")

    assert set(sent) == {("alice@example.org",), ("olga@example.org",)}
    assert "directory sync does not ask for this end again" in sent[("alice@example.org",)].body


def directory_ended(flow, delegation, reason: str) -> dict:
    """End `delegation` as the directory sync does, and return the emails it owes."""
    Delegation.objects.filter(pk=delegation.pk).update(
        ending=reason, end_reason=reason, ended_at=timezone.now()
    )
    _, sent = flow(
        services.notifications_create,
        kind="delegation_directory_revoked",
        request=delegation.request,
        owners=services.repository_owners_provision(repository=delegation.repository),
        now=timezone.now(),
    )
    return sent


def test_a_directory_end_is_mailed_to_the_member_and_the_owners(flow, delegate, people):
    """The directory sync ends delegations itself; what it owes is this notification."""
    bob = delegate(people["bob"])
    sent = directory_ended(flow, bob, EndReason.LEFT_TEAM)

    assert set(sent) == {("bob@example.org",), ("alice@example.org",), ("olga@example.org",)}
    to_bob, to_alice = sent[("bob@example.org",)], sent[("alice@example.org",)]
    assert "Your delegation as team qa ended: you left the team" in to_bob.subject
    assert "bob's delegation as team qa ended: they left the team" in to_alice.subject
    for message in (to_bob, to_alice):
        assert bob.canonical_key_id in message.body
        assert "targets/releases and targets/qa" in message.body
    witness = (
        f"notary -s {bob.repository.notary_url} -d ~/.docker/trust "
        f"witness -p {bob.repository.gun} targets/releases targets/qa"
    )
    assert witness in to_alice.body
    assert witness not in to_bob.body


def test_a_directory_end_names_a_disabled_account(flow, delegate, people):
    sent = directory_ended(flow, delegate(people["bob"]), EndReason.DISABLED)
    assert "your account was disabled" in sent[("bob@example.org",)].subject
    assert "their account was disabled" in sent[("olga@example.org",)].subject


def test_an_expiring_certificate_reminds_the_member_and_the_owners(flow, delegate, people):
    bob = delegate(people["bob"])

    _, sent = flow(reminders_send, now=bob.certificate_expires_at - timedelta(days=30))

    assert set(sent) == {("bob@example.org",), ("alice@example.org",), ("olga@example.org",)}
    to_bob, to_alice = sent[("bob@example.org",)], sent[("alice@example.org",)]
    renew_url = f"http://portal.test/delegations/{bob.pk}/renew/"
    assert "Your certificate for signing as team qa expires in 30 days" in to_bob.subject
    assert renew_url in to_bob.body
    assert "bob's certificate for signing as team qa expires in 30 days" in to_alice.subject
    assert renew_url not in to_alice.body
    assert "the portal takes this key out" in to_alice.body
    assert "http://portal.test/delegations/" in to_alice.body


def test_a_member_already_renewing_is_not_reminded_but_the_owners_are(
    flow, delegate, repository, people
):
    bob = delegate(people["bob"])
    renewal, _ = flow(services.request_submit, **submission(repository, people["bob"]), renews=bob)

    _, sent = flow(reminders_send, now=bob.certificate_expires_at - timedelta(days=7))

    assert set(sent) == {("alice@example.org",), ("olga@example.org",)}
    body = sent[("alice@example.org",)].body
    assert f"bob has asked to renew it (request #{renewal.pk}, pending)" in body
    assert f"http://portal.test/requests/{renewal.pk}/" in body


def test_an_owners_own_expiring_certificate_reminds_them_as_its_member(flow, delegate, people):
    olga = delegate(people["olga"])
    _, sent = flow(reminders_send, now=olga.certificate_expires_at - timedelta(days=7))
    assert set(sent) == {("olga@example.org",), ("alice@example.org",)}
    assert "Your certificate" in sent[("olga@example.org",)].subject


# -- every kind renders -----------------------------------------------------------------------

HTML_TAG = re.compile(
    r"</?(a|p|br|strong|em|code|pre|blockquote|table|tr|th|td|ol|ul|li|div|span|html|body)\b[^>]*>"
)


def test_every_kind_has_its_three_templates_and_no_template_is_left_over():
    folder = Path(settings.BASE_DIR) / "templates" / "delegations" / "emails"
    templates = {path.name for path in folder.iterdir()} - {"base.html"}
    # Drift's is about a finding, a review's about a review, not a request.
    kinds = [
        *KINDS,
        NotificationKind.DRIFT_FOUND,
        NotificationKind.REVIEW_OPENED,
        NotificationKind.REVIEW_DUE,
    ]
    expected = {f"{kind}{suffix}" for kind in kinds for suffix in (".subject.txt", ".txt", ".html")}
    assert templates == expected


def test_every_kind_renders_a_subject_line_plain_text_and_html_with_absolute_links(
    flow, delegate, people
):
    bob = delegate(people["bob"])
    services.delegation_revoke(delegation_id=bob.pk, acting_user=people["alice"], comment="x")
    services.delegation_end_fail(delegation_id=bob.pk, reason="the server said no")
    request = bob.request
    base = settings.PORTAL_BASE_URL
    request_url = f"{base}/requests/{request.pk}/"

    extension = Extension.objects.create(
        delegation=bob,
        requested_by=people["bob"],
        until=timezone.localdate() + timedelta(days=30),
        previous_until=timezone.localdate() + timedelta(days=3),
        reason="Q3 <releases>",
        created_at=timezone.now(),
    )

    for kind in KINDS:
        for recipient in (people["bob"], people["alice"]):
            notification = Notification(
                request=request,
                extension=extension if kind.startswith("extension_") else None,
                kind=kind,
                recipient=recipient,
                created_at=bob.certificate_expires_at - timedelta(days=30),
                occasion="30d" if kind == "certificate_expiring" else "",
            )
            email = emails.message(notification)
            html, mimetype = email.alternatives[0]
            where = f"{kind} to {recipient}"
            assert email.subject.strip(), where
            assert "\n" not in email.subject, where
            assert email.to == [recipient.email], where
            assert not HTML_TAG.search(email.body), where
            assert "&lt;" not in email.body, where
            assert request_url in email.body, where
            assert mimetype == "text/html"
            assert f'href="{request_url}"' in html, where
            for link in re.findall(r'href="([^"]*)"', html):
                assert link.startswith(base), f"{where}: {link}"
            # Every URL is a portal link, but the Notary server's in the notary commands.
            text = (email.body + html).replace(request.repository.notary_url, "")
            for link in re.findall(r"https?://[^\s<>\"]+", text):
                assert link.startswith(base), f"{where}: {link}"

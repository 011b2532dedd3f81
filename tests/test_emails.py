"""Who is told what: each notification reaches exactly the people concerned.

The jobs run through the real queue (Redis) and a real RQ worker in this process, so the
messages land in Django's locmem outbox.
"""

from __future__ import annotations

import pytest
from django.core import mail

from delegations import services
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

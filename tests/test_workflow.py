"""The whole workflow through the pages, applied by a real `rqworker` process.

Checked from the outside: the `notary` CLI reads the delegation from the notary-server, the
delegate signs with their own key, and the mails arrive at a real SMTP server.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from delegations.models import Delegation, DelegationRequest, Notification, RequestStatus
from delegations.notary import PublicKey
from stack.processes import free_port
from tests.conftest import wait_for
from tests.factories import PASSWORD, make_bundle, signed_form_data

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

ALL_PATHS = ['"" <all paths>']  # as `notary delegation list` shows paths [""]


def log_in(username: str) -> Client:
    client = Client()
    response = client.post(reverse("login"), {"username": username, "password": PASSWORD})
    assert response.status_code == 302, "login failed"
    return client


def request_delegation(client: Client, repository, bundle, team: str) -> DelegationRequest:
    response = client.post(
        reverse("delegations:request_create"),
        signed_form_data(client, repository, bundle, team=team, reason="I publish the releases"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return DelegationRequest.objects.latest("id")


def approve(client: Client, request: DelegationRequest, comment: str = "") -> None:
    response = client.post(
        reverse("delegations:request_approve", args=[request.pk]), {"comment": comment}
    )
    assert response.status_code == 302


def status_becomes(request: DelegationRequest, *statuses: str) -> str:
    def current():
        request.refresh_from_db()
        return request.status if request.status in statuses else None

    return wait_for(current, what=f"request #{request.pk} to become {' or '.join(statuses)}")


def mails_to(smtp_server, address: str, *, containing: str):
    def found():
        return [
            message
            for recipients, message in smtp_server.messages()
            if address in recipients and containing in message["Subject"]
        ]

    return wait_for(found, what=f"a mail to {address} about {containing!r}")


def test_an_approved_request_is_delegated_by_the_worker_and_the_member_signs(
    rq_worker, repository, people, notary_cli, smtp_server
):
    bob_bundle = make_bundle("bob")
    bob, alice = log_in("bob"), log_in("alice")

    request = request_delegation(bob, repository, bob_bundle, "qa")
    new_request_mail = mails_to(smtp_server, "alice@example.org", containing="asks to sign")[0]
    approve(alice, request, comment="welcome to releases")

    assert status_becomes(request, RequestStatus.DELEGATED, RequestStatus.FAILED) == "delegated"
    canonical = PublicKey.from_certificate(bob_bundle.certificate).canonical_id
    assert notary_cli.delegations(repository.gun) == {
        "targets/qa": {"paths": ALL_PATHS, "keys": [canonical], "threshold": "1"},
        "targets/releases": {"paths": ALL_PATHS, "keys": [canonical], "threshold": "1"},
    }

    # The member holds the private key of the certificate, and signs with it.
    listing = notary_cli.sign(
        repository.gun,
        person="bob",
        key_pem=bob_bundle.key_pem,
        tag="v1.0",
        roles=["targets/releases", "targets/qa"],
    )
    assert "v1.0" in listing

    # The request page shows the key ID as the CLI does, and how to sign.
    page = bob.get(reverse("delegations:request_detail", args=[request.pk])).content.decode()
    assert ">Delegated</span>" in page
    assert canonical in page
    assert f"docker trust sign {repository.gun}:&lt;tag&gt;" in page

    # Mail: the owner heard of the request; the requester of the decision and the delegation.
    assert "bob" in new_request_mail["Subject"]
    decided = mails_to(smtp_server, "bob@example.org", containing="was approved by alice")[0]
    assert "welcome to releases" in decided.get_body(("plain",)).get_content()
    delegated = mails_to(smtp_server, "bob@example.org", containing="You can now sign")[0]
    assert delegated.is_multipart()
    text = delegated.get_body(("plain",)).get_content()
    html = delegated.get_body(("html",)).get_content()
    assert "docker trust key load key.pem --name bob" in text
    assert f"http://portal.test/requests/{request.pk}/" in html
    everyone = {address for recipients, _ in smtp_server.messages() for address in recipients}
    assert "dave@example.org" not in everyone


def test_members_of_two_teams_are_both_delegated_and_the_first_stays(
    rq_worker, repository, people, notary_cli
):
    bob_bundle, dave_bundle = make_bundle("bob"), make_bundle("dave")
    alice = log_in("alice")

    first = request_delegation(log_in("bob"), repository, bob_bundle, "qa")
    approve(alice, first)
    assert status_becomes(first, RequestStatus.DELEGATED, RequestStatus.FAILED) == "delegated"

    second = request_delegation(log_in("dave"), repository, dave_bundle, "dev")
    approve(alice, second)
    assert status_becomes(second, RequestStatus.DELEGATED, RequestStatus.FAILED) == "delegated"

    bob_id = PublicKey.from_certificate(bob_bundle.certificate).canonical_id
    dave_id = PublicKey.from_certificate(dave_bundle.certificate).canonical_id
    listed = notary_cli.delegations(repository.gun)
    assert listed["targets/releases"]["keys"] == [bob_id, dave_id]
    assert listed["targets/qa"]["keys"] == [bob_id]
    assert listed["targets/dev"]["keys"] == [dave_id]
    assert Delegation.objects.filter(ended_at__isnull=True).count() == 2


def test_an_unreachable_notary_is_retried_then_fails_and_everyone_concerned_hears(
    rq_worker, start_rq_cron, repository, people, smtp_server, settings
):
    repository.notary_url = f"http://127.0.0.1:{free_port()}"
    repository.save(update_fields=["notary_url"])
    request = request_delegation(log_in("bob"), repository, make_bundle("bob"), "qa")
    approve(log_in("alice"), request)
    start_rq_cron()  # the sweep queues the repository again once each back-off is over

    assert status_becomes(request, RequestStatus.DELEGATED, RequestStatus.FAILED) == "failed"
    assert "kept failing" in request.failure_reason
    assert request.publish_attempts == settings.PORTAL_PUBLISH_ATTEMPTS
    for address in ("bob@example.org", "alice@example.org"):
        failure = mails_to(smtp_server, address, containing="failed")[0]
        assert "cannot reach" in failure.get_body(("plain",)).get_content()


def test_an_approval_made_while_redis_was_down_is_applied_by_the_cron_sweep(
    rq_worker, start_rq_cron, repository, people, notary_cli, settings, redis_url
):
    bundle = make_bundle("bob")
    request = request_delegation(log_in("bob"), repository, bundle, "qa")

    queues = settings.RQ_QUEUES
    settings.RQ_QUEUES = {
        "default": {**queues["default"], "URL": f"redis://127.0.0.1:{free_port()}/0"}
    }
    approve(log_in("alice"), request)  # the decision stands although its job was not queued
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED

    settings.RQ_QUEUES = queues  # Redis is back; the sweep finds the approval without a job
    start_rq_cron()

    assert status_becomes(request, RequestStatus.DELEGATED, RequestStatus.FAILED) == "delegated"
    canonical = PublicKey.from_certificate(bundle.certificate).canonical_id
    assert notary_cli.delegations(repository.gun)["targets/releases"]["keys"] == [canonical]


def test_a_refused_mailbox_is_retried_alone_and_nobody_gets_a_mail_twice(
    rq_worker, repository, people, smtp_server
):
    smtp_server.refused.add("olga@example.org")
    request = request_delegation(log_in("bob"), repository, make_bundle("bob"), "qa")
    mails_to(smtp_server, "alice@example.org", containing="asks to sign")
    olgas = Notification.objects.get(request=request, recipient__username="olga")
    wait_for(
        lambda: Notification.objects.get(pk=olgas.pk).attempts >= 1,
        what="the first delivery to olga to fail",
    )
    assert "Mailbox unavailable" in Notification.objects.get(pk=olgas.pk).last_error

    smtp_server.refused.clear()  # the relay takes mail for olga again; the retry delivers
    mails_to(smtp_server, "olga@example.org", containing="asks to sign")
    delivered = [recipients for recipients, _ in smtp_server.messages()]
    assert delivered.count(["alice@example.org"]) == 1
    assert delivered.count(["olga@example.org"]) == 1

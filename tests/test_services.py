"""The workflow's services: state machine, permissions, audit chain, applying to Notary."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.utils import timezone

from delegations import services, tasks, trust
from delegations.audit.chain import GENESIS_HASH, hash_of
from delegations.exceptions import IllegalTransition, InvalidInput, NotAllowed, SelfApproval
from delegations.models import (
    AuditEvent,
    Decision,
    Delegation,
    DelegationRequest,
    KeyRole,
    RequestStatus,
)
from delegations.notary import PublicKey, SigningKey
from stack.processes import free_port
from tests.factories import make_bundle, submission, submit_request

pytestmark = pytest.mark.django_db


def test_submitting_makes_a_pending_request_with_an_audit_event(repository, people):
    request = submit_request(repository, people["bob"])
    assert request.status == RequestStatus.PENDING
    assert request.role_names == ["targets/releases", "targets/qa"]
    event = AuditEvent.objects.get(request=request)
    assert (event.action, event.actor_name) == ("request.submitted", "bob")
    assert event.details["canonical_key_id"] == request.canonical_key_id


def test_members_request_only_for_their_own_teams(repository, people):
    with pytest.raises(NotAllowed, match="not a member of team dev"):
        submit_request(repository, people["bob"], team="dev")
    assert not DelegationRequest.objects.exists()


def test_a_reason_is_required(repository, people):
    with pytest.raises(InvalidInput):
        services.request_submit(**{**submission(repository, people["bob"]), "reason": "   "})


def test_an_owner_approves_and_the_apply_job_is_queued_on_commit(
    repository, people, rq_queue, django_capture_on_commit_callbacks
):
    request = submit_request(repository, people["bob"])
    rq_queue.empty()
    with django_capture_on_commit_callbacks(execute=True):
        approved = services.request_approve(
            request_id=request.pk, acting_user=people["alice"], comment="ok"
        )
    assert approved.status == RequestStatus.APPROVED
    decision = Decision.objects.get(request=request)
    assert (decision.owner, decision.verdict, decision.comment) == (
        people["alice"],
        "approve",
        "ok",
    )
    queued = [job.func_name for job in rq_queue.jobs]
    assert "delegations.tasks.repository_publish_job" in queued
    assert "delegations.tasks.notification_send_job" in queued


def test_nothing_is_queued_when_the_transaction_rolls_back(repository, people, rq_queue):
    request = submit_request(repository, people["bob"])
    rq_queue.empty()
    # In a test transaction that never commits, on_commit callbacks never run.
    services.request_approve(request_id=request.pk, acting_user=people["alice"])
    assert rq_queue.count == 0


def test_nobody_approves_their_own_request(repository, people):
    request = submit_request(repository, people["olga"])  # olga owns the repository and is in qa
    with pytest.raises(SelfApproval):
        services.request_approve(request_id=request.pk, acting_user=people["olga"])
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING
    assert not Decision.objects.exists()


def test_only_owners_of_the_repository_decide(repository, people):
    request = submit_request(repository, people["bob"])
    with pytest.raises(NotAllowed):
        services.request_approve(request_id=request.pk, acting_user=people["dave"])
    with pytest.raises(NotAllowed):
        services.request_reject(request_id=request.pk, acting_user=people["dave"], comment="no")


def test_the_second_decision_loses(repository, people):
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=people["alice"])
    with pytest.raises(IllegalTransition, match="approved now"):
        services.request_reject(request_id=request.pk, acting_user=people["olga"], comment="no")
    assert Decision.objects.filter(request=request).count() == 1
    assert AuditEvent.objects.filter(request=request, action="request.rejected").count() == 0


def test_rejecting_needs_a_comment(repository, people):
    request = submit_request(repository, people["bob"])
    with pytest.raises(InvalidInput):
        services.request_reject(request_id=request.pk, acting_user=people["alice"], comment=" ")
    rejected = services.request_reject(
        request_id=request.pk, acting_user=people["alice"], comment="use the qa bundle"
    )
    assert rejected.status == RequestStatus.REJECTED


def test_applying_delegates_in_both_roles_once(repository, people):
    bundle = make_bundle("bob")
    request = submit_request(repository, people["bob"], bundle=bundle)
    services.request_approve(request_id=request.pk, acting_user=people["alice"])

    delegated = services.request_apply(request_id=request.pk)

    assert delegated.status == RequestStatus.DELEGATED
    assert (delegated.targets_version_before, delegated.targets_version_after) == (1, 2)
    grant = Delegation.objects.get(request=request)
    assert grant.roles == ["targets/releases", "targets/qa"]
    assert grant.canonical_key_id == PublicKey.from_certificate(bundle.certificate).canonical_id
    targets = trust.fetch(repository, now=timezone.now()).targets.signed
    key = PublicKey.from_certificate(bundle.certificate)
    assert targets.delegations.delegates(key, "targets/releases")
    assert targets.delegations.delegates(key, "targets/qa")

    # Running the job again (a retry after a crash) changes nothing.
    again = services.request_apply(request_id=request.pk)
    assert again.status == RequestStatus.DELEGATED
    assert Delegation.objects.filter(request=request).count() == 1
    assert trust.fetch(repository, now=timezone.now()).targets.signed.version == 2


def test_a_crash_after_publishing_is_finished_without_publishing_again(repository, people):
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=people["alice"])
    # The worker published, then died before recording it: the request is still applying.
    change = trust.adding(request.certificate_pem, request.role_names)
    trust.publish(repository, change, now=timezone.now())
    DelegationRequest.objects.filter(pk=request.pk).update(status=RequestStatus.APPLYING)

    finished = services.request_apply(request_id=request.pk)

    assert finished.status == RequestStatus.DELEGATED
    assert (finished.targets_version_before, finished.targets_version_after) == (2, 2)
    assert not AuditEvent.objects.filter(request=request, action="notary.published").exists()
    found = AuditEvent.objects.get(request=request, action="notary.found_delegated")
    assert found.details["targets_version_after"] == 2


def test_an_unreachable_notary_is_retried_then_fails_the_request_never_sent(
    repository, people, settings
):
    settings.PORTAL_PUBLISH_ATTEMPTS = 2
    settings.PORTAL_JOB_RETRY_INTERVALS = [10, 60]
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=people["alice"])
    repository.notary_url = f"http://127.0.0.1:{free_port()}"
    repository.save(update_fields=["notary_url"])
    now = timezone.now()

    tasks.repository_publish_job(repository.pk)

    request.refresh_from_db()
    assert request.status == RequestStatus.APPLYING
    assert request.publish_attempts == 1
    assert request.publish_retry_at > now
    assert request.publish_sent_at is None
    # Waiting its back-off: neither a run nor the sweep takes it up before then.
    assert services.repository_publish(repository_id=repository.pk).waiting == []
    assert services.waiting_publishes_resume() == []

    later = request.publish_retry_at
    run = services.repository_publish(repository_id=repository.pk, now=later)

    request.refresh_from_db()
    assert run.failed == [request.pk]
    assert request.status == RequestStatus.FAILED
    assert "kept failing" in request.failure_reason
    assert "cannot reach" in request.failure_reason


def test_a_permanent_error_fails_the_request_with_the_reason(repository, people):
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=people["alice"])
    # The portal's targets key no longer matches the repository's (someone rotated it).
    stranger = SigningKey.generate()
    repository.keys.filter(role=KeyRole.TARGETS).update(
        **trust.sealed_key_fields(repository, KeyRole.TARGETS, stranger)
    )

    failed = services.request_apply(request_id=request.pk)

    assert failed.status == RequestStatus.FAILED
    assert "not this repository's targets key" in failed.failure_reason
    assert not Delegation.objects.exists()


def test_the_audit_log_is_a_hash_chain(repository, people):
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=people["alice"])
    services.request_apply(request_id=request.pk)

    previous = GENESIS_HASH
    events = list(AuditEvent.objects.order_by("id"))
    assert [e.action for e in events if e.request_id == request.pk] == [
        "request.submitted",
        "request.approved",
        "request.applying",
        "request.delegated",
    ]
    # The publish is the repository's event, naming the requests it carried.
    published = next(e for e in events if e.action == "notary.published")
    assert (published.repository_id, published.details["requests"]) == (repository.pk, [request.pk])
    delegated = next(e for e in events if e.action == "request.delegated")
    assert delegated.details["published_in"] == published.pk
    for event in events:
        assert event.previous_hash == previous
        assert event.hash == hash_of(event)
        previous = event.hash

    # Any edit of a stored event no longer matches its hash.
    approved = next(e for e in events if e.action == "request.approved")
    for edit in ({"actor_name": "mallory"}, {"details": {"comment": "edited"}}):
        AuditEvent.objects.filter(pk=approved.pk).update(**edit)
        edited = AuditEvent.objects.get(pk=approved.pk)
        assert hash_of(edited) != edited.hash


def test_trust_initialisation_is_idempotent(repository):
    version = trust.fetch(repository, now=timezone.now()).root.signed.version
    again = services.repository_initialise_trust(repository_id=repository.pk)
    assert again.trust_initialised_at == repository.trust_initialised_at
    assert trust.fetch(repository, now=timezone.now()).root.signed.version == version
    assert repository.keys.count() == 2
    assert "PRIVATE KEY" not in repository.root_certificate_pem
    assert repository.root_certificate_pem.startswith("-----BEGIN CERTIFICATE-----")


def test_repository_keys_are_stored_sealed(repository):
    for stored in repository.keys.all():
        private = trust.signing_key(stored).private_bytes()
        assert private not in bytes(stored.sealed_private_key)
        assert stored.canonical_key_id


def test_an_unexpected_error_every_run_fails_the_request_after_the_attempts(
    repository, people, monkeypatch, settings, rq_queue
):
    settings.PORTAL_PUBLISH_ATTEMPTS = 2
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=people["alice"])

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(trust, "publish", broken)

    # Re-raised, so RQ keeps the traceback for administrators; the lease is let go.
    for _ in range(2):
        with pytest.raises(ZeroDivisionError, match="a bug"):
            tasks.repository_publish_job(repository.pk)
        request.refresh_from_db()
        assert request.status == RequestStatus.APPLYING
    assert services.waiting_publishes_resume() == [repository.pk]

    # Out of attempts with no outcome: settled by a read, not by another publish.
    run = services.repository_publish(repository_id=repository.pk)

    request.refresh_from_db()
    assert run.failed == [request.pk]
    assert request.status == RequestStatus.FAILED
    assert "unexpected error 2 times" in request.failure_reason
    assert trust.fetch(repository, now=timezone.now()).targets.signed.version == 1


def test_a_stored_certificate_that_no_longer_parses_fails_the_request_with_the_reason(
    repository, people
):
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=people["alice"])
    DelegationRequest.objects.filter(pk=request.pk).update(certificate_pem="not a certificate")

    tasks.repository_publish_job(repository.pk)

    request.refresh_from_db()
    assert request.status == RequestStatus.FAILED
    assert "certificate does not parse" in request.failure_reason


@pytest.mark.django_db(transaction=True)
def test_two_owners_deciding_at_the_same_moment_leave_one_decision(repository, people):
    request = submit_request(repository, people["bob"])
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def decide(service, owner, comment) -> None:
        start.wait()
        try:
            service(request_id=request.pk, acting_user=owner, comment=comment)
            outcomes.append("won")
        except IllegalTransition:
            outcomes.append("lost")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=decide, args=(services.request_approve, people["alice"], "yes")),
        threading.Thread(target=decide, args=(services.request_reject, people["olga"], "no")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["lost", "won"]
    assert Decision.objects.filter(request=request).count() == 1
    decided = AuditEvent.objects.filter(
        request=request, action__in=["request.approved", "request.rejected"]
    )
    assert decided.count() == 1

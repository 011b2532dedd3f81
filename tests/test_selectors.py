"""Selectors only read: every one of them runs here under a guard that fails on any write.

The table of calls must name every public selector (and the audit log's reads), so a selector
added later without a run under the guard fails `test_every_selector_is_guarded`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from delegations import selectors, services, trust
from delegations.audit import log as audit_log
from delegations.models import (
    AccessReview,
    AuditEvent,
    Delegation,
    Extension,
    Repository,
    ReviewItem,
)
from tests.directory_settings import DEMO_OWNERS, directory_user
from tests.factories import submission, submit_request

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "TRUNCATE")


@contextmanager
def no_writes() -> Iterator[None]:
    """Fail on any statement that would change the database."""
    refused: list[str] = []

    def guard(execute, sql, params, many, context):
        if sql.lstrip().split(None, 1)[0].upper() in WRITES:
            refused.append(sql)
            raise AssertionError(f"a read wrote to the database: {sql}")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(guard):
        yield
    assert refused == []


@pytest.fixture
def world(repository, people, run_jobs, django_capture_on_commit_callbacks):
    """bob delegated on the repository with a renewal of it open, and dave's request pending."""
    with django_capture_on_commit_callbacks(execute=True):
        delegated = submit_request(repository, people["bob"], team="qa")
        services.request_approve(request_id=delegated.pk, acting_user=people["alice"])
    run_jobs()
    delegation = Delegation.objects.get(request=delegated)
    renewal = services.request_submit(
        **submission(repository, people["bob"], team="qa"), renews=delegation
    )
    pending = submit_request(repository, people["dave"], team="dev")
    review = AccessReview.objects.create(
        repository=repository,
        opened_at=timezone.now(),
        deadline=timezone.now() + timedelta(days=14),
        unreviewed="keep",
    )
    ReviewItem.objects.create(review=review, delegation=delegation, signs=[])
    extension = Extension.objects.create(
        delegation=delegation,
        requested_by=people["bob"],
        until=timezone.localdate() + timedelta(days=30),
        reason="Q3",
        created_at=timezone.now(),
    )
    # Forget what reads remembered of the trust data, so that a preview that remembered what it
    # read would have to write.
    Repository.objects.filter(pk=repository.pk).update(trusted_root="", seen_versions={})
    repository.refresh_from_db()
    return {
        "repository": repository,
        "delegation": Delegation.objects.select_related("repository", "request").get(
            pk=delegation.pk
        ),
        "renewal": renewal,
        "pending": pending,
        "extension": extension,
        "review": review,
        **people,
    }


def selector_calls(world) -> dict[str, Callable[[], object]]:
    """One call of each selector, by name, on the world above."""
    alice, bob, dave = world["alice"], world["bob"], world["dave"]
    repository, delegation = world["repository"], world["delegation"]
    pending, renewal = world["pending"], world["renewal"]
    later = delegation.certificate_expires_at - timedelta(days=5)
    quiet = timedelta(0)
    # Read before the guard, as the reconciler reads the server and then compares.
    with trust.client_for(repository, remember=False) as client:
        server = client.fetch(now=timezone.now()).targets.signed.delegations
    return {
        "active_delegations_owned_by": lambda: list(selectors.active_delegations_owned_by(alice)),
        "active_delegations_visible_to": lambda: list(
            selectors.active_delegations_visible_to(alice, everything=True)
        ),
        "is_auditor": lambda: selectors.is_auditor(alice),
        "roles_signed_by": lambda: selectors.roles_signed_by(delegation),
        "delegations_to_review": lambda: list(selectors.delegations_to_review(repository)),
        "repositories_due_for_review": lambda: selectors.repositories_due_for_review(now=later),
        "review_for_viewer": lambda: selectors.review_for_viewer(alice, world["review"].pk),
        "reviews_visible_to": lambda: list(selectors.reviews_visible_to(alice)),
        "reviews_past_deadline": lambda: list(selectors.reviews_past_deadline(now=later)),
        "reviews_near_deadline": lambda: list(
            selectors.reviews_near_deadline(now=later, before=timedelta(days=3))
        ),
        "approval_queue_for": lambda: list(selectors.approval_queue_for(alice)),
        "approval_queue_narrowed": lambda: list(
            selectors.approval_queue_narrowed(
                selectors.approval_queue_for(alice),
                repository=repository,
                team="dev",
                requester="DAVE",
            )
        ),
        "approvals_missing": lambda: selectors.approvals_missing(pending),
        "approvals_of": lambda: selectors.approvals_of(delegation.request),
        "conflicting_request": lambda: selectors.conflicting_request(
            repository=repository,
            requester=bob,
            team="qa",
            canonical_key_id=delegation.canonical_key_id,
        ),
        "delegation_of_member": lambda: selectors.delegation_of_member(bob, delegation.pk),
        "extension_approvals": lambda: selectors.extension_approvals(world["extension"]),
        "extension_for_viewer": lambda: selectors.extension_for_viewer(
            alice, world["extension"].pk
        ),
        "extensions_waiting_for": lambda: list(selectors.extensions_waiting_for(alice)),
        "open_extension_of": lambda: selectors.open_extension_of(delegation),
        "why_cannot_decide_extension": lambda: selectors.why_cannot_decide_extension(
            alice, world["extension"], owns=True
        ),
        "delegation_owned_by": lambda: selectors.delegation_owned_by(alice, delegation.pk),
        "delegation_renewed_by": lambda: selectors.delegation_renewed_by(renewal),
        "delegations_owing_certificate_reminder": lambda: (
            selectors.delegations_owing_certificate_reminder(
                now=later, days_before=[30, 7], kind="certificate_expiring"
            )
        ),
        "delegations_owing_end_reminder": lambda: selectors.delegations_owing_end_reminder(
            now=later, days_before=[7, 1], kind="delegation_ending"
        ),
        "delegations_expired": lambda: list(selectors.delegations_expired(now=later)),
        "directory_account_of": lambda: selectors.directory_account_of(bob),
        "drift_between": lambda: selectors.drift_between(repository, server),
        "drift_finding_owned_by": lambda: selectors.drift_finding_owned_by(alice, 1),
        "drift_open_for": lambda: list(selectors.drift_open_for(alice)),
        "expired_request_ids": lambda: selectors.expired_request_ids(now=later),
        "group_names_of": lambda: selectors.group_names_of(alice),
        "is_owner": lambda: selectors.is_owner(alice, repository),
        "members_of": lambda: list(selectors.members_of(repository.owners_group)),
        "open_renewal_of": lambda: selectors.open_renewal_of(delegation),
        "other_delegations_of_key": lambda: selectors.other_delegations_of_key(delegation),
        "owners_of": lambda: list(selectors.owners_of(repository)),
        "renewable_delegation": lambda: selectors.renewable_delegation(bob, delegation.request),
        "repositories_open_for_requests": lambda: list(selectors.repositories_open_for_requests()),
        "repositories_owned_by": lambda: list(selectors.repositories_owned_by(alice)),
        "repository_by_gun": lambda: selectors.repository_by_gun(repository.gun),
        "request_change": lambda: selectors.request_change(renewal),
        "request_dry_run": lambda: selectors.request_dry_run(renewal),
        "request_for_viewer": lambda: selectors.request_for_viewer(alice, pending.pk),
        "requests_of": lambda: list(selectors.requests_of(dave)),
        "requests_owing_expiry_reminder": lambda: list(
            selectors.requests_owing_expiry_reminder(
                now=later, remind_before=timedelta(days=400), kind="request_expiring", occasion="x"
            )
        ),
        "revocation_preview": lambda: selectors.revocation_preview(delegation),
        "split_gun": lambda: selectors.split_gun(repository.gun),
        "is_registrar": lambda: selectors.is_registrar(alice),
        "repositories_managed_by": lambda: list(selectors.repositories_managed_by(alice)),
        "repository_managed_by": lambda: selectors.repository_managed_by(alice, repository.pk),
        "root_key_id": lambda: selectors.root_key_id(repository),
        "root_key_handover_open": lambda: selectors.root_key_handover_open(repository),
        "teams_of": lambda: selectors.teams_of(bob),
        "api_tokens_of": lambda: list(selectors.api_tokens_of(bob)),
        "team_access_of": lambda: selectors.team_access_of(repository_id=repository.pk, team="qa"),
        "team_access_due_ids": lambda: selectors.team_access_due_ids(now=later, quiet_for=quiet),
        "unsent_notification_ids": lambda: selectors.unsent_notification_ids(
            now=later, quiet_for=quiet, max_attempts=5
        ),
        "waiting_repository_ids": lambda: selectors.waiting_repository_ids(now=later),
        "why_cannot_decide": lambda: selectors.why_cannot_decide(alice, pending, owns=True),
        # The audit log's reads.
        "audit_access_allowed": lambda: audit_log.audit_access_allowed(alice),
        "audit_repositories_for": lambda: list(audit_log.audit_repositories_for(alice)),
        "audit_events_for": lambda: list(audit_log.audit_events_for(alice, actor="alice")),
        "audit_actions_for": lambda: audit_log.audit_actions_for(alice),
    }


def public_selectors() -> set[str]:
    names = {name for name in selectors.__all__ if inspect.isfunction(getattr(selectors, name))}
    return names | {name for name in dir(audit_log) if name.startswith("audit_")}


def test_every_selector_is_guarded(world):
    assert set(selector_calls(world)) == public_selectors()


def test_no_selector_writes(world):
    calls = selector_calls(world)
    answers = {}
    for name, call in calls.items():
        with no_writes():
            answers[name] = call()
    # They read what the world holds (so the guard watched real work, not empty answers).
    assert answers["request_dry_run"].plan is not None, answers["request_dry_run"].error
    assert answers["request_dry_run"].plan.changed
    assert answers["revocation_preview"].impact is not None, answers["revocation_preview"].error
    assert answers["owners_of"] == [world["alice"], world["olga"]]
    assert [request.pk for request in answers["approval_queue_narrowed"]] == [world["pending"].pk]
    assert answers["delegation_renewed_by"] == world["delegation"]
    assert answers["open_renewal_of"] == world["renewal"]
    assert answers["teams_of"] == ["qa"]
    # The previews did not remember what they read.
    assert Repository.objects.get(pk=world["repository"].pk).seen_versions == {}


def test_a_guarded_write_is_caught(world):
    with pytest.raises(AssertionError, match="a read wrote"), no_writes():
        Repository.objects.filter(pk=world["repository"].pk).update(approvals_required=2)


def test_owners_from_the_directory_are_read_without_being_made(use_directory, repository):
    """An owner who never logged in has no portal user: reading the owners does not make one
    (that was a write hidden in a read); the provisioning service does, audited."""
    repository.owners_group = DEMO_OWNERS
    repository.save(update_fields=["owners_group"])
    bob = directory_user("bob")
    users = get_user_model().objects

    with no_writes():
        assert list(selectors.owners_of(repository)) == []
        assert not selectors.is_owner(bob, repository)
        assert selectors.teams_of(bob) == ["qa"]
    assert not users.filter(username="alice").exists()

    owners = services.repository_owners_provision(repository=repository)
    alice = users.get(username="alice")
    assert owners == [alice]
    assert not alice.has_usable_password()
    provisioned = AuditEvent.objects.get(action="account.provisioned", details__username="alice")
    assert provisioned.details["dn"] == alice.directory_account.dn
    with no_writes():
        assert list(selectors.owners_of(repository)) == [alice]
    # Once made, a user is not made again.
    assert services.repository_owners_provision(repository=repository) == [alice]
    assert AuditEvent.objects.filter(action="account.provisioned").count() == 2  # alice, bob

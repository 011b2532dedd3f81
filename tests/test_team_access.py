"""A delegated member's team gets push access in DTR (the stand-in of its API), after the
publish and apart from it: DTR failing never undoes a delegation, an outage is waited out, a
refusal is told and not retried for ever."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from delegations import services
from delegations.models import (
    AuditEvent,
    Notification,
    Repository,
    RequestStatus,
    TeamAccessGrant,
    TeamAccessStatus,
)
from stack.dtr_standin import DtrStandIn, dtr_standin_service
from tests.factories import submit_request

pytestmark = pytest.mark.django_db

SERVICE = "svc-portal"
TOKEN = secrets.token_urlsafe(16)  # made at run time


@pytest.fixture
def dtr(repository, settings) -> Iterator[DtrStandIn]:
    """DTR with the repository's organisation (teams qa and dev), the portal's service account
    admin on its namespace, and the portal pointed at it."""
    registry = DtrStandIn()
    registry.account_add(SERVICE, TOKEN)
    registry.organisation_add(repository.namespace, teams=("qa", "dev"), admins=(SERVICE,))
    registry.repository_add(repository.namespace, repository.name)
    with dtr_standin_service(registry) as running:
        Repository.objects.filter(pk=repository.pk).update(dtr_url=running.url)
        settings.PORTAL_DTR_USERNAME, settings.PORTAL_DTR_TOKEN = SERVICE, TOKEN
        yield running


@pytest.fixture
def delegate(repository, people, run_jobs, django_capture_on_commit_callbacks):
    """Approve a member's request and run the worker until nothing is left queued."""

    def delegate_member(member: str, team: str = "qa"):
        request = submit_request(repository, people[member], team=team)
        with django_capture_on_commit_callbacks(execute=True):
            services.request_approve(request_id=request.pk, acting_user=people["alice"])
        work_off(run_jobs, django_capture_on_commit_callbacks)
        request.refresh_from_db()
        assert request.status == RequestStatus.DELEGATED
        return request

    return delegate_member


def work_off(run_jobs, capture) -> None:
    # Jobs queue their follow-ups once committed: the publish, then the DTR grant.
    for _ in range(3):
        with capture(execute=True):
            run_jobs()


def grant_of(repository, team: str = "qa") -> TeamAccessGrant:
    return TeamAccessGrant.objects.get(repository=repository, team=team)


def test_a_delegated_members_team_can_push_and_the_request_page_says_so(
    dtr, repository, delegate, client, people
):
    request = delegate("bob")

    assert dtr.team_access(repository.namespace, repository.name) == {"qa": "read-write"}
    assert [(call.method, call.path.rsplit("/", 2)[-2:], call.body) for call in dtr.recorded] == [
        ("GET", ["nginx", "teamAccess"], None),
        ("PUT", ["teamAccess", "qa"], {"accessLevel": "read-write"}),
    ]
    grant = grant_of(repository)
    assert (grant.status, grant.level, grant.request_id) == ("granted", "read-write", request.pk)
    event = AuditEvent.objects.get(action="dtr.team_access_granted")
    assert event.details == {"team": "qa", "before": None, "after": "read-write", "changed": True}

    client.force_login(people["bob"])
    page = client.get(reverse("delegations:request_detail", args=[request.pk])).content.decode()
    assert f"Team qa can push to {repository.path} (read-write in DTR)." in page


def test_the_next_member_of_the_team_is_checked_again_and_nothing_is_written(
    dtr, repository, delegate
):
    delegate("bob")
    delegate("olga")
    assert [call.method for call in dtr.recorded] == ["GET", "PUT", "GET", "GET"]
    assert grant_of(repository).request.requester.get_username() == "olga"


def test_an_admin_grant_is_kept(dtr, repository, delegate):
    dtr.repositories[(repository.namespace, repository.name)].team_access["dev"] = "admin"
    delegate("dave", team="dev")
    assert grant_of(repository, "dev").level == "admin"
    assert dtr.team_access(repository.namespace, repository.name) == {"dev": "admin"}


def test_an_outage_leaves_the_delegation_and_the_grant_waits_for_dtr(
    dtr, repository, delegate, run_jobs, django_capture_on_commit_callbacks, client, people
):
    dtr.fail_with = 503
    request = delegate("bob")  # delegated all the same

    grant = grant_of(repository)
    assert (grant.status, grant.attempts) == ("pending", 1)
    assert "503" in grant.reason
    assert grant.retry_at > timezone.now()
    client.force_login(people["bob"])
    page = client.get(reverse("delegations:request_detail", args=[request.pk])).content.decode()
    assert "Push access for team qa" in page
    assert "is pending in DTR" in page
    assert services.team_access_resume() == []  # not before its back-off

    dtr.fail_with = None
    later = timezone.now() + timedelta(minutes=5)
    assert services.team_access_resume(now=later) == [grant.pk]
    work_off(run_jobs, django_capture_on_commit_callbacks)
    assert grant_of(repository).status == TeamAccessStatus.GRANTED
    assert dtr.team_access(repository.namespace, repository.name) == {"qa": "read-write"}


def test_a_refusal_is_told_to_the_member_and_owners_and_not_retried(
    dtr, repository, delegate, people
):
    # The service account lost admin: DTR shows it the (public) repository and refuses.
    dtr.organisations[repository.namespace].namespace_admins.clear()
    dtr.repositories[(repository.namespace, repository.name)].visibility = "public"

    request = delegate("bob")

    grant = grant_of(repository)
    assert grant.status == TeamAccessStatus.FAILED
    assert "lacks the rights" in grant.reason
    told = Notification.objects.filter(kind="team_access_failed", request=request)
    assert sorted(told.values_list("recipient__username", flat=True)) == ["alice", "bob", "olga"]
    assert AuditEvent.objects.filter(action="dtr.team_access_failed").count() == 1
    far_later = timezone.now() + timedelta(days=30)
    assert services.team_access_resume(now=far_later) == []


def test_without_a_dtr_account_the_portal_leaves_dtr_alone(dtr, repository, delegate, settings):
    settings.PORTAL_DTR_USERNAME = ""
    delegate("bob")
    assert not TeamAccessGrant.objects.exists()
    assert dtr.recorded == []

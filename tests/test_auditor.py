"""The auditor (issue 17, item 4): a member of PORTAL_AUDITOR_GROUP reads every repository's
delegations, requests and audit log, on the pages and through the API, and can change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from delegations import services
from delegations.exceptions import NotAllowed
from delegations.models import Delegation, DelegationRequest, Extension, RequestStatus
from tests.factories import make_user, submission, submit_request

pytestmark = [pytest.mark.django_db, pytest.mark.services]


@pytest.fixture
def delegated(repository, people, run_jobs, django_capture_on_commit_callbacks):
    """bob delegated on the repository, with an extension pending; dave's request pending."""
    request = services.request_submit(
        **submission(repository, people["bob"]), until=timezone.localdate() + timedelta(days=10)
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.request_approve(request_id=request.pk, acting_user=people["alice"])
    run_jobs()
    delegation = Delegation.objects.get(request=request)
    extension = services.extension_request(
        delegation_id=delegation.pk,
        acting_user=people["bob"],
        until=timezone.localdate() + timedelta(days=20),
        reason="Q3",
    )
    pending = submit_request(repository, people["dave"], team="dev")
    return {"delegation": delegation, "extension": extension, "pending": pending}


@pytest.fixture
def ada(settings):
    settings.PORTAL_AUDITOR_GROUP = "auditors"
    return make_user("ada", owns=("auditors",))


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_auditor_reads_every_repositorys_delegations_requests_and_audit_log(
    ada, delegated, stranger
):
    client = signed_in(ada)
    delegation = delegated["delegation"]

    listed = client.get(reverse("delegations:delegation_list"))
    assert listed.status_code == 200
    page = listed.content.decode()
    assert delegation.short_key_id in page
    assert "read only" in page
    assert reverse("delegations:delegation_revoke", args=[delegation.pk]) not in page

    detail = client.get(reverse("delegations:request_detail", args=[delegated["pending"].pk]))
    assert detail.status_code == 200
    assert "formaction" not in detail.content.decode()  # no Approve or Reject

    audit = client.get(reverse("delegations:audit_log"))
    assert audit.status_code == 200
    assert "request.submitted" in audit.content.decode()
    nav = audit.content.decode()
    assert 'href="/delegations/"' in nav
    assert reverse("delegations:approval_queue") not in nav  # nothing to decide


def test_the_auditor_changes_nothing_on_the_pages(ada, delegated, people):
    client = signed_in(ada)
    delegation, pending = delegated["delegation"], delegated["pending"]

    assert (
        client.post(
            reverse("delegations:request_approve", args=[pending.pk]), {"comment": ""}
        ).status_code
        == 403
    )
    assert (
        client.get(reverse("delegations:delegation_revoke", args=[delegation.pk])).status_code
        == 403
    )
    assert (
        client.post(
            reverse("delegations:extension_approve", args=[delegated["extension"].pk]), {}
        ).status_code
        == 403
    )
    assert client.get(reverse("delegations:approval_queue")).status_code == 403
    assert DelegationRequest.objects.get(pk=pending.pk).status == RequestStatus.PENDING
    assert Delegation.objects.get(pk=delegation.pk).is_active
    assert not delegated["extension"].decisions.exists()
    with pytest.raises(NotAllowed):
        services.delegation_revoke(delegation_id=delegation.pk, acting_user=ada, comment="audit")


def test_the_auditor_reads_through_the_api_and_decides_nothing(ada, delegated, repository):
    _, secret = services.api_token_create(user=ada, name="audit", expires_days=None)
    api = Client(headers={"Authorization": f"Bearer {secret}"})
    delegation = delegated["delegation"]

    listed = api.get(reverse("delegations:api_repository_delegations", args=[repository.pk]))
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["results"]] == [delegation.pk]
    events = api.get(reverse("delegations:api_audit_events"))
    assert events.status_code == 200
    assert events.json()["count"] > 0

    approve = api.post(
        reverse("delegations:api_request_approve", args=[delegated["pending"].pk]),
        {},
        content_type="application/json",
    )
    assert approve.status_code == 403
    revoke = api.post(
        reverse("delegations:api_delegation_revoke", args=[delegation.pk]),
        {"comment": "audit"},
        content_type="application/json",
    )
    assert revoke.status_code in (403, 404)
    extension = api.post(
        reverse("delegations:api_extension_approve", args=[delegated["extension"].pk]),
        {},
        content_type="application/json",
    )
    assert extension.status_code == 403
    assert Extension.objects.get(pk=delegated["extension"].pk).status == "pending"


def test_without_the_group_a_member_sees_no_delegations_page(people, delegated):
    assert signed_in(people["dave"]).get(reverse("delegations:delegation_list")).status_code == 403
    other = make_user("zoe", owns=("readers",))
    assert signed_in(other).get(reverse("delegations:audit_log")).status_code == 403

"""More time on an active delegation (issue 17, item 2): the member asks for a later last day,
the owners decide as on a request (threshold, no self-approval), and approving changes only the
date: nothing is published, and the delegation outlives its old last day."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from delegations import services
from delegations.exceptions import (
    IllegalTransition,
    InvalidInput,
    NotAllowed,
    NotAnOwner,
    SelfApproval,
)
from delegations.models import (
    AuditEvent,
    Delegation,
    Extension,
    ExtensionStatus,
    Notification,
    NotificationKind,
    RequestStatus,
)
from tests.factories import make_user, submission

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def in_days(days: int) -> date:
    return timezone.localdate() + timedelta(days=days)


@pytest.fixture
def delegate(repository, people, run_jobs, django_capture_on_commit_callbacks):
    """`member`'s request until `until`, approved by an owner and applied by the worker."""

    def delegate(member, until: date | None, *, approver=None) -> Delegation:
        request = services.request_submit(**submission(repository, member), until=until)
        with django_capture_on_commit_callbacks(execute=True):
            services.request_approve(request_id=request.pk, acting_user=approver or people["alice"])
        run_jobs()
        request.refresh_from_db()
        assert request.status == RequestStatus.DELEGATED, request.failure_reason
        return Delegation.objects.get(request=request)

    return delegate


def published(repository) -> int:
    return AuditEvent.objects.filter(repository=repository, action="notary.published").count()


def test_an_approved_extension_moves_only_the_last_day_and_the_delegation_outlives_the_old_one(
    repository, people, delegate, rq_queue
):
    delegation = delegate(people["bob"], in_days(10))
    publishes = published(repository)
    old_end = delegation.ends_at

    extension = services.extension_request(
        delegation_id=delegation.pk, acting_user=people["bob"], until=in_days(40), reason="Q3"
    )
    owed = Notification.objects.filter(
        extension=extension, kind=NotificationKind.EXTENSION_REQUESTED
    )
    assert {n.recipient.username for n in owed} == {"alice", "olga"}

    rq_queue.empty()
    approved = services.extension_approve(extension_id=extension.pk, acting_user=people["alice"])

    assert approved.status == ExtensionStatus.APPROVED
    delegation.refresh_from_db()
    assert delegation.until == in_days(40)
    assert delegation.ends_at > old_end
    # Nothing published: no job queued but the member's email, and no new targets version.
    assert published(repository) == publishes
    assert all("publish" not in job_id for job_id in rq_queue.get_job_ids())
    assert services.delegations_expire(now=old_end) == []
    assert services.delegations_expire(now=delegation.ends_at) == [delegation.pk]
    event = AuditEvent.objects.get(request=delegation.request, action="extension.approved")
    assert (event.details["until"], event.details["previous_until"]) == (
        in_days(40).isoformat(),
        in_days(10).isoformat(),
    )
    told = Notification.objects.get(extension=extension, kind=NotificationKind.EXTENSION_DECIDED)
    services.notification_send(notification_id=told.pk)
    assert mail.outbox[-1].to == ["bob@example.org"]
    assert f"now lasts until {in_days(40).isoformat()}" in mail.outbox[-1].body


def test_an_owner_cannot_approve_their_own_extension_and_a_stranger_cannot_decide(
    repository, people, delegate, stranger
):
    olga = people["olga"]  # an owner, and in team qa
    delegation = delegate(olga, in_days(10))
    extension = services.extension_request(
        delegation_id=delegation.pk, acting_user=olga, until=in_days(20), reason="more releases"
    )

    with pytest.raises(SelfApproval):
        services.extension_approve(extension_id=extension.pk, acting_user=olga)
    with pytest.raises(NotAnOwner):
        services.extension_approve(extension_id=extension.pk, acting_user=stranger)
    with pytest.raises(NotAnOwner):
        services.extension_approve(extension_id=extension.pk, acting_user=people["dave"])
    assert Extension.objects.get(pk=extension.pk).status == ExtensionStatus.PENDING
    assert not extension.decisions.exists()

    assert (
        services.extension_approve(extension_id=extension.pk, acting_user=people["alice"]).status
        == ExtensionStatus.APPROVED
    )


def test_with_a_threshold_of_two_the_first_approval_is_counted_and_the_second_extends(
    repository, people, delegate
):
    zed = make_user("zed", owns=(repository.owners_group,))
    delegation = delegate(people["bob"], in_days(10))
    services.repository_update(
        repository_id=repository.pk,
        notary_url=repository.notary_url,
        owners_group=repository.owners_group,
        approvals_required=2,
    )
    extension = services.extension_request(
        delegation_id=delegation.pk, acting_user=people["bob"], until=in_days(30), reason="Q3"
    )

    first = services.extension_approve(extension_id=extension.pk, acting_user=people["alice"])
    assert first.status == ExtensionStatus.PENDING
    assert Delegation.objects.get(pk=delegation.pk).until == in_days(10)
    with pytest.raises(IllegalTransition, match="You approved extension"):
        services.extension_approve(extension_id=extension.pk, acting_user=people["alice"])

    second = services.extension_approve(extension_id=extension.pk, acting_user=zed)
    assert second.status == ExtensionStatus.APPROVED
    assert Delegation.objects.get(pk=delegation.pk).until == in_days(30)


def test_what_cannot_be_asked_is_refused_with_the_field_and_nothing_is_stored(
    repository, people, delegate
):
    services.repository_update(
        repository_id=repository.pk,
        notary_url=repository.notary_url,
        owners_group=repository.owners_group,
        lifetime_days=(60, None),
    )
    delegation = delegate(people["bob"], in_days(10))
    bob = people["bob"]

    for until, reason, message, field in (
        (in_days(10), "why", "ask for a later one", "until"),
        (in_days(61), "why", "at most 60 days", "until"),
        (in_days(400), "why", "The certificate expires on", "until"),
        (in_days(20), "  ", "Say why", "reason"),
    ):
        with pytest.raises(InvalidInput, match=message) as refused:
            services.extension_request(
                delegation_id=delegation.pk, acting_user=bob, until=until, reason=reason
            )
        assert refused.value.field == field
    with pytest.raises(NotAllowed):
        services.extension_request(
            delegation_id=delegation.pk, acting_user=people["alice"], until=in_days(20), reason="x"
        )
    assert not Extension.objects.exists()

    services.extension_request(
        delegation_id=delegation.pk, acting_user=bob, until=in_days(20), reason="Q3"
    )
    with pytest.raises(IllegalTransition, match="already"):
        services.extension_request(
            delegation_id=delegation.pk, acting_user=bob, until=in_days(30), reason="Q4"
        )
    assert Extension.objects.count() == 1


def test_a_delegation_as_long_as_its_certificate_is_renewed_not_extended(
    repository, people, delegate
):
    delegation = delegate(people["bob"], None)
    with pytest.raises(InvalidInput, match="renew it"):
        services.extension_request(
            delegation_id=delegation.pk, acting_user=people["bob"], until=in_days(20), reason="x"
        )


def test_a_rejection_says_why_and_keeps_the_date(repository, people, delegate):
    delegation = delegate(people["bob"], in_days(10))
    extension = services.extension_request(
        delegation_id=delegation.pk, acting_user=people["bob"], until=in_days(20), reason="Q3"
    )
    with pytest.raises(InvalidInput, match="Say why"):
        services.extension_reject(
            extension_id=extension.pk, acting_user=people["alice"], comment=""
        )

    rejected = services.extension_reject(
        extension_id=extension.pk, acting_user=people["alice"], comment="ask again in June"
    )

    assert rejected.status == ExtensionStatus.REJECTED
    assert Delegation.objects.get(pk=delegation.pk).until == in_days(10)
    told = Notification.objects.get(extension=extension, kind=NotificationKind.EXTENSION_DECIDED)
    services.notification_send(notification_id=told.pk)
    assert "alice rejected your extension" in mail.outbox[-1].body
    assert "ask again in June" in mail.outbox[-1].body


def test_ending_a_delegation_withdraws_its_pending_extension(repository, people, delegate):
    delegation = delegate(people["bob"], in_days(10))
    extension = services.extension_request(
        delegation_id=delegation.pk, acting_user=people["bob"], until=in_days(20), reason="Q3"
    )
    services.delegation_revoke(
        delegation_id=delegation.pk, acting_user=people["alice"], comment="left the project"
    )

    assert Extension.objects.get(pk=extension.pk).status == ExtensionStatus.WITHDRAWN
    with pytest.raises(IllegalTransition):
        services.extension_approve(extension_id=extension.pk, acting_user=people["olga"])
    assert AuditEvent.objects.filter(action="extension.withdrawn").count() == 1


def test_through_the_api_a_member_asks_and_an_owner_approves_but_not_their_own(
    repository, people, delegate
):
    delegation = delegate(people["bob"], in_days(10))

    def api(user) -> Client:
        _, secret = services.api_token_create(user=user, name="ci", expires_days=None)
        return Client(headers={"Authorization": f"Bearer {secret}"})

    bob, alice = api(people["bob"]), api(people["alice"])
    asked = bob.post(
        reverse("delegations:api_delegation_extend", args=[delegation.pk]),
        {"until": in_days(30).isoformat(), "reason": "Q3 releases"},
        content_type="application/json",
    )
    assert asked.status_code == 201, asked.content
    extension_id = asked.json()["id"]

    own = bob.post(
        reverse("delegations:api_extension_approve", args=[extension_id]),
        {},
        content_type="application/json",
    )
    assert own.status_code == 403
    assert own.json()["code"] == "self_approval"
    queue = alice.get(reverse("delegations:api_extension_queue")).json()
    assert [item["id"] for item in queue["results"]] == [extension_id]
    approved = alice.post(
        reverse("delegations:api_extension_approve", args=[extension_id]),
        {"comment": "fine"},
        content_type="application/json",
    )
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "approved"
    assert Delegation.objects.get(pk=delegation.pk).until == in_days(30)


def test_the_reminder_links_to_the_page_where_the_member_asks_and_the_owner_decides(
    repository, people, delegate
):
    delegation = delegate(people["bob"], in_days(6))  # it ends within 7 days
    owed = services.reminders_send(now=timezone.now())
    to_bob = Notification.objects.get(
        pk__in=owed, kind=NotificationKind.DELEGATION_ENDING, recipient=people["bob"]
    )
    services.notification_send(notification_id=to_bob.pk)
    link = re.search(r"https?://\S+/extend/", mail.outbox[-1].body).group(0)
    path = link.split("portal.test", 1)[-1]

    member = Client()
    member.force_login(people["bob"])
    assert member.get(path).status_code == 200
    asked = member.post(path, {"until": in_days(21).isoformat(), "reason": "the Q3 release"})
    assert asked.status_code == 302
    extension = Extension.objects.get()

    owner = Client()
    owner.force_login(people["alice"])
    queue = owner.get(reverse("delegations:approval_queue")).content.decode()
    assert "More time asked for" in queue
    assert reverse("delegations:extension_approve", args=[extension.pk]) in queue
    owner.post(reverse("delegations:extension_approve", args=[extension.pk]), {"comment": ""})
    assert Delegation.objects.get(pk=delegation.pk).until == in_days(21)
    # The member's page shows the history.
    page = member.get(reverse("delegations:request_detail", args=[delegation.request_id]))
    assert "approved" in page.content.decode()


def test_another_member_cannot_open_the_extension_page_of_a_delegation(
    repository, people, delegate
):
    delegation = delegate(people["bob"], in_days(10))
    member = Client()
    member.force_login(make_user("erin", teams=("qa",)))
    page = member.get(reverse("delegations:delegation_extend", args=[delegation.pk]))
    assert page.status_code == 404

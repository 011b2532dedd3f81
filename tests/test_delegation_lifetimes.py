"""Delegations that end on time (issue 17, item 1): a member asks until a date, within the
repository's longest; owners may shorten it when approving, never lengthen it; when the last day
is over, or the certificate has expired, the key leaves both roles as in a revoke, audited as
`expired`, with the member and the owners told and reminded before.

Time is injected (`now=`), the trust data is the real notary-server's, read by the `notary` CLI.
"""

from __future__ import annotations

import base64
from datetime import date, timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from delegations import lifetimes, services
from delegations.exceptions import InvalidInput
from delegations.models import (
    AuditEvent,
    Decision,
    Delegation,
    DelegationRequest,
    EndReason,
    Notification,
    NotificationKind,
    RequestStatus,
)
from tests.factories import make_bundle, signed_form_data, submission

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def in_days(days: int) -> date:
    return timezone.localdate() + timedelta(days=days)


def keys_in(notary_cli, gun: str) -> dict[str, set[str]]:
    return {role: set(row["keys"]) for role, row in notary_cli.delegations(gun).items()}


@pytest.fixture
def limited(repository):
    """The repository allows delegations of at most 90 days, and offers 30."""
    services.repository_update(
        repository_id=repository.pk,
        notary_url=repository.notary_url,
        owners_group=repository.owners_group,
        lifetime_days=(90, 30),
    )
    repository.refresh_from_db()
    return repository


@pytest.fixture
def delegate(repository, people, run_jobs, django_capture_on_commit_callbacks):
    """bob's request until `until`, approved by alice and applied by the worker."""

    def delegate(until: date | None, *, bundle=None) -> Delegation:
        asked = submission(repository, people["bob"], bundle=bundle)
        request = services.request_submit(**asked, until=until)
        with django_capture_on_commit_callbacks(execute=True):
            services.request_approve(request_id=request.pk, acting_user=people["alice"])
        run_jobs()
        request.refresh_from_db()
        assert request.status == RequestStatus.DELEGATED, request.failure_reason
        return Delegation.objects.get(request=request)

    return delegate


# -- asking ---------------------------------------------------------------------------------------


def test_a_request_keeps_its_date_and_a_date_past_the_repositorys_longest_is_refused(
    limited, people
):
    bob = people["bob"]
    asked = services.request_submit(**submission(limited, bob), until=in_days(90))
    assert (asked.requested_until, asked.until) == (in_days(90), in_days(90))
    assert AuditEvent.objects.get(request=asked, action="request.submitted").details["until"] == (
        in_days(90).isoformat()
    )

    another = make_bundle("bob")
    for until, message in (
        (in_days(91), "at most 90 days: choose a date on or before"),
        (None, "at most 90 days"),  # the certificate outlives the longest
        (timezone.localdate(), "after today"),
        (in_days(400), "The certificate expires on"),
    ):
        with pytest.raises(InvalidInput, match=message) as refused:
            services.request_submit(**submission(limited, bob, bundle=another), until=until)
        assert refused.value.field == "until"
    assert DelegationRequest.objects.count() == 1


def test_without_a_limit_the_date_may_be_empty_but_not_past_the_certificate(repository, people):
    bundle = make_bundle("bob", not_after=timezone.now() + timedelta(days=20))
    with pytest.raises(InvalidInput, match="The certificate expires on") as refused:
        services.request_submit(
            **submission(repository, people["bob"], bundle=bundle), until=in_days(21)
        )
    assert refused.value.field == "until"
    assert not DelegationRequest.objects.exists()

    asked = services.request_submit(**submission(repository, people["bob"], bundle=bundle))
    assert asked.until is None


def test_the_form_offers_the_default_and_refuses_a_date_past_the_longest(limited, people):
    client = Client()
    client.force_login(people["bob"])
    page = client.get(reverse("delegations:request_create")).content.decode()
    assert "delegations last at most 90 days" in page

    data = {**signed_form_data(client, limited, make_bundle("bob")), "until": in_days(120)}
    refused = client.post(reverse("delegations:request_create"), data)

    assert refused.status_code == 400
    assert "at most 90 days" in refused.content.decode()
    assert not DelegationRequest.objects.exists()


def test_the_api_refuses_a_date_past_the_longest_with_the_field(limited, people):
    _, secret = services.api_token_create(user=people["bob"], name="ci", expires_days=None)
    api = Client(headers={"Authorization": f"Bearer {secret}"})
    bundle = make_bundle("bob")
    challenge = api.post(reverse("delegations:api_challenge_create")).json()["challenge"]
    body = {
        "repository": limited.gun,
        "team": "qa",
        "certificate": bundle.cert_pem.decode(),
        "reason": "releases",
        "challenge": challenge,
        "signature": base64.b64encode(bundle.sign(challenge.encode())).decode(),
        "until": in_days(91).isoformat(),
    }

    refused = api.post(
        reverse("delegations:api_request_list"), body, content_type="application/json"
    )

    assert refused.status_code == 400
    assert refused.json()["field"] == "until"
    assert not DelegationRequest.objects.exists()
    accepted = api.post(
        reverse("delegations:api_request_list"),
        {**body, "until": in_days(60).isoformat()},
        content_type="application/json",
    )
    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["until"] == in_days(60).isoformat()


# -- approving ------------------------------------------------------------------------------------


def test_an_owner_may_shorten_the_date_when_approving_but_never_lengthen_it(limited, people):
    request = services.request_submit(**submission(limited, people["bob"]), until=in_days(60))

    with pytest.raises(InvalidInput, match="only shorten"):
        services.request_approve(
            request_id=request.pk, acting_user=people["alice"], until=in_days(61)
        )
    assert not Decision.objects.exists()

    approved = services.request_approve(
        request_id=request.pk, acting_user=people["alice"], until=in_days(14)
    )
    assert approved.status == RequestStatus.APPROVED
    assert (approved.requested_until, approved.until) == (in_days(60), in_days(14))
    assert Decision.objects.get().until == in_days(14)
    event = AuditEvent.objects.get(request=request, action="request.approved")
    assert event.details["until"] == in_days(14).isoformat()
    told = Notification.objects.get(request=request, kind=NotificationKind.REQUEST_DECIDED)
    services.notification_send(notification_id=told.pk)
    assert (
        f"It lasts until {in_days(14).isoformat()} (you asked for {in_days(60).isoformat()}; "
        "an owner shortened it)" in mail.outbox[-1].body
    )


def test_an_owner_cannot_shorten_past_the_longest_through_the_api_either(limited, people):
    request = services.request_submit(**submission(limited, people["bob"]), until=in_days(30))
    _, secret = services.api_token_create(user=people["alice"], name="bot", expires_days=None)
    api = Client(headers={"Authorization": f"Bearer {secret}"})

    refused = api.post(
        reverse("delegations:api_request_approve", args=[request.pk]),
        {"until": in_days(31).isoformat()},
        content_type="application/json",
    )

    assert refused.status_code == 400
    assert refused.json()["field"] == "until"
    assert DelegationRequest.objects.get(pk=request.pk).status == RequestStatus.PENDING
    assert not Decision.objects.exists()


# -- ending on time -------------------------------------------------------------------------------


def test_on_its_last_day_the_key_stays_and_the_day_after_it_leaves_both_roles(
    repository, people, delegate, notary_cli, run_jobs, django_capture_on_commit_callbacks
):
    delegation = delegate(in_days(10))
    assert delegation.until == in_days(10)
    assert delegation.ends_at == lifetimes.end_of(in_days(10))
    assert delegation.canonical_key_id in keys_in(notary_cli, repository.gun)["targets/releases"]
    mail.outbox.clear()

    last_day = delegation.ends_at - timedelta(seconds=1)
    assert services.delegations_expire(now=last_day) == []

    with django_capture_on_commit_callbacks(execute=True):
        assert services.delegations_expire(now=delegation.ends_at) == [delegation.pk]
        # Asked once: the next run finds it ending already.
        assert services.delegations_expire(now=delegation.ends_at + timedelta(minutes=1)) == []
    run_jobs()

    delegation.refresh_from_db()
    assert delegation.end_reason == EndReason.EXPIRED
    assert delegation.request.status == RequestStatus.REVOKED
    roles = keys_in(notary_cli, repository.gun)
    assert delegation.canonical_key_id not in roles.get("targets/releases", set())
    assert delegation.canonical_key_id not in roles.get("targets/qa", set())
    asked = AuditEvent.objects.get(request=delegation.request, action="delegation.expired")
    assert asked.actor is None
    assert asked.details["end_reason"] == "expired"
    assert f"last day, {in_days(10).isoformat()}, is over" in asked.details["comment"]
    for notification in Notification.objects.filter(kind=NotificationKind.DELEGATION_EXPIRED):
        services.notification_send(notification_id=notification.pk)
    told = {email.to[0]: email for email in mail.outbox}
    assert set(told) == {"bob@example.org", "alice@example.org", "olga@example.org"}
    assert "its last day is over" in told["bob@example.org"].subject
    assert "tags that only your key signed no longer verify" in told["bob@example.org"].body
    assert "notary" in told["alice@example.org"].body  # what remaining signers run


def test_a_delegation_ends_when_its_certificate_expires(
    repository, people, delegate, notary_cli, run_jobs, django_capture_on_commit_callbacks
):
    bundle = make_bundle("bob", not_after=timezone.now() + timedelta(days=3))
    delegation = delegate(None, bundle=bundle)
    assert delegation.until is None
    assert delegation.expires_at == delegation.certificate_expires_at

    with django_capture_on_commit_callbacks(execute=True):
        ended = services.delegations_expire(now=delegation.certificate_expires_at)
    run_jobs()

    assert ended == [delegation.pk]
    delegation.refresh_from_db()
    assert delegation.end_reason == EndReason.EXPIRED
    roles = keys_in(notary_cli, repository.gun)
    assert delegation.canonical_key_id not in roles.get("targets/releases", set())
    event = AuditEvent.objects.get(request=delegation.request, action="delegation.expired")
    assert "certificate expired" in event.details["comment"]


def test_delegations_ending_together_leave_in_one_publish(
    repository, people, delegate, run_jobs, django_capture_on_commit_callbacks
):
    first = delegate(in_days(5))
    second_request = services.request_submit(
        **submission(repository, people["olga"]), until=in_days(5)
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.request_approve(request_id=second_request.pk, acting_user=people["alice"])
    run_jobs()
    second = Delegation.objects.get(request=second_request)

    with django_capture_on_commit_callbacks(execute=True):
        services.delegations_expire(now=first.ends_at)
    run_jobs()

    published = AuditEvent.objects.filter(repository=repository, action="notary.published")
    assert sorted(published.latest("id").details["ended_requests"]) == sorted(
        [first.request_id, second.request_id]
    )  # both keys left in one publish
    for delegation in (first, second):
        delegation.refresh_from_db()
        assert delegation.end_reason == EndReason.EXPIRED


# -- reminders ------------------------------------------------------------------------------------


def test_the_member_and_owners_are_reminded_seven_days_and_one_day_before_once_each(
    repository, people, delegate
):
    delegation = delegate(in_days(20))
    ends = delegation.ends_at
    Notification.objects.all().delete()

    def reminded(now) -> list[str]:
        owed = services.reminders_send(now=now)
        return sorted(
            set(
                Notification.objects.filter(
                    pk__in=owed, kind=NotificationKind.DELEGATION_ENDING
                ).values_list("occasion", flat=True)
            )
        )

    day = in_days(20).isoformat()
    assert reminded(ends - timedelta(days=8)) == []
    assert reminded(ends - timedelta(days=7)) == [f"7d {day}"]
    assert reminded(ends - timedelta(days=6)) == []  # once
    assert reminded(ends - timedelta(hours=23)) == [f"1d {day}"]
    assert reminded(ends - timedelta(hours=1)) == []
    recipients = set(
        Notification.objects.filter(
            kind=NotificationKind.DELEGATION_ENDING, occasion=f"7d {day}"
        ).values_list("recipient__username", flat=True)
    )
    assert recipients == {"bob", "alice", "olga"}
    # It ends before its certificate does: no certificate reminder, which would be moot.
    assert not Notification.objects.filter(kind=NotificationKind.CERTIFICATE_EXPIRING).exists()


def test_an_expiry_the_worker_gave_up_on_is_not_asked_again_and_the_owners_revoke_it(
    repository, people, delegate, django_capture_on_commit_callbacks
):
    delegation = delegate(in_days(2))
    with django_capture_on_commit_callbacks(execute=False):
        services.delegations_expire(now=delegation.ends_at)
    services.delegation_end_fail(delegation_id=delegation.pk, reason="notary-server refused")

    assert services.delegations_expire(now=delegation.ends_at + timedelta(hours=1)) == []
    failed = Notification.objects.get(
        kind=NotificationKind.DELEGATION_END_FAILED, recipient=people["alice"]
    )
    services.notification_send(notification_id=failed.pk)
    assert "The portal does not ask for this end again" in mail.outbox[-1].body


def test_a_renewal_on_its_way_outlives_the_certificate_it_replaces(
    repository, people, delegate, run_jobs, notary_cli, django_capture_on_commit_callbacks
):
    old = make_bundle("bob", not_after=timezone.now() + timedelta(days=3))
    delegation = delegate(None, bundle=old)
    renewal = services.request_submit(**submission(repository, people["bob"]), renews=delegation)

    with django_capture_on_commit_callbacks(execute=True):
        services.delegations_expire(now=delegation.certificate_expires_at)
    run_jobs()
    assert Delegation.objects.get(pk=delegation.pk).end_reason == EndReason.EXPIRED
    assert DelegationRequest.objects.get(pk=renewal.pk).status == RequestStatus.PENDING

    with django_capture_on_commit_callbacks(execute=True):
        services.request_approve(request_id=renewal.pk, acting_user=people["alice"])
    run_jobs()
    renewal.refresh_from_db()
    assert renewal.status == RequestStatus.DELEGATED, (renewal.status, renewal.failure_reason)
    renewed = Delegation.objects.get(request=renewal)
    assert renewed.is_active
    assert renewed.canonical_key_id in keys_in(notary_cli, repository.gun)["targets/releases"]


def test_an_extended_delegation_is_reminded_again_before_its_new_last_day(
    repository, people, delegate
):
    delegation = delegate(in_days(20))
    first = services.reminders_send(now=delegation.ends_at - timedelta(days=7))
    assert Notification.objects.filter(pk__in=first, kind=NotificationKind.DELEGATION_ENDING)
    extension = services.extension_request(
        delegation_id=delegation.pk, acting_user=people["bob"], until=in_days(40), reason="Q3"
    )
    services.extension_approve(extension_id=extension.pk, acting_user=people["alice"])
    delegation.refresh_from_db()

    again = services.reminders_send(now=delegation.ends_at - timedelta(days=7))

    occasions = set(
        Notification.objects.filter(
            pk__in=again, kind=NotificationKind.DELEGATION_ENDING
        ).values_list("occasion", flat=True)
    )
    assert occasions == {f"7d {in_days(40).isoformat()}"}


def test_on_the_queue_page_an_owner_cannot_approve_a_later_date(limited, people):
    request = services.request_submit(**submission(limited, people["bob"]), until=in_days(30))
    owner = Client()
    owner.force_login(people["alice"])
    queue = owner.get(reverse("delegations:approval_queue")).content.decode()
    assert f'max="{in_days(30).isoformat()}"' in queue  # the date picker stops there too

    answer = owner.post(
        reverse("delegations:request_approve", args=[request.pk]),
        {"comment": "", "until": in_days(31).isoformat()},
        follow=True,
    )

    assert "only shorten" in answer.content.decode()
    assert DelegationRequest.objects.get(pk=request.pk).status == RequestStatus.PENDING
    assert not Decision.objects.exists()
    shortened = owner.post(
        reverse("delegations:request_approve", args=[request.pk]),
        {"comment": "", "until": in_days(7).isoformat()},
    )
    assert shortened.status_code == 302
    assert DelegationRequest.objects.get(pk=request.pk).until == in_days(7)

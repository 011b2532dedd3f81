"""Reminders before a deadline: a delegation's certificate expiring (30 and 7 days before, once
each), a pending request about to expire undecided (once).

Delegations are recorded as the worker records them, without Notary: reminders never touch the
trust data. The clock is the `now=` each run is given.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from delegations import services
from delegations.models import (
    Delegation,
    DelegationRequest,
    EndReason,
    Notification,
    RequestStatus,
)
from delegations.services.reminders import (
    certificate_reminders_send,
    reminders_send,
    request_expiry_reminders_send,
)
from tests.factories import make_bundle, make_user, submission, submit_request

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
EVERYONE = ["alice", "bob", "olga"]  # the member and the repository's two owners


def delegated(repository, member, *, team: str = "qa") -> Delegation:
    """What the worker records once a request's key is in both roles."""
    bundle = make_bundle(member.get_username(), not_after=timezone.now() + 90 * DAY)
    request = submit_request(repository, member, team=team, bundle=bundle)
    DelegationRequest.objects.filter(pk=request.pk).update(status=RequestStatus.DELEGATED)
    request.refresh_from_db()
    delegation = Delegation.of_request(request, since=timezone.now())
    delegation.save()
    return delegation


def reminded(kind: str = "certificate_expiring", **filters) -> list[tuple[str, str]]:
    """(occasion, username) of each reminder owed, sorted."""
    return sorted(
        Notification.objects.filter(kind=kind, **filters).values_list(
            "occasion", "recipient__username"
        )
    )


@pytest.fixture
def bob(repository, people) -> Delegation:
    return delegated(repository, people["bob"])


def test_a_certificate_is_reminded_30_then_7_days_before_it_expires_once_each(bob):
    expires = bob.certificate_expires_at

    assert reminders_send(now=expires - 31 * DAY) == []
    assert reminded() == []

    owed = reminders_send(now=expires - 30 * DAY)
    assert len(owed) == 3
    assert reminded() == [("30d", name) for name in EVERYONE]

    for days_left in (29, 20, 8):
        assert reminders_send(now=expires - days_left * DAY) == []
    assert reminders_send(now=expires - 30 * DAY) == []  # the same run again

    assert len(reminders_send(now=expires - 7 * DAY)) == 3
    assert reminders_send(now=expires - 7 * DAY + timedelta(hours=1)) == []
    assert reminders_send(now=expires - DAY) == []
    assert reminded() == [(occasion, name) for occasion in ("30d", "7d") for name in EVERYONE]


def test_a_delegation_first_seen_within_7_days_gets_only_the_7_day_reminder(bob):
    """A run missed (or a delegation made late) does not send a stale 30-day reminder."""
    reminders_send(now=bob.certificate_expires_at - 5 * DAY)
    assert reminded() == [("7d", name) for name in EVERYONE]


def test_a_delegation_first_seen_at_25_days_is_reminded_now_and_at_7_days(bob):
    reminders_send(now=bob.certificate_expires_at - 25 * DAY)
    assert reminded() == [("30d", name) for name in EVERYONE]
    reminders_send(now=bob.certificate_expires_at - 6 * DAY)
    assert [occasion for occasion, _ in reminded()] == ["30d"] * 3 + ["7d"] * 3


def test_the_reminder_days_are_configurable(bob, settings):
    settings.PORTAL_CERTIFICATE_REMINDER_DAYS = [14]
    assert reminders_send(now=bob.certificate_expires_at - 30 * DAY) == []
    reminders_send(now=bob.certificate_expires_at - 10 * DAY)
    assert reminded() == [("14d", name) for name in EVERYONE]


@pytest.mark.parametrize(
    "end",
    [
        {"ended_at": timezone.now(), "end_reason": EndReason.REVOKED},
        {"ending": EndReason.REVOKED},  # asked, the key not yet out
        {"ending": EndReason.LEFT_TEAM},
    ],
)
def test_ended_or_ending_delegations_are_not_reminded(bob, end):
    Delegation.objects.filter(pk=bob.pk).update(**end)
    assert reminders_send(now=bob.certificate_expires_at - 7 * DAY) == []


def test_an_expired_certificate_is_not_reminded(bob):
    assert reminders_send(now=bob.certificate_expires_at) == []
    assert reminders_send(now=bob.certificate_expires_at + DAY) == []


def test_a_member_renewing_is_left_out_and_reminded_again_if_the_renewal_is_withdrawn(
    bob, repository, people
):
    renewal = services.request_submit(**submission(repository, people["bob"]), renews=bob)
    reminders_send(now=bob.certificate_expires_at - 30 * DAY)
    assert reminded() == [("30d", "alice"), ("30d", "olga")]

    services.request_withdraw(request_id=renewal.pk, acting_user=people["bob"])
    reminders_send(now=bob.certificate_expires_at - 7 * DAY)
    assert ("7d", "bob") in reminded()


def test_owners_of_other_repositories_and_people_without_an_address_are_not_reminded(
    bob, repository, people, stranger
):
    people["olga"].email = ""
    people["olga"].save(update_fields=["email"])
    reminders_send(now=bob.certificate_expires_at - 30 * DAY)
    assert reminded() == [("30d", "alice"), ("30d", "bob")]


def test_each_delegation_is_reminded_on_its_own_schedule(bob, repository, people):
    dave = delegated(repository, people["dave"], team="dev")
    # One run sees dave's certificate 30 days out and bob's (made a moment earlier, so expiring
    # up to a second earlier: certificates count whole seconds) too.
    certificate_reminders_send(now=dave.certificate_expires_at - 30 * DAY)
    assert Notification.objects.filter(kind="certificate_expiring").count() == 6
    owed_for = set(
        Notification.objects.filter(kind="certificate_expiring").values_list(
            "request_id", flat=True
        )
    )
    assert owed_for == {bob.request_id, dave.request_id}


def test_the_reminders_are_sent_by_the_worker(
    bob, rq_queue, run_jobs, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        owed = reminders_send(now=bob.certificate_expires_at - 7 * DAY)
    run_jobs()

    assert sorted(message.to[0] for message in mail.outbox) == [
        f"{name}@example.org" for name in EVERYONE
    ]
    assert all("expires in 7 days" in message.subject for message in mail.outbox)
    sent = Notification.objects.filter(pk__in=owed)
    assert all(notification.sent_at is not None for notification in sent)


def test_the_management_command_says_how_many_were_owed(bob, capsys):
    # It reminds as of now: move the certificate's expiry 7 days ahead of it.
    Delegation.objects.filter(pk=bob.pk).update(
        certificate_expires_at=timezone.now() + 7 * DAY - timedelta(minutes=1)
    )
    call_command("send_reminders")
    assert "3 reminder emails owed" in capsys.readouterr().out
    call_command("send_reminders")
    assert "0 reminder emails owed" in capsys.readouterr().out


# -- pending requests about to expire -------------------------------------------------------------


@pytest.fixture
def pending(repository, people) -> DelegationRequest:
    return submit_request(repository, people["bob"])


def expiry_of(request: DelegationRequest):
    return request.created_at + 7 * DAY


def test_a_pending_request_is_reminded_once_a_day_before_it_expires(pending):
    expires = expiry_of(pending)
    assert request_expiry_reminders_send(now=expires - 25 * timedelta(hours=1)) == []

    assert len(request_expiry_reminders_send(now=expires - 23 * timedelta(hours=1))) == 1
    assert request_expiry_reminders_send(now=expires - timedelta(hours=1)) == []
    assert reminded("request_expiring") == [("before-expiry", "bob")]


def test_an_expired_request_is_not_reminded(pending):
    assert request_expiry_reminders_send(now=expiry_of(pending)) == []
    assert request_expiry_reminders_send(now=expiry_of(pending) + timedelta(minutes=1)) == []


def test_a_decided_or_withdrawn_request_is_not_reminded(pending, repository, people):
    services.request_reject(request_id=pending.pk, acting_user=people["alice"], comment="no")
    withdrawn = submit_request(repository, people["dave"], team="dev")
    services.request_withdraw(request_id=withdrawn.pk, acting_user=people["dave"])

    assert request_expiry_reminders_send(now=expiry_of(pending) - timedelta(hours=1)) == []


def test_the_reminder_hours_are_configurable(pending, settings):
    settings.PORTAL_REQUEST_EXPIRY_REMINDER_HOURS = 48
    assert len(request_expiry_reminders_send(now=expiry_of(pending) - 47 * timedelta(hours=1)))


# -- idempotency ----------------------------------------------------------------------------------


def test_owing_the_same_occasion_twice_owes_it_once(bob):
    """The database decides, not a read before the write: a second call meets the constraint
    for every recipient and owes nothing, inside the caller's transaction."""
    now = bob.certificate_expires_at - 7 * DAY
    owners = services.repository_owners_provision(repository=bob.repository)
    first = services.notifications_create(
        kind="certificate_expiring", request=bob.request, now=now, occasion="7d", owners=owners
    )
    again = services.notifications_create(
        kind="certificate_expiring", request=bob.request, now=now, occasion="7d", owners=owners
    )
    assert len(first) == 3
    assert again == []
    assert Notification.objects.filter(kind="certificate_expiring").count() == 3


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_the_same_moment_owe_each_reminder_once(repository, people):
    """Each run in its own thread and connection. On PostgreSQL they overlap for real; SQLite
    takes them one after the other, which must come to the same."""
    bob = delegated(repository, people["bob"])
    carol = delegated(repository, make_user("carol", teams=("qa",)))
    now = bob.certificate_expires_at - 7 * DAY
    start = threading.Barrier(2)
    results: list[object] = [None, None]

    def run(index: int) -> None:
        try:
            connection.ensure_connection()
            start.wait(30)
            results[index] = reminders_send(now=now)
        except Exception as error:
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert all(isinstance(result, list) for result in results), results
    owed = results[0] + results[1]
    assert len(owed) == len(set(owed)) == 6
    assert sorted(
        Notification.objects.filter(kind="certificate_expiring").values_list(
            "request_id", "recipient__username"
        )
    ) == sorted(
        (delegation.request_id, name)
        for delegation, names in ((bob, EVERYONE), (carol, ["alice", "carol", "olga"]))
        for name in names
    )

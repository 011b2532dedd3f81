"""Access reviews (issue 17, item 3): a repository with a review interval gets a review that
often, listing every active delegation with what its key signs now; its owners keep or revoke
each before a deadline, are mailed when it opens and before the deadline, and the deadline does
what the repository chose to whatever nobody reviewed. Time is injected; the trust data is the
real notary-server's, read by the `notary` CLI."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from delegations import services
from delegations.exceptions import InvalidInput, NotAnOwner, SelfApproval
from delegations.models import (
    AccessReview,
    AuditEvent,
    Delegation,
    EndReason,
    Notification,
    NotificationKind,
    ReviewItem,
    ReviewOutcome,
    UnreviewedPolicy,
)
from delegations.notary import RELEASES
from tests.factories import make_bundle, make_user, submission

pytestmark = [pytest.mark.django_db, pytest.mark.services]

QA = "targets/qa"


def keys_in(notary_cli, gun: str) -> dict[str, set[str]]:
    return {role: set(row["keys"]) for role, row in notary_cli.delegations(gun).items()}


@pytest.fixture
def reviewed(repository, people, run_jobs, django_capture_on_commit_callbacks):
    """bob and carol of team qa delegated on a repository reviewed every 90 days (14 to
    finish); bob has signed v1."""

    def setup(unreviewed: str = UnreviewedPolicy.KEEP) -> dict:
        services.repository_update(
            repository_id=repository.pk,
            notary_url=repository.notary_url,
            owners_group=repository.owners_group,
            review_settings=(90, 14, unreviewed),
        )
        carol = make_user("carol", teams=("qa",))
        bundles = {"bob": make_bundle("bob"), "carol": make_bundle("carol")}
        delegations = {}
        for member in (people["bob"], carol):
            name = member.get_username()
            request = services.request_submit(
                **submission(repository, member, bundle=bundles[name])
            )
            with django_capture_on_commit_callbacks(execute=True):
                services.request_approve(request_id=request.pk, acting_user=people["alice"])
            run_jobs()
            delegations[name] = Delegation.objects.get(request=request)
        return {"bundles": bundles, **delegations, "carol_user": carol}

    return setup


def test_a_review_opens_with_what_each_key_signs_and_mails_the_owners_once(
    repository, people, reviewed, notary_cli
):
    world = reviewed()
    notary_cli.sign(
        repository.gun, person="bob", key_pem=world["bundles"]["bob"].key_pem, tag="v1",
        roles=[RELEASES, QA],
    )  # fmt: skip
    now = timezone.now()

    ran = services.reviews_run(now=now)

    (review,) = AccessReview.objects.all()
    assert ran["opened"] == [review.pk]
    assert review.deadline == now + timedelta(days=14)
    items = {item.delegation.member.get_username(): item for item in review.items.all()}
    assert set(items) == {"bob", "carol"}
    assert {entry["role"] for entry in items["bob"].signs} == {RELEASES, QA}
    assert items["carol"].signs == []  # delegated, but has signed nothing the files show
    owed = Notification.objects.filter(review=review, kind=NotificationKind.REVIEW_OPENED)
    assert {n.recipient.username for n in owed} == {"alice", "olga"}
    services.notification_send(notification_id=owed[0].pk)
    assert "re-certify 2 delegations" in mail.outbox[-1].subject
    assert AuditEvent.objects.get(action="review.opened").details["review"] == review.pk
    # One open at a time, and not again before the interval is over.
    assert services.reviews_run(now=now + timedelta(hours=1))["opened"] == []


def test_keep_and_revoke_then_the_review_closes_and_the_next_comes_after_the_interval(
    repository, people, reviewed, notary_cli, run_jobs, django_capture_on_commit_callbacks
):
    world = reviewed()
    now = timezone.now()
    services.reviews_run(now=now)
    review = AccessReview.objects.get()
    bob_item = review.items.get(delegation=world["bob"])
    carol_item = review.items.get(delegation=world["carol"])
    alice = people["alice"]

    with pytest.raises(InvalidInput, match="Say why"):
        services.review_decide(item_id=carol_item.pk, acting_user=alice, verdict="revoke")
    services.review_decide(
        item_id=bob_item.pk, acting_user=alice, verdict="keep", comment="ships qa", now=now
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.review_decide(
            item_id=carol_item.pk,
            acting_user=alice,
            verdict="revoke",
            comment="moved teams",
            now=now,
        )
    run_jobs()

    roles = keys_in(notary_cli, repository.gun)
    assert world["bob"].canonical_key_id in roles[RELEASES]
    assert world["carol"].canonical_key_id not in roles.get(RELEASES, set())
    assert world["carol"].canonical_key_id not in roles.get(QA, set())
    assert Delegation.objects.get(pk=world["carol"].pk).end_reason == EndReason.REVOKED
    review.refresh_from_db()
    assert review.closed_at == now  # every delegation decided
    assert not review.flagged
    closed = AuditEvent.objects.get(action="review.closed")
    assert (closed.details["kept"], closed.details["revoked"]) == (1, 1)
    kept = AuditEvent.objects.get(action="review.kept")
    assert (kept.actor_name, kept.details["comment"]) == ("alice", "ships qa")

    assert services.reviews_run(now=now + timedelta(days=89))["opened"] == []
    next_ones = services.reviews_run(now=now + timedelta(days=90))["opened"]
    assert len(next_ones) == 1
    assert AccessReview.objects.get(pk=next_ones[0]).items.count() == 1  # bob's only


@pytest.mark.parametrize("policy", [UnreviewedPolicy.KEEP, UnreviewedPolicy.END])
def test_the_deadline_keeps_and_flags_or_ends_what_nobody_reviewed(
    policy, repository, people, reviewed, notary_cli, run_jobs, django_capture_on_commit_callbacks
):
    world = reviewed(policy)
    now = timezone.now()
    services.reviews_run(now=now)
    review = AccessReview.objects.get()
    services.review_decide(
        item_id=review.items.get(delegation=world["bob"]).pk,
        acting_user=people["alice"],
        verdict="keep",
        now=now,
    )

    # Reminded once, PORTAL_REVIEW_REMINDER_DAYS (3) before the deadline.
    assert services.reviews_run(now=now + timedelta(days=10))["reminded"] == []
    assert services.reviews_run(now=now + timedelta(days=11, hours=1))["reminded"] == [review.pk]
    assert services.reviews_run(now=now + timedelta(days=12))["reminded"] == []
    due = Notification.objects.filter(review=review, kind=NotificationKind.REVIEW_DUE)
    services.notification_send(notification_id=due[0].pk)
    assert "1 delegation not reviewed" in mail.outbox[-1].subject

    with django_capture_on_commit_callbacks(execute=True):
        assert services.reviews_run(now=review.deadline)["closed"] == [review.pk]
    run_jobs()

    review.refresh_from_db()
    carol_item = review.items.get(delegation=world["carol"])
    carol = Delegation.objects.get(pk=world["carol"].pk)
    roles = keys_in(notary_cli, repository.gun)
    if policy == UnreviewedPolicy.KEEP:
        assert carol_item.outcome == ReviewOutcome.KEPT_UNREVIEWED
        assert review.flagged
        assert carol.is_active
        assert carol.canonical_key_id in roles[RELEASES]
    else:
        assert carol_item.outcome == ReviewOutcome.ENDED_UNREVIEWED
        assert not review.flagged
        assert carol.end_reason == EndReason.NOT_RECERTIFIED
        assert carol.canonical_key_id not in roles.get(RELEASES, set())
        assert carol.canonical_key_id not in roles.get(QA, set())
        asked = AuditEvent.objects.get(action="delegation.not_recertified")
        assert f"access review #{review.pk}" in asked.details["comment"]
    assert Delegation.objects.get(pk=world["bob"].pk).is_active


def test_nobody_but_the_other_owners_decides_and_the_auditor_sees_every_review(
    repository, people, reviewed, stranger, settings
):
    world = reviewed()
    olga = people["olga"]  # an owner, and in team qa
    request = services.request_submit(**submission(repository, olga))
    services.request_approve(request_id=request.pk, acting_user=people["alice"])
    services.request_apply(request_id=request.pk)
    services.reviews_run(now=timezone.now())
    review = AccessReview.objects.get()
    settings.PORTAL_AUDITOR_GROUP = "auditors"
    ada = make_user("ada", owns=("auditors",))

    bob_item = review.items.get(delegation=world["bob"])
    olga_item = review.items.get(delegation__member=olga)
    for outsider in (people["dave"], stranger, ada):
        with pytest.raises(NotAnOwner):
            services.review_decide(item_id=bob_item.pk, acting_user=outsider, verdict="keep")
    with pytest.raises(SelfApproval):
        services.review_decide(item_id=olga_item.pk, acting_user=olga, verdict="keep")
    assert not ReviewItem.objects.exclude(verdict="").exists()

    auditor = Client()
    auditor.force_login(ada)
    assert (
        review.repository.path in auditor.get(reverse("delegations:review_list")).content.decode()
    )
    page = auditor.get(reverse("delegations:review_detail", args=[review.pk])).content.decode()
    assert "bob" in page
    assert ">Keep</button>" not in page
    refused = auditor.post(
        reverse("delegations:review_decide", args=[review.pk, bob_item.pk]), {"verdict": "keep"}
    )
    assert refused.status_code == 302
    assert not ReviewItem.objects.exclude(verdict="").exists()
    outsider = Client()
    outsider.force_login(stranger)
    assert outsider.get(reverse("delegations:review_detail", args=[review.pk])).status_code == 404


def test_the_record_exports_who_kept_what_and_why_and_the_audit_log_links_it(
    repository, people, reviewed
):
    world = reviewed()
    services.reviews_run(now=timezone.now())
    review = AccessReview.objects.get()
    services.review_decide(
        item_id=review.items.get(delegation=world["bob"]).pk,
        acting_user=people["alice"],
        verdict="keep",
        comment="=SUM(1) ships qa",
    )
    owner = Client()
    owner.force_login(people["alice"])

    rows = list(
        csv.DictReader(
            io.StringIO(
                owner.get(
                    reverse("delegations:review_export_csv", args=[review.pk])
                ).content.decode()
            )
        )
    )
    by_member = {row["member"]: row for row in rows}
    assert by_member["bob"]["verdict"] == "keep"
    assert by_member["bob"]["decided_by"] == "alice"
    assert by_member["bob"]["comment"] == "'=SUM(1) ships qa"  # defused for spreadsheets
    assert by_member["carol"]["verdict"] == ""
    record = json.loads(
        owner.get(reverse("delegations:review_export_json", args=[review.pk])).content
    )
    assert record["repository"] == repository.gun
    assert {item["member"]: item["verdict"] for item in record["items"]} == {
        "bob": "keep",
        "carol": None,
    }
    audit = owner.get(reverse("delegations:audit_log")).content.decode()
    assert reverse("delegations:review_detail", args=[review.pk]) in audit


def test_through_the_api_owners_decide_and_auditors_only_read(
    repository, people, reviewed, stranger, settings
):
    world = reviewed()
    services.reviews_run(now=timezone.now())
    review = AccessReview.objects.get()
    bob_item = review.items.get(delegation=world["bob"])
    settings.PORTAL_AUDITOR_GROUP = "auditors"

    def api(user) -> Client:
        _, secret = services.api_token_create(user=user, name="ci", expires_days=None)
        return Client(headers={"Authorization": f"Bearer {secret}"})

    alice, ada = api(people["alice"]), api(make_user("ada", owns=("auditors",)))
    listed = alice.get(reverse("delegations:api_review_list")).json()
    assert [row["id"] for row in listed["results"]] == [review.pk]
    detail = ada.get(reverse("delegations:api_review_detail", args=[review.pk])).json()
    assert {item["member"] for item in detail["items"]} == {"bob", "carol"}
    decide = reverse("delegations:api_review_decide", args=[review.pk, bob_item.pk])

    refused = ada.post(decide, {"verdict": "keep"}, content_type="application/json")
    assert refused.status_code == 403
    hidden = api(stranger).get(reverse("delegations:api_review_detail", args=[review.pk]))
    assert hidden.status_code == 404
    no_reason = alice.post(decide, {"verdict": "revoke"}, content_type="application/json")
    assert (no_reason.status_code, no_reason.json()["field"]) == (400, "comment")
    kept = alice.post(
        decide, {"verdict": "keep", "comment": "ships qa"}, content_type="application/json"
    )
    assert kept.status_code == 200, kept.content
    assert (kept.json()["verdict"], kept.json()["decided_by"]) == ("keep", "alice")

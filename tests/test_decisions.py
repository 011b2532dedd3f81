"""Owners deciding: thresholds of distinct owners, bulk decisions, filters, the dry run,
withdrawal and expiry."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from delegations import services
from delegations.exceptions import IllegalTransition, NotAllowed, NotAnOwner
from delegations.models import AuditEvent, Decision, DelegationRequest, Notification, RequestStatus
from tests.factories import make_bundle, make_user, submit_request

pytestmark = pytest.mark.django_db


def page_text(response) -> str:
    return html.unescape(re.sub(r"\s+", " ", response.content.decode()))


def members(count: int, *, team: str = "qa") -> list:
    return [make_user(f"member{index}", teams=(team,)) for index in range(count)]


def test_a_threshold_of_two_needs_two_different_owners(
    repository, people, rq_queue, django_capture_on_commit_callbacks
):
    repository.approvals_required = 2
    repository.save(update_fields=["approvals_required"])
    request = submit_request(repository, people["bob"])

    first = services.request_approve(request_id=request.pk, acting_user=people["alice"])
    assert first.status == RequestStatus.PENDING
    assert AuditEvent.objects.filter(request=request, action="request.approval_counted").exists()
    with pytest.raises(IllegalTransition, match="You approved request"):
        services.request_approve(request_id=request.pk, acting_user=people["alice"])

    with django_capture_on_commit_callbacks(execute=True):
        second = services.request_approve(request_id=request.pk, acting_user=people["olga"])
    assert second.status == RequestStatus.APPROVED
    assert Decision.objects.filter(request=request).count() == 2
    approved = AuditEvent.objects.get(request=request, action="request.approved")
    assert approved.details["approvals"] == ["alice", "olga"]
    assert [job.func_name for job in rq_queue.jobs].count(
        "delegations.tasks.repository_publish_job"
    ) == 1


def test_one_rejection_ends_a_request_that_had_approvals(repository, people):
    repository.approvals_required = 2
    repository.save(update_fields=["approvals_required"])
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=people["alice"])
    rejected = services.request_reject(
        request_id=request.pk, acting_user=people["olga"], comment="not this one"
    )
    assert rejected.status == RequestStatus.REJECTED


def test_the_page_says_how_many_approvals_stand_and_why_one_cannot_decide(
    client, repository, people
):
    repository.approvals_required = 2
    repository.save(update_fields=["approvals_required"])
    request = submit_request(repository, people["bob"])
    client.force_login(people["alice"])
    detail = reverse("delegations:request_detail", args=[request.pk])
    assert "0 of 2 owners' approvals so far" in page_text(client.get(detail))
    client.post(reverse("delegations:request_approve", args=[request.pk]), {"comment": "ok"})
    page = page_text(client.get(detail))
    assert "You approved request" in page
    assert "1 more approval from other owners" in page
    assert ">Approve</button>" not in page


def test_bulk_approve_decides_each_and_reports_those_it_could_not(
    client, repository, people, rq_queue
):
    requests = [submit_request(repository, member) for member in members(4)]
    services.request_reject(request_id=requests[0].pk, acting_user=people["olga"], comment="no")
    client.force_login(people["alice"])
    response = client.post(
        reverse("delegations:requests_bulk_decide"),
        {"request_ids": [r.pk for r in requests], "verdict": "approve", "comment": "all good"},
        follow=True,
    )
    page = page_text(response)
    assert f"Requests #{requests[1].pk}, #{requests[2].pk}, #{requests[3].pk} approved." in page
    assert f"Request #{requests[0].pk}: Request #{requests[0].pk} is rejected now." in page
    statuses = DelegationRequest.objects.filter(pk__in=[r.pk for r in requests[1:]])
    assert set(statuses.values_list("status", flat=True)) == {RequestStatus.APPROVED}


def test_bulk_reject_needs_a_comment(client, repository, people):
    requests = [submit_request(repository, member) for member in members(2)]
    client.force_login(people["alice"])
    response = client.post(
        reverse("delegations:requests_bulk_decide"),
        {"request_ids": [r.pk for r in requests], "verdict": "reject", "comment": ""},
        follow=True,
    )
    assert "Say why you reject the request" in page_text(response)
    assert not DelegationRequest.objects.exclude(status=RequestStatus.PENDING).exists()


def test_an_owner_of_another_repository_sees_and_decides_nothing_here(
    client, repository, people, stranger
):
    request = submit_request(repository, people["bob"])
    client.force_login(stranger)
    queue = page_text(client.get(reverse("delegations:approval_queue")))
    assert f"#{request.pk}" not in queue
    assert client.get(reverse("delegations:request_detail", args=[request.pk])).status_code == 404
    denied = client.post(reverse("delegations:request_approve", args=[request.pk]))
    assert denied.status_code == 403
    outcomes = services.requests_decide(
        request_ids=[request.pk], acting_user=stranger, verdict="approve", comment=""
    )
    assert outcomes[0].error == NotAnOwner().message
    assert DelegationRequest.objects.get(pk=request.pk).status == RequestStatus.PENDING


def test_the_queue_filters_by_repository_team_and_requester(client, repository, people):
    qa = members(2)
    dev = [make_user("devon", teams=("dev",))]
    for member in qa:
        submit_request(repository, member)
    submit_request(repository, dev[0], team="dev")
    client.force_login(people["alice"])
    queue = reverse("delegations:approval_queue")

    def shown(**filters) -> set[str]:
        page = page_text(client.get(queue, filters))
        return set(re.findall(r"</a> (\w+) →", page))

    assert shown() == {"member0", "member1", "devon"}
    assert shown(team="dev") == {"devon"}
    assert shown(requester="member1") == {"member1"}
    assert shown(repository=repository.pk, team="qa") == {"member0", "member1"}


def test_an_owner_sees_the_dry_run_of_the_change_against_the_live_server(
    client, repository, people
):
    request = submit_request(repository, people["bob"])
    client.force_login(people["alice"])
    page = page_text(client.get(reverse("delegations:request_detail", args=[request.pk])))
    assert "What approving changes in the trust data" in page
    assert "targets/releases" in page
    assert "targets/qa" in page
    assert request.short_key_id in page
    assert re.search(r"Targets version (\d+) → (\d+)", page)
    # The requester does not get the owners' dry run.
    client.force_login(people["bob"])
    mine = page_text(client.get(reverse("delegations:request_detail", args=[request.pk])))
    assert "What approving changes" not in mine


def test_the_dry_run_says_so_when_notary_cannot_be_reached(client, repository, people):
    request = submit_request(repository, people["bob"])
    repository.notary_url = "http://127.0.0.1:9"  # discard port: nothing listens
    repository.save(update_fields=["notary_url"])
    client.force_login(people["alice"])
    response = client.get(reverse("delegations:request_detail", args=[request.pk]))
    assert response.status_code == 200
    assert "could not read the repository's trust data" in page_text(response)


def test_the_requester_withdraws_a_pending_request_and_nobody_else_can(client, repository, people):
    request = submit_request(repository, people["bob"])
    with pytest.raises(NotAllowed):
        services.request_withdraw(request_id=request.pk, acting_user=people["alice"])
    client.force_login(people["bob"])
    detail = reverse("delegations:request_detail", args=[request.pk])
    assert ">Withdraw</button>" in page_text(client.get(detail))
    response = client.post(reverse("delegations:request_withdraw", args=[request.pk]), follow=True)
    assert f"Request #{request.pk} withdrawn." in page_text(response)
    assert DelegationRequest.objects.get(pk=request.pk).status == RequestStatus.WITHDRAWN
    assert AuditEvent.objects.filter(request=request, action="request.withdrawn").exists()
    again = client.post(reverse("delegations:request_withdraw", args=[request.pk]), follow=True)
    assert "is withdrawn now" in page_text(again)
    # The same team may be asked for again once the first is withdrawn.
    assert submit_request(repository, people["bob"], bundle=make_bundle("bob")).pk


def test_pending_requests_expire_after_the_configured_days_and_the_requester_is_told(
    repository, people, settings
):
    settings.PORTAL_REQUEST_EXPIRY_DAYS = 7
    old = submit_request(repository, people["bob"])
    recent = submit_request(repository, people["dave"], team="dev")
    DelegationRequest.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=8)
    )
    assert services.requests_expire() == [old.pk]
    assert DelegationRequest.objects.get(pk=old.pk).status == RequestStatus.EXPIRED
    assert DelegationRequest.objects.get(pk=recent.pk).status == RequestStatus.PENDING
    told = Notification.objects.filter(request=old, kind="request_expired")
    assert [n.recipient.username for n in told] == ["bob"]
    event = AuditEvent.objects.get(request=old, action="request.expired")
    assert event.actor_name == "portal-worker"
    assert services.requests_expire() == []  # a second run changes nothing


@pytest.mark.services
def test_bulk_approval_of_n_requests_on_one_repository_ends_with_all_n_delegated(
    repository, people, run_jobs, notary_cli, django_capture_on_commit_callbacks
):
    requests = [submit_request(repository, member) for member in members(5)]
    with django_capture_on_commit_callbacks(execute=True):
        outcomes = services.requests_decide(
            request_ids=[r.pk for r in requests],
            acting_user=people["alice"],
            verdict="approve",
            comment="the whole qa team",
        )
    assert not [outcome.error for outcome in outcomes if outcome.error]
    run_jobs()
    statuses = DelegationRequest.objects.filter(pk__in=[r.pk for r in requests])
    assert set(statuses.values_list("status", flat=True)) == {RequestStatus.DELEGATED}
    roles = notary_cli.delegations(repository.gun)
    expected = {r.canonical_key_id for r in requests}
    assert expected <= set(roles["targets/qa"]["keys"])
    assert expected <= set(roles["targets/releases"]["keys"])


def test_the_threshold_is_set_by_the_command_and_audited(repository, people):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    call_command(
        "repository_register",
        repository.gun,
        notary_url=repository.notary_url,
        owners_group=repository.owners_group,
        approvals_required=3,
    )
    repository.refresh_from_db()
    assert repository.approvals_required == 3
    event = AuditEvent.objects.filter(action="repository.updated").latest("id")
    assert event.details["approvals_required"] == {"from": 1, "to": 3}
    with pytest.raises(CommandError, match="At least one owner"):
        call_command(
            "repository_register",
            repository.gun,
            notary_url=repository.notary_url,
            owners_group=repository.owners_group,
            approvals_required=0,
        )

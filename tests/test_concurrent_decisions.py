"""Owners deciding the same request at the same moment, on PostgreSQL: exactly one outcome.

SQLite takes the write lock at BEGIN (`transaction_mode` IMMEDIATE), so there two decisions never
overlap and these tests would prove nothing; on PostgreSQL the two transactions really run side by
side, each in its own thread with its own connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial

import pytest
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection

from delegations import services
from delegations.exceptions import IllegalTransition
from delegations.models import AuditEvent, Decision, DelegationRequest, Repository, RequestStatus
from tests.factories import make_user, submit_request

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (PORTAL_TEST_DATABASE=postgres): SQLite serialises writers",
    ),
    pytest.mark.django_db(transaction=True),
]

ROUNDS = 20
DECISION_ACTIONS = ("request.approved", "request.rejected")
# Longer than any decision takes; a thread still running after it is a deadlock or a hang.
THREAD_TIMEOUT = 30

# One owner's decision: the service, the owner and the comment, e.g.
# (services.request_reject, olga, "no").
OwnerDecision = tuple[Callable[..., DelegationRequest], AbstractBaseUser, str]


def at_once(*calls: Callable[[], object]) -> list[object]:
    """Run each call in its own thread and connection, released together; returns what each
    returned or raised, in order."""
    start = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            connection.ensure_connection()  # connecting is not part of the race
            start.wait(THREAD_TIMEOUT)
            results[index] = call()
        except Exception as error:
            results[index] = error
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(index, call), daemon=True)
        for index, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a decision hung (deadlock?)"
    return results


def one_won_one_lost(*results: object) -> bool:
    """One call returned the request; the other was told it came too late."""
    won = [result for result in results if isinstance(result, DelegationRequest)]
    lost = [result for result in results if isinstance(result, IllegalTransition)]
    return len(won) == 1 and len(lost) == len(results) - 1


def decision_events(request: DelegationRequest) -> list[str]:
    return list(
        AuditEvent.objects.filter(request=request, action__in=DECISION_ACTIONS).values_list(
            "action", flat=True
        )
    )


@pytest.fixture
def new_request(repository, rq_queue):
    """A pending request from a new member each time (a member has one open request at a time).

    `rq_queue` takes the apply job an approval queues; no worker runs it.
    """
    members = iter(range(1, 1000))

    def make() -> DelegationRequest:
        member = make_user(f"member{next(members)}", teams=("qa",))
        return submit_request(repository, member)

    return make


def decided_at_once(
    new_request: Callable[[], DelegationRequest], rounds: int, *decisions: OwnerDecision
) -> Iterator[tuple[DelegationRequest, list[object], str]]:
    """Round after round, a new request that every (service, owner, comment) decides at the same
    moment: the request as the database has it afterwards, what each decision returned or raised,
    in order, and what to say when an assertion fails."""
    for round_ in range(rounds):
        request = new_request()
        results = at_once(
            *(
                partial(decide, request_id=request.pk, acting_user=owner, comment=comment)
                for decide, owner, comment in decisions
            )
        )
        request.refresh_from_db()
        outcomes = ", ".join(
            f"{owner.get_username()} {decide.__name__} → {result!r}"
            for (decide, owner, _), result in zip(decisions, results, strict=True)
        )
        yield request, results, f"round {round_}: {outcomes}"


def both_approve_at_once(
    new_request: Callable[[], DelegationRequest], people: dict, rounds: int
) -> Iterator[tuple[DelegationRequest, list[object], str]]:
    """alice and olga approve each new request at the same moment (see decided_at_once)."""
    return decided_at_once(
        new_request,
        rounds,
        (services.request_approve, people["alice"], "a"),
        (services.request_approve, people["olga"], "o"),
    )


def test_approve_and_reject_at_once_leave_one_decision_and_one_audit_event(new_request, people):
    alice, olga = people["alice"], people["olga"]
    winners = []
    for request, (approved, rejected), context in decided_at_once(
        new_request,
        ROUNDS,
        (services.request_approve, alice, "ok"),
        (services.request_reject, olga, "no"),
    ):
        assert one_won_one_lost(approved, rejected), context
        if isinstance(approved, DelegationRequest):
            winner, status, action = alice, RequestStatus.APPROVED, "request.approved"
        else:
            winner, status, action = olga, RequestStatus.REJECTED, "request.rejected"
        assert request.status == status, context
        decisions = list(Decision.objects.filter(request=request).values_list("owner", "comment"))
        assert decisions == [(winner.pk, "ok" if winner == alice else "no")], context
        assert decision_events(request) == [action], context
        winners.append(winner.get_username())
    # Seen with -s: both owners should win some rounds, or the race was not a race.
    print(f"alice won {winners.count('alice')} of {ROUNDS} rounds, olga {winners.count('olga')}")


def test_two_approvals_at_once_with_one_required_leave_one_decision(new_request, people):
    for request, (first, second), context in both_approve_at_once(new_request, people, ROUNDS // 2):
        assert one_won_one_lost(first, second), context
        assert request.status == RequestStatus.APPROVED, context
        assert Decision.objects.filter(request=request).count() == 1, context
        assert decision_events(request) == ["request.approved"], context


def test_two_approvals_at_once_with_two_required_approve_once(repository, new_request, people):
    """Each approval must see the other's, or both count one of two and the request stays
    pending."""
    Repository.objects.filter(pk=repository.pk).update(approvals_required=2)
    for request, (first, second), context in both_approve_at_once(new_request, people, ROUNDS // 2):
        assert isinstance(first, DelegationRequest), context
        assert isinstance(second, DelegationRequest), context
        assert request.status == RequestStatus.APPROVED, context
        owners = set(Decision.objects.filter(request=request).values_list("owner", flat=True))
        assert owners == {people["alice"].pk, people["olga"].pk}, context
        assert decision_events(request) == ["request.approved"], context

"""The owner queue runs as many SQL statements for 3 pending requests as for 60 (product.md §8).

Counted, not timed: the time is bench/approval_queue.py's business. Each page is rendered once
with a short queue and again once it holds more than a page (`PAGE_SIZE`), and the two counts are
compared, so a statement run per row shown (a related object the selector does not join, a
decision form, a permission check per card) fails here whatever the page's fixed cost is.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from delegations import services
from delegations.models import DelegationRequest, Repository, RequestStatus
from delegations.views.navigation import navigation
from delegations.views.paging import PAGE_SIZE
from tests.factories import make_user, submit_request

pytestmark = pytest.mark.django_db

# What a queue page may cost in all: the session and its user, the owner's groups, the owned
# repositories, the filters' choices, the count and the page itself, the navigation's count.
# Far above today's figure on purpose; the comparison with the short queue is the real check.
MAX_STATEMENTS = 25
SHORT, LONG = 3, 60


def queue_links(content: bytes) -> set[int]:
    """The requests a queue page lists, by the links to their pages."""
    return {int(number) for number in re.findall(rb'href="/requests/(\d+)/"', content)}


def statements(client, url: str) -> tuple[int, list[str], set[int]]:
    """How many SQL statements a render of `url` took, which, and the requests it listed."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured), [query["sql"] for query in captured], queue_links(response.content)


@pytest.fixture
def queue(people, repository):
    """Three pending requests on a repository that needs two approvals: bob's (qa, approved by
    olga already), dave's (dev) and olga's own (qa). `grow()` adds members' requests up to
    `LONG`, one in ten in dev and the others in qa, so that qa alone fills more than a page."""
    # The threshold is set directly, as the admin does; the queue shows it on every card.
    Repository.objects.filter(pk=repository.pk).update(approvals_required=2)
    repository.refresh_from_db()
    bob = submit_request(repository, people["bob"])
    services.request_approve(request_id=bob.pk, acting_user=people["olga"])
    submit_request(repository, people["dave"], team="dev")
    submit_request(repository, people["olga"])

    def grow() -> None:
        for number in range(LONG - SHORT):
            team = "dev" if number % 10 == 0 else "qa"
            member = make_user(f"member{number:03d}", teams=(team,))
            submit_request(repository, member, team=team)

    pending = DelegationRequest.objects.filter(repository=repository, status=RequestStatus.PENDING)
    assert pending.count() == SHORT
    return grow


def queue_pages(repository) -> dict[str, str]:
    base = reverse("delegations:approval_queue")
    return {
        "first page": base,
        "filtered by team": f"{base}?team=qa",
        "filtered by requester": f"{base}?requester=bob",
        "filtered by repository": f"{base}?repository={repository.pk}",
        "all filters": f"{base}?repository={repository.pk}&team=qa&requester=bob",
        "page 2": f"{base}?page=2",
        "page 2 of a team": f"{base}?team=qa&page=2",
    }


def test_the_queue_runs_the_same_statements_for_3_requests_as_for_60(
    client, people, repository, queue
):
    pages = queue_pages(repository)
    client.force_login(people["alice"])
    short = {name: statements(client, url) for name, url in pages.items()}
    queue()
    long = {name: statements(client, url) for name, url in pages.items()}

    # The long queue really is longer than a page, and page 2 shows the rest.
    assert len(short["first page"][2]) == SHORT
    assert len(long["first page"][2]) == PAGE_SIZE
    assert len(long["page 2"][2]) == LONG - PAGE_SIZE
    assert long["first page"][2].isdisjoint(long["page 2"][2])
    in_qa = DelegationRequest.objects.filter(status=RequestStatus.PENDING, team="qa").count()
    assert in_qa > PAGE_SIZE
    assert len(long["filtered by team"][2]) == PAGE_SIZE
    assert len(long["page 2 of a team"][2]) == in_qa - PAGE_SIZE
    assert len(long["filtered by requester"][2]) == 1

    counts = {name: (short[name][0], long[name][0]) for name in pages}
    grown = {name: pair for name, pair in counts.items() if pair[0] != pair[1]}
    assert not grown, "statements grew with the rows shown:\n" + "\n".join(
        f"{name} {pair}: {sql}" for name, pair in grown.items() for sql in long[name][1]
    )
    heaviest = max(count for _, count in counts.values())
    assert heaviest <= MAX_STATEMENTS, long["first page"][1]


def test_an_owner_whose_own_request_waits_sees_it_for_the_same_statements(
    client, people, repository, queue
):
    """olga's own request is shown without a decision form; the other cards have one."""
    client.force_login(people["olga"])
    url = reverse("delegations:approval_queue")
    short, _, shown = statements(client, url)
    assert len(shown) == SHORT
    queue()
    long, sql, shown = statements(client, url)
    assert len(shown) == PAGE_SIZE
    assert long == short, sql


def test_the_pending_count_in_the_navigation_costs_the_same_for_3_requests_as_for_60(
    rf, people, repository, queue
):
    def navigation_for(user) -> tuple[dict, int]:
        request = rf.get("/")
        request.user = user
        with CaptureQueriesContext(connection) as captured:
            shown = navigation(request)
        return shown, len(captured)

    alice_short, alice_short_count = navigation_for(people["alice"])
    dave_short, dave_short_count = navigation_for(people["dave"])
    assert not dave_short.get("nav_is_owner")
    queue()
    alice_long, alice_long_count = navigation_for(people["alice"])
    dave_long, dave_long_count = navigation_for(people["dave"])

    assert alice_short["nav_pending_count"] == SHORT
    assert alice_long["nav_pending_count"] == LONG
    assert not dave_long.get("nav_is_owner")
    assert alice_long_count == alice_short_count
    assert dave_long_count == dave_short_count
    # The groups, whether any repository is owned, one COUNT of the queue and one of the drift
    # findings: never the rows themselves.
    assert alice_long_count <= 5

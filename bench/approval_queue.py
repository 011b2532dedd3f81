"""The owner queue with 10,000 requests in the database: server time and SQL statements per page.

Sets up what production has, in a temporary folder: a SQLite database (the embedded default)
migrated from scratch, a UCP client CA in PORTAL_UCP_CA_BUNDLE, and then, inserted with
`bulk_create` rather than through the services (10,000 submissions would take minutes):

- twelve repositories, eight owned by alice (olga co-owns one, which needs two approvals) and
  four by oscar; 800 members in five teams, a third of them in two;
- 10,000 requests: most pending for alice's repositories, some pending for oscar's, the rest
  delegated, rejected, withdrawn, expired, revoked or superseded, spread over the last week; every
  request carries the fields of one real certificate issued by the CA (parsed by
  `inspect_certificate`) with its own key IDs, fingerprint and challenge nonce;
- the decisions of the decided requests and one approval on part of the two-owner repository's
  pending ones, and for every request its audit events in one valid hash chain.

Neither Notary nor Redis runs: the repositories' Notary URL and PORTAL_REDIS_URL point to a closed
loopback port, so a queue page that needed either would fail rather than be timed.

Then, for alice, signed in: `GET /approvals/` (the first page), a filtered page and a later page,
each rendered `--rounds` times in a row, through the same WSGI application gunicorn serves
(`portal.wsgi`): middleware, session, the view, the filters, the template and the navigation's
pending count. There is no peer: the `notary` CLI has no approval queue, so the figures stand
against the 100 ms target of product.md §8, together with the number of SQL statements each
render runs (which must not grow with the rows shown) and where the time goes.

    .venv/bin/python bench/approval_queue.py [--rounds 200] [--requests 10000]
        [--filter team=qa] [--page 50] [--show-queries] [--profile]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import in_process
from bench.in_process import median_ms, p90_ms
from bench.queue_dataset import OWNER, BusyQueue, Dataset, check_audit_chain
from delegations.demo.bundles import ClientCA
from stack.processes import LOOPBACK, free_port

TARGET_MS = 100.0
WARMUP_ROUNDS = 10
PROFILE_ROUNDS = 50
# The slowest statements of each page are named, cut to this width.
SLOWEST = 3
SQL_WIDTH = 150


class Portal:
    """The portal in this process: its WSGI application and a database as a busy one looks."""

    def __init__(self, ca: ClientCA, closed_url: str, *, requests: int, seed: int) -> None:
        self.application = in_process.migrated_application()
        self.dataset = BusyQueue(ca, closed_url, random.Random(seed)).populate(total=requests)
        self.cookie = self._sign_in(OWNER)
        self.last_cpu = 0.0

    # -- the pages --------------------------------------------------------------------------------

    def _sign_in(self, username: str) -> str:
        from django.contrib.auth import get_user_model
        from django.test import Client

        client = Client()
        client.force_login(get_user_model().objects.get(username=username))
        return "; ".join(f"{name}={morsel.coded_value}" for name, morsel in client.cookies.items())

    def get(self, path: str, query: str = "") -> tuple[float, str]:
        """Serve one GET as a WSGI server would: the seconds it took and the page. Fails loudly
        unless the portal answered 200, so an error page is never counted."""
        environ = in_process.wsgi_environ(
            "GET", path, query=query, headers={"HTTP_COOKIE": self.cookie}
        )
        served = in_process.serve(self.application, environ)
        self.last_cpu = served.cpu
        if not served.status.startswith("200"):
            raise RuntimeError(f"GET {path}?{query} answered {served.status}\n{served.text[:2000]}")
        return served.seconds, served.text


@dataclass
class Page:
    label: str
    query: str
    durations: list[float]
    cpu: list[float]
    queries: list[tuple[str, float]]
    shown: set[int]  # the requests the page lists
    # Per round: the seconds spent in SQL, and each statement's seconds by its place in the render.
    sql: list[float]
    statement_times: list[list[float]]
    widgets: list[float]

    def slowest(self, count: int) -> list[tuple[float, str]]:
        """The `count` statements with the highest median time: (milliseconds, SQL)."""
        rounds = [times for times in self.statement_times if len(times) == len(self.queries)]
        medians = [statistics.median(column) * 1000 for column in zip(*rounds, strict=True)]
        ranked = sorted(zip(medians, (sql for sql, _ in self.queries), strict=True), reverse=True)
        return ranked[:count]


class WidgetClock:
    """The seconds spent rendering form widgets (the filters' selects and their options), by
    wrapping `BoundField.as_widget`, which every way of showing a field goes through. The
    wrapper costs about a microsecond a field, so it stays on while timing."""

    def __init__(self) -> None:
        from django.forms.boundfield import BoundField

        self.seconds = 0.0
        as_widget = BoundField.as_widget

        def timed(field, *args, **kwargs):
            start = time.perf_counter()
            try:
                return as_widget(field, *args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        BoundField.as_widget = timed


def shorten(sql: str, width: int) -> str:
    """A statement's gist: table qualifiers, long column lists and the owned-repositories
    subquery left out, e.g. `SELECT DISTINCT username FROM delegationrequest JOIN user…`."""
    gist = sql.replace('"', "")
    gist = re.sub(
        r"\(SELECT U0\.id FROM \w+ U0 WHERE U0\.owners_group IN \([^)]*\)\)", "owned", gist
    )
    gist = re.sub(r"\b\w+\.(\w+)", r"\1", gist)
    gist = re.sub(r" AS \w+| ASC\b", "", gist)
    gist = re.sub(r"\b(delegations|auth|django)_", "", gist)
    gist = re.sub(r"INNER JOIN (\w+) ON \(.*?\)", r"JOIN \1", gist)
    columns = re.match(r"SELECT (?:DISTINCT )?(.*?) FROM ", gist)
    if columns and len(columns.group(1)) > 30:
        gist = gist.replace(columns.group(1), "…", 1)
    return gist if len(gist) <= width else gist[: width - 1] + "…"


def rows_shown(page: str) -> set[int]:
    """The requests a queue page lists, by its links to request pages."""
    return {int(number) for number in re.findall(r'href="/requests/(\d+)/"', page)}


def time_page(
    portal: Portal, widget_clock: WidgetClock, label: str, query: str, rounds: int
) -> Page:
    for _ in range(WARMUP_ROUNDS):
        portal.get("/approvals/", query)
    with in_process.counted_queries() as statements:
        _, text = portal.get("/approvals/", query)
    durations, cpu, sql, statement_times, widgets = [], [], [], [], []
    for _ in range(rounds):
        # The wrapper costs about a microsecond a statement, so it stays on while timing.
        widget_clock.seconds = 0.0
        with in_process.counted_queries() as timed:
            elapsed, _ = portal.get("/approvals/", query)
        durations.append(elapsed)
        cpu.append(portal.last_cpu)
        sql.append(sum(seconds for _, seconds in timed))
        statement_times.append([seconds for _, seconds in timed])
        widgets.append(widget_clock.seconds)
    shown = rows_shown(text)
    return Page(
        label, query, durations, cpu, list(statements), shown, sql, statement_times, widgets
    )


def profile_page(portal: Portal, query: str, rounds: int) -> str:
    """cProfile over `rounds` more renders (profiled separately: it slows them down)."""
    render = partial(portal.get, "/approvals/", query)
    return in_process.profiled([render] * rounds, cumulative=30, tottime=15)


def report(
    dataset: Dataset, pages: list[Page], load: tuple[float, float], show_queries: bool
) -> None:
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(dataset.statuses.items()))
    print(
        f"The owner queue with {dataset.requests} requests in the database ({statuses}; "
        f"{dataset.owner_pending} pending for {OWNER}'s repositories; {dataset.repositories} "
        f"repositories, {dataset.members} members, {dataset.decisions} decisions, "
        f"{dataset.audit_events} audit events); {os.cpu_count()} CPUs, load average "
        f"{load[0]:.1f} before, {load[1]:.1f} after."
    )
    print("No peer: the notary CLI has no approval queue, so the figures stand against the target.")
    for page in pages:
        verdict = "under" if p90_ms(page.durations) < TARGET_MS else "OVER"
        where = f"GET /approvals/{'?' + page.query if page.query else ''}"
        print(f"  {page.label}: {where}  ({len(page.shown)} requests shown)")
        print(
            f"    server time   median {median_ms(page.durations):6.1f} ms   p90 "
            f"{p90_ms(page.durations):6.1f}   min {min(page.durations) * 1000:6.1f}   max "
            f"{max(page.durations) * 1000:6.1f}   (n={len(page.durations)})"
        )
        print(
            f"    of it CPU     median {median_ms(page.cpu):6.1f} ms   p90 {p90_ms(page.cpu):6.1f}"
        )
        print(f"    target        under  {TARGET_MS:6.1f} ms   (p90 is {verdict} it)")
        parts = zip(page.durations, page.sql, page.widgets, strict=True)
        rest = [total - sql - widgets for total, sql, widgets in parts]
        print(
            f"    where it goes (medians): SQL {median_ms(page.sql):.1f} ms, form widgets "
            f"{median_ms(page.widgets):.1f} ms, the rest (middleware, view, template) "
            f"{median_ms(rest):.1f} ms"
        )
        print(f"    SQL statements per render: {len(page.queries)}; the slowest (median):")
        for milliseconds, sql in page.slowest(SLOWEST):
            print(f"      {milliseconds:6.2f} ms  {shorten(sql, SQL_WIDTH)}")
    counts = {len(page.queries) for page in pages}
    if len(counts) == 1:
        print(
            f"SQL statements per render: {counts.pop()} on every page, whatever the number of "
            "requests it shows."
        )
    else:
        print("SQL statements per render DIFFER between pages: see --show-queries.")
    if show_queries:
        for page in pages:
            print(f"\n{page.label} ({len(page.queries)} statements):")
            for number, (sql, seconds) in enumerate(page.queries, 1):
                print(f"  {number:2d}. {seconds * 1000:6.2f} ms  {sql}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="timed renders of each page")
    parser.add_argument("--requests", type=int, default=10_000, help="requests in the database")
    parser.add_argument(
        "--filter",
        default="team=qa",
        help="query string of the filtered page (default: team=qa)",
    )
    parser.add_argument("--page", type=int, default=50, help="the later page timed (default: 50)")
    parser.add_argument("--seed", type=int, default=5, help="seed of the generated data")
    parser.add_argument(
        "--show-queries", action="store_true", help="print each page's SQL statements"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help=f"also print a cProfile of {PROFILE_ROUNDS} renders of the first page",
    )
    arguments = parser.parse_args()
    if arguments.rounds < 2 or arguments.requests < 100:
        parser.error("--rounds must be at least 2 and --requests at least 100")

    with ExitStack() as cleanup:
        work = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="bench-queue-")))
        closed_url = f"http://{LOOPBACK}:{free_port()}"
        # Nothing listens there: rendering the queue must not need Redis.
        redis_url = f"{closed_url.replace('http', 'redis', 1)}/0"
        ca = cleanup.enter_context(in_process.portal_environment(work, redis_url=redis_url))
        started = time.perf_counter()
        portal = Portal(ca, closed_url, requests=arguments.requests, seed=arguments.seed)
        print(f"(database built in {time.perf_counter() - started:.1f} s)", file=sys.stderr)
        print(f"({check_audit_chain()})", file=sys.stderr)

        later = urlencode({"page": arguments.page})
        load_before = os.getloadavg()[0]
        widget_clock = WidgetClock()
        pages = [
            time_page(portal, widget_clock, label, query, arguments.rounds)
            for label, query in (
                ("first page", ""),
                (f"filtered ({arguments.filter})", arguments.filter),
                (f"page {arguments.page}", later),
            )
        ]
        load = (load_before, os.getloadavg()[0])
        if pages[1].shown == pages[0].shown:
            print(f"(warning: ?{arguments.filter} lists what the first page does)", file=sys.stderr)
        profile = profile_page(portal, "", PROFILE_ROUNDS) if arguments.profile else ""
        dataset = portal.dataset

    report(dataset, pages, load, arguments.show_queries)
    if profile:
        print(f"\ncProfile of {PROFILE_ROUNDS} more renders of the first page:\n{profile}")


if __name__ == "__main__":
    # The folder is removed on the way out of main().
    in_process.run(main)

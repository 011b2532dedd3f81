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
import hashlib
import io
import os
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from urllib.parse import urlencode

from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import in_process
from bench.in_process import median_ms, p90_ms
from delegations.demo.bundles import ClientCA
from stack.processes import LOOPBACK, free_port

TARGET_MS = 100.0
WARMUP_ROUNDS = 10
PROFILE_ROUNDS = 50
# The slowest statements of each page are named, cut to this width.
SLOWEST = 3
SQL_WIDTH = 150
OWNER = "alice"
CO_OWNER = "olga"
OTHER_OWNER = "oscar"
TEAMS = ("qa", "dev", "it-ops", "sec", "web")
MEMBERS = 800
# Of all requests: this share pending for alice's repositories, this share pending for oscar's;
# the rest are closed (decided, withdrawn, expired...) and spread over all the repositories.
OWNER_PENDING_SHARE = 0.7
OTHER_PENDING_SHARE = 0.1
CLOSED_STATUSES = ("delegated", "rejected", "withdrawn", "expired", "revoked", "superseded")
# Requests are spread over this much of the past: pending ones expire after 7 days by default.
SPREAD = timedelta(days=6)
REASON = "I sign the {name} images our team builds for the release pipeline (ticket OPS-{n})."
BATCH = 1000


@contextmanager
def timestamps_as_given(*models) -> Iterator[None]:
    """Lets `bulk_create` keep the created_at / updated_at the bench sets.

    auto_now and auto_now_add overwrite them with the current time on insert, which would give
    all 10,000 requests the same age and the queue's oldest-first order nothing to sort.
    """
    fields = [
        field
        for model in models
        for field in model._meta.concrete_fields
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
    ]
    saved = [(field, field.auto_now, field.auto_now_add) for field in fields]
    for field in fields:
        field.auto_now = field.auto_now_add = False
    try:
        yield
    finally:
        for field, auto_now, auto_now_add in saved:
            field.auto_now, field.auto_now_add = auto_now, auto_now_add


@dataclass
class Dataset:
    """What the bench inserted, for the report."""

    requests: int
    statuses: dict[str, int]
    owner_pending: int
    decisions: int
    audit_events: int
    repositories: int
    members: int


class Portal:
    """The portal in this process: its WSGI application and a database as a busy one looks."""

    def __init__(self, ca: ClientCA, closed_url: str, *, requests: int, seed: int) -> None:
        self.application = in_process.migrated_application()
        self.random = random.Random(seed)
        self.dataset = self._populate(ca, closed_url, total=requests)
        self.cookie = self._sign_in(OWNER)
        self.last_cpu = 0.0

    # -- the database -----------------------------------------------------------------------------

    def _populate(self, ca: ClientCA, closed_url: str, *, total: int) -> Dataset:
        from django.db import transaction

        from delegations.models import AuditEvent

        with transaction.atomic():
            owners = {
                name: in_process.create_user(name, groups=[])
                for name in (OWNER, CO_OWNER, OTHER_OWNER)
            }
            ours, theirs = self._repositories(owners, closed_url)
            members = self._members()
            requests = self._requests(ca, ours, theirs, members, total=total)
            decisions = self._decisions(requests, ours, owners)
            self._audit(requests, decisions)
        statuses: dict[str, int] = {}
        for request in requests:
            statuses[request.status] = statuses.get(request.status, 0) + 1
        owned = {repository.pk for repository in ours}
        return Dataset(
            requests=len(requests),
            statuses=statuses,
            owner_pending=sum(r.status == "pending" and r.repository_id in owned for r in requests),
            decisions=len(decisions),
            audit_events=AuditEvent.objects.count(),
            repositories=len(ours) + len(theirs),
            members=len(members),
        )

    def _repositories(self, owners: dict, closed_url: str) -> tuple[list, list]:
        """Registered through the service (a dozen, with their audit events); trust is
        marked initialised without Notary, which the queue never asks."""
        from django.contrib.auth.models import Group

        from delegations import services
        from delegations.models import Repository

        def register(namespace: str, name: str, owner_names: tuple[str, ...]):
            group = f"owners:{namespace}/{name}"
            for owner_name in owner_names:
                owners[owner_name].groups.add(Group.objects.get_or_create(name=group)[0])
            return services.repository_register(
                dtr_host="dtr.example.org",
                namespace=namespace,
                name=name,
                notary_url=closed_url,
                owners_group=group,
            )

        ours = [register("web", "nginx", (OWNER, CO_OWNER))] + [
            register(namespace, name, (OWNER,))
            for namespace, name in (
                ("web", "frontend"),
                ("web", "assets"),
                ("data", "postgres"),
                ("data", "redis"),
                ("data", "kafka"),
                ("ops", "prometheus"),
                ("ops", "grafana"),
            )
        ]
        theirs = [
            register("platform", name, (OTHER_OWNER,))
            for name in ("api", "gateway", "scheduler", "billing")
        ]
        # Two approvals on the repository olga co-owns; set directly, as the admin would.
        Repository.objects.filter(pk=ours[0].pk).update(approvals_required=2)
        Repository.objects.update(trust_initialised_at=datetime.now(UTC))
        return ours, theirs

    def _members(self) -> list[tuple[object, tuple[str, ...]]]:
        """Members with one or two teams each, in bulk: (user, teams)."""
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.contrib.auth.hashers import make_password
        from django.contrib.auth.models import Group

        user_model = get_user_model()
        unusable = make_password(None)  # what create_user(password=None) sets
        team_groups = {
            team: Group.objects.create(name=settings.PORTAL_TEAM_GROUP_PREFIX + team)
            for team in TEAMS
        }
        users = user_model.objects.bulk_create(
            [
                user_model(
                    username=f"member{number:04d}",
                    email=f"member{number:04d}@example.org",
                    password=unusable,
                )
                for number in range(MEMBERS)
            ],
            batch_size=BATCH,
        )
        memberships, members = [], []
        for index, user in enumerate(users):
            teams = (TEAMS[index % len(TEAMS)],)
            if index % 3 == 0:
                teams += (TEAMS[(index + 1) % len(TEAMS)],)
            members.append((user, teams))
            memberships += [
                user_model.groups.through(user_id=user.pk, group_id=team_groups[team].pk)
                for team in teams
            ]
        user_model.groups.through.objects.bulk_create(memberships, batch_size=BATCH)
        return members

    def _requests(self, ca: ClientCA, ours: list, theirs: list, members: list, *, total: int):
        """`total` requests, each a distinct (repository, member, team) for the open ones, as the
        partial unique constraints demand, with key IDs of its own."""
        from delegations.intake.certificates import inspect_certificate
        from delegations.models import DelegationRequest

        now = datetime.now(UTC)
        certificate, _ = ca.issue("member0000", now=now)
        info = inspect_certificate(certificate.public_bytes(serialization.Encoding.PEM), now=now)
        owner_pending = int(total * OWNER_PENDING_SHARE)
        other_pending = int(total * OTHER_PENDING_SHARE)
        slots = {
            "ours": [(r, u, t) for r in ours for u, teams in members for t in teams],
            "theirs": [(r, u, t) for r in theirs for u, teams in members for t in teams],
        }
        if owner_pending > len(slots["ours"]) or other_pending > len(slots["theirs"]):
            raise SystemExit(f"{total} requests need more members than {MEMBERS}")
        for choices in slots.values():
            self.random.shuffle(choices)
        chosen = [(*slot, "pending") for slot in slots["ours"][:owner_pending]]
        chosen += [(*slot, "pending") for slot in slots["theirs"][:other_pending]]
        everywhere = ours + theirs
        for _ in range(total - len(chosen)):
            user, teams = self.random.choice(members)
            status = self.random.choice(CLOSED_STATUSES)
            chosen.append((self.random.choice(everywhere), user, self.random.choice(teams), status))
        # Oldest first is the queue's order: ages drawn at random, ids in order of age.
        ages = sorted((self.random.random() * SPREAD for _ in chosen), reverse=True)
        self.random.shuffle(chosen)
        rows = []
        for number, ((repository, user, team, status), age) in enumerate(
            zip(chosen, ages, strict=True)
        ):
            key = hashlib.sha256(f"bench key {number}".encode()).hexdigest()
            created = now - age
            rows.append(
                DelegationRequest(
                    requester=user,
                    repository=repository,
                    team=team,
                    reason=REASON.format(name=repository.name, n=1000 + number),
                    certificate_pem=info.pem,
                    keytype=info.keytype,
                    tuf_key_id=hashlib.sha256(key.encode()).hexdigest(),
                    canonical_key_id=key,
                    certificate_sha256=hashlib.sha256(f"bench cert {number}".encode()).hexdigest(),
                    subject=f"CN={user.username}",
                    issuer=info.issuer,
                    not_before=info.not_before,
                    not_after=info.not_after,
                    key_description=info.key_description,
                    # One in ten was taken while proof of possession was not required.
                    possession_nonce=None if number % 10 == 0 else secrets.token_hex(16),
                    status=status,
                    created_at=created,
                    updated_at=created if status == "pending" else created + timedelta(hours=2),
                )
            )
        with timestamps_as_given(DelegationRequest):
            return DelegationRequest.objects.bulk_create(rows, batch_size=BATCH)

    def _decisions(self, requests: list, ours: list, owners: dict) -> list:
        """The owner decisions behind the decided requests, and a first approval (olga's) on a
        third of the pending requests of the repository that needs two."""
        from delegations.models import Decision

        shared, owned = ours[0], {repository.pk for repository in ours}
        rows = []
        for request in requests:
            verdict = {"delegated": "approve", "revoked": "approve", "superseded": "approve",
                       "rejected": "reject"}.get(request.status)  # fmt: skip
            if request.status == "pending" and request.repository_id == shared.pk:
                verdict = "approve" if request.pk % 3 == 0 else None
                owner = owners[CO_OWNER]
            else:
                owner = owners[OWNER if request.repository_id in owned else OTHER_OWNER]
            if verdict:
                rows.append(
                    Decision(
                        request=request,
                        owner=owner,
                        verdict=verdict,
                        comment="" if verdict == "approve" else "Use your team's bundle.",
                        created_at=request.created_at + timedelta(hours=1),
                    )
                )
        with timestamps_as_given(Decision):
            return Decision.objects.bulk_create(rows, batch_size=BATCH)

    def _audit(self, requests: list, decisions: list) -> None:
        """A submission event for every request and one per decision, appended in time order to
        the chain the repositories' registration began, with hashes that verify."""
        from django.contrib.auth import get_user_model

        from delegations.audit.chain import hash_of
        from delegations.models import AuditChainHead, AuditEvent

        names = dict(get_user_model().objects.values_list("pk", "username"))
        timeline = [
            (
                request.created_at,
                AuditEvent(
                    created_at=request.created_at,
                    actor_id=request.requester_id,
                    actor_name=names[request.requester_id],
                    action="request.submitted",
                    request_id=request.pk,
                    repository_id=request.repository_id,
                    details={
                        "team": request.team,
                        "key_ids": [request.canonical_key_id],
                        "certificate_sha256": request.certificate_sha256,
                    },
                ),
            )
            for request in requests
        ]
        by_pk = {request.pk: request for request in requests}
        timeline += [
            (
                decision.created_at,
                AuditEvent(
                    created_at=decision.created_at,
                    actor_id=decision.owner_id,
                    actor_name=names[decision.owner_id],
                    action=f"request.{decision.verdict}",
                    request_id=decision.request_id,
                    repository_id=by_pk[decision.request_id].repository_id,
                    details={"comment": decision.comment},
                ),
            )
            for decision in decisions
        ]
        timeline.sort(key=lambda entry: entry[0])
        head = AuditChainHead.objects.get(pk=1)
        events = []
        for _, event in timeline:
            event.previous_hash = head.last_hash
            event.hash = hash_of(event)
            head.last_hash = event.hash
            events.append(event)
        AuditEvent.objects.bulk_create(events, batch_size=BATCH)
        head.save()

    def check_audit_chain(self) -> str:
        """What `manage.py audit_verify` says of the log built here; it fails loudly if broken."""
        from django.core.management import call_command

        output = io.StringIO()
        call_command("audit_verify", stdout=output)
        return output.getvalue().strip()

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
        print(f"({portal.check_audit_chain()})", file=sys.stderr)

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

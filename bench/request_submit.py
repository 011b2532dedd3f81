"""Submitting a request: the portal's server time beside the `notary` CLI's certificate intake.

Sets up what production has, in a temporary folder: a notary-server and a redis-server on free
loopback ports, a SQLite database (the embedded default) migrated from scratch, a UCP client CA
in PORTAL_UCP_CA_BUNDLE, one repository with its trust initialised and two owners, and one member
of team qa per round (a member asks once per repository and team). Then:

- ours: one complete, successful `POST /requests/new/` per round, through the same WSGI
  application gunicorn serves (`portal.wsgi`): middleware, session and CSRF, multipart parsing,
  the form with `inspect_certificate`, `request_submit` (CA chain, subject, duplicates, proof of
  possession, the insert with its audit event and notifications, the jobs queued in Redis after
  commit) and the redirect. The clock runs only around the WSGI call; the member's side (a new
  bundle from the CA, loading the form, signing the challenge, encoding the multipart body) is
  done before it starts;
- the peer: `notary delegation add <gun> targets/releases cert.pem --all-paths`, staging only,
  timed as a whole process. It parses and checks the certificate and writes a change file; it
  neither contacts the server nor reads local trust data (it stages just the same against an
  unreachable server), so nothing is pulled first.

Prints the median and p90 of ours against the 30 ms target (product.md §8), the CLI's median,
their ratio, and where our time goes.

    .venv/bin/python bench/request_submit.py [--rounds 200] [--cli-rounds 20] [--profile]
"""

from __future__ import annotations

import argparse
import base64
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import in_process
from bench.in_process import median_ms, p90_ms
from delegations.demo.bundles import ClientCA
from stack.processes import LOOPBACK, free_port, notary_service, redis_service

TARGET_MS = 30.0
TEAM = "qa"
WARMUP_ROUNDS = 10
CLI_WARMUP_ROUNDS = 2
PROFILE_ROUNDS = 50
SUBMIT_MODULE = "delegations.services.delegation_requests"
REASON = "I sign the nginx images our team builds for the release pipeline."


@dataclass
class Submission:
    """One member's POST, ready to hand to the WSGI application."""

    username: str
    body: bytes
    headers: dict[str, str]

    def environ(self) -> dict[str, object]:
        return in_process.wsgi_environ(
            "POST", "/requests/new/", body=self.body, headers=self.headers
        )


class Portal:
    """The portal in this process: its WSGI application, a repository and its members."""

    def __init__(self, notary_url: str, ca: ClientCA) -> None:
        self.application = in_process.migrated_application()
        self.ca = ca
        self.repository = self._repository(notary_url)
        self.members = 0
        self.last_cpu = 0.0  # the process's CPU seconds of the last post (see Served.cpu)

    def _repository(self, notary_url: str):
        from delegations import services

        owners_group = "owners:bench/nginx"
        registered = services.repository_register(
            dtr_host="dtr.example.org",
            namespace="bench",
            name="nginx",
            notary_url=notary_url,
            owners_group=owners_group,
        )
        for owner in ("alice", "olga"):
            in_process.create_user(owner, groups=[owners_group])
        return services.repository_initialise_trust(repository_id=registered.pk)

    def new_submission(self) -> Submission:
        """A new member of team qa, signed in, with a new bundle, who has loaded the form."""
        from django.conf import settings
        from django.core.files.uploadedfile import SimpleUploadedFile
        from django.test import Client
        from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

        from delegations import clock
        from delegations.intake.possession import challenge_issue

        self.members += 1
        username = f"member{self.members:05d}"
        user = in_process.create_user(username, groups=[settings.PORTAL_TEAM_GROUP_PREFIX + TEAM])
        client = Client(enforce_csrf_checks=True)
        client.force_login(user)
        page = client.get("/requests/new/")
        if page.status_code != 200:
            raise RuntimeError(f"the request form answered {page.status_code} for {username}")
        certificate, key = self.ca.issue(username, now=clock.now())
        challenge = challenge_issue(user, now=clock.now())
        signature = key.sign(challenge.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
        csrf_token = client.cookies[settings.CSRF_COOKIE_NAME].value
        body = encode_multipart(
            BOUNDARY,
            {
                "csrfmiddlewaretoken": csrf_token,
                "repository": str(self.repository.pk),
                "team": TEAM,
                "certificate": SimpleUploadedFile("cert.pem", cert_pem, "application/x-pem-file"),
                "reason": REASON,
                "challenge": challenge,
                "possession_signature": base64.b64encode(signature).decode("ascii"),
            },
        )
        cookies = "; ".join(
            f"{name}={morsel.coded_value}" for name, morsel in client.cookies.items()
        )
        headers = {
            "CONTENT_TYPE": MULTIPART_CONTENT,
            "HTTP_ORIGIN": f"http://{in_process.HOST}",
            "HTTP_COOKIE": cookies,
        }
        return Submission(username=username, body=body, headers=headers)

    def post(self, submission: Submission) -> float:
        """Serve one submission as a WSGI server would; the seconds it took. Fails loudly unless
        the portal accepted it, so a refused submission is never counted."""
        served = in_process.serve(self.application, submission.environ())
        self.last_cpu = served.cpu
        if not served.status.startswith("302"):
            raise RuntimeError(
                f"{submission.username}'s request was refused: {served.status}\n{served.text}"
            )
        return served.seconds


class Breakdown:
    """Times the parts of a submission by wrapping them where their callers look them up.

    Each wrapper costs about a microsecond, so the breakdown stays on during the timed rounds.
    """

    # (label, module, attribute): each caller looks its function up there at call time.
    PARTS = (
        ("inspect_certificate (form)", "delegations.forms", "inspect_certificate"),
        ("request_submit", "delegations.services", "request_submit"),
        ("  identity_check (CA chain, subject)", SUBMIT_MODULE, "identity_check"),
        ("  duplicate checks", SUBMIT_MODULE, "_refuse_conflicts"),
        ("  possession_verify", SUBMIT_MODULE, "possession_verify"),
        ("  owners to tell", SUBMIT_MODULE, "repository_owners_provision"),
        ("  audit_record", SUBMIT_MODULE, "audit_record"),
        ("  notifications_create", SUBMIT_MODULE, "notifications_create"),
        ("  jobs queued after commit (Redis)", "delegations.queueing", "enqueue_notification_send"),
    )

    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)
        self.rounds: list[dict[str, float]] = []

    def install(self) -> None:
        for label, module_name, attribute in self.PARTS:
            module = importlib.import_module(module_name)
            setattr(module, attribute, self._timed(label, getattr(module, attribute)))

    def _timed(self, label: str, function: Callable) -> Callable:
        current = self.current

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                current[label] += time.perf_counter() - start

        return timed

    def start_round(self) -> None:
        self.current.clear()

    def end_round(self, total: float) -> None:
        self.rounds.append({**self.current, "total": total})

    def medians(self) -> list[tuple[str, float]]:
        labels = [label for label, _, _ in self.PARTS]
        rows = [(label, median_ms([r.get(label, 0.0) for r in self.rounds])) for label in labels]
        # What is left of each round once the form's and the service's parts are taken out.
        rest = [r["total"] - r.get(labels[0], 0.0) - r.get(labels[1], 0.0) for r in self.rounds]
        rows.append(("rest: middleware, session, CSRF, multipart, form, redirect", median_ms(rest)))
        return rows


def time_ours(portal: Portal, rounds: int, breakdown: Breakdown) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of `rounds` submissions."""
    durations, cpu = [], []
    for _ in range(rounds):
        submission = portal.new_submission()
        breakdown.start_round()
        elapsed = portal.post(submission)
        breakdown.end_round(elapsed)
        durations.append(elapsed)
        cpu.append(portal.last_cpu)
    return durations, cpu


def profile_ours(portal: Portal, rounds: int) -> str:
    """cProfile over `rounds` more submissions (profiled separately: it slows them down)."""
    submissions = [portal.new_submission() for _ in range(rounds)]
    return in_process.profiled(
        [partial(portal.post, submission) for submission in submissions], cumulative=35, tottime=20
    )


class NotaryCLI:
    def __init__(self, server_url: str, trust_dir: Path, gun: str) -> None:
        self.base = ["notary", "-d", str(trust_dir), "-s", server_url]
        self.changelist = trust_dir / "tuf" / gun / "changelist"
        self.gun = gun

    def delegation_add(self, cert_path: Path) -> float:
        command = [*self.base, "delegation", "add", self.gun, "targets/releases", str(cert_path)]
        start = time.perf_counter()
        subprocess.run([*command, "--all-paths"], check=True, capture_output=True)
        return time.perf_counter() - start

    def unstage(self) -> None:
        shutil.rmtree(self.changelist, ignore_errors=True)


def time_cli(cli: NotaryCLI, ca: ClientCA, work: Path, rounds: int) -> list[float]:
    durations = []
    for round_number in range(rounds):
        cli.unstage()  # every round stages into an empty changelist, like a member's first add
        certificate, _ = ca.issue(f"cli{round_number:05d}", now=datetime.now(UTC))
        cert_path = work / f"cli{round_number:05d}.pem"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        durations.append(cli.delegation_add(cert_path))
    return durations


def report(
    ours: list[float],
    ours_cpu: list[float],
    peer: list[float],
    breakdown: Breakdown,
    queries: int,
    load: tuple[float, float],
) -> None:
    ours_median, peer_median = median_ms(ours), median_ms(peer)
    verdict = "under" if p90_ms(ours) < TARGET_MS else "OVER"
    print(
        f"Submitting a request (certificate parsing and checks included); {os.cpu_count()} CPUs, "
        f"load average {load[0]:.1f} before, {load[1]:.1f} after:"
    )
    print(
        f"  portal POST /requests/new/  median {ours_median:6.1f} ms   p90 {p90_ms(ours):6.1f}"
        f"   min {min(ours) * 1000:6.1f}   max {max(ours) * 1000:6.1f}   (n={len(ours)}, "
        "server time)"
    )
    print(
        f"  of which CPU time           median {median_ms(ours_cpu):6.1f} ms"
        f"   p90 {p90_ms(ours_cpu):6.1f}   (the rest is waiting: Redis, SQLite, the scheduler)"
    )
    print(f"  target                      under  {TARGET_MS:6.1f} ms   (p90 is {verdict} it)")
    print(
        f"  notary delegation add       median {peer_median:6.1f} ms"
        f"   min {min(peer) * 1000:6.1f}   max {max(peer) * 1000:6.1f}   (n={len(peer)}, "
        "whole process)"
    )
    ratio = ours_median / peer_median
    print(f"  ratio                       the portal takes {ratio:.1f}x as long as the CLI")
    print(f"Where the portal's time goes (medians per round; {queries} SQL statements a round):")
    for label, milliseconds in breakdown.medians():
        print(f"  {label:<60} {milliseconds:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="timed submissions (ours)")
    parser.add_argument("--cli-rounds", type=int, default=20, help="timed notary CLI runs")
    parser.add_argument(
        "--profile", action="store_true", help=f"also print a cProfile of {PROFILE_ROUNDS} rounds"
    )
    arguments = parser.parse_args()
    if arguments.rounds < 2 or arguments.cli_rounds < 1:
        parser.error("--rounds must be at least 2 and --cli-rounds at least 1")

    with ExitStack() as cleanup:
        work = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="bench-submit-")))
        notary_port, redis_port = free_port(), free_port()
        cleanup.enter_context(notary_service(port=notary_port, data_dir=work / "notary"))
        cleanup.enter_context(
            redis_service(port=redis_port, data_dir=work / "redis", durable=False)
        )
        notary_url = f"http://{LOOPBACK}:{notary_port}"
        redis_url = f"redis://{LOOPBACK}:{redis_port}/0"
        ca = cleanup.enter_context(in_process.portal_environment(work, redis_url=redis_url))
        portal = Portal(notary_url, ca)

        breakdown = Breakdown()
        breakdown.install()
        time_ours(portal, WARMUP_ROUNDS, breakdown)
        counted = portal.new_submission()
        with in_process.counted_queries() as statements:
            portal.post(counted)
        queries = len(statements)
        breakdown.rounds.clear()
        load_before = os.getloadavg()[0]
        ours, ours_cpu = time_ours(portal, arguments.rounds, breakdown)

        cli = NotaryCLI(notary_url, work / "cli-trust", portal.repository.gun)
        time_cli(cli, ca, work, CLI_WARMUP_ROUNDS)
        peer = time_cli(cli, ca, work, arguments.cli_rounds)
        load = (load_before, os.getloadavg()[0])

        profile = profile_ours(portal, PROFILE_ROUNDS) if arguments.profile else ""

    report(ours, ours_cpu, peer, breakdown, queries, load)
    if profile:
        print(f"\ncProfile of {PROFILE_ROUNDS} more submissions:\n{profile}")


if __name__ == "__main__":
    # The services are stopped and the folders removed on the way out of main().
    in_process.run(main)

"""An owner approves 100 requests on one repository at once: how many publishes carry them, and
how long the workers take, beside the `notary` CLI making the same 100 delegations one by one.

Starts its own redis-server and notary-server on free loopback ports, the portal (production
settings, SQLite) in a temporary folder, and real `manage.py rqworker` processes: first one, then
three on a new repository. For each it prints the publishes (`notary.published` events), the
worker time (the publish jobs' own run time, as RQ records it) and the wall time from the
approval to the last Delegated. The CLI's figure is `notary delegation add` x2 + `notary publish`
per member, one member after the other, timed in the same run against the same server.

    .venv/bin/python bench/approval_burst.py [--requests 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import in_process
from bench.notary_apply import NotaryCLI
from stack.processes import free_port, notary_service, redis_service

BASE_DIR = Path(__file__).resolve().parent.parent
TEAM = "qa"


@dataclass
class Burst:
    workers: int
    publishes: int
    worker_seconds: float
    approving_seconds: float  # the bulk approval itself, in the web process
    wall_seconds: float
    delegated: int


def portal_repository(notary_url: str, name: str, owner):
    from delegations import services

    registered = services.repository_register(
        dtr_host="dtr.example.org",
        namespace="bench",
        name=name,
        notary_url=notary_url,
        owners_group="owners:bench",
    )
    return services.repository_initialise_trust(repository_id=registered.pk)


def pending_requests(repository, ca, count: int, offset: int) -> list[int]:
    """`count` members of team qa, each with a request and its proof of possession."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from django.conf import settings

    from delegations import clock, services
    from delegations.intake.certificates import inspect_certificate
    from delegations.intake.possession import PossessionProof, challenge_issue

    ids = []
    for number in range(offset, offset + count):
        username = f"member{number:04d}"
        user = in_process.create_user(username, groups=[settings.PORTAL_TEAM_GROUP_PREFIX + TEAM])
        certificate, key = ca.issue(username, now=clock.now())
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        challenge = challenge_issue(user, now=clock.now())
        signature = key.sign(challenge.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        request = services.request_submit(
            requester=user,
            repository=repository,
            team=TEAM,
            certificate=inspect_certificate(pem, now=clock.now()),
            reason="release day",
            proof=PossessionProof(challenge=challenge, signature=_b64(signature)),
        )
        ids.append(request.pk)
    return ids


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def start_workers(count: int, log_dir: Path) -> list[subprocess.Popen]:
    from django_rq import get_queue
    from rq import Worker

    workers = []
    for number in range(count):
        log = (log_dir / f"worker-{number}.log").open("ab")
        workers.append(
            subprocess.Popen(
                [sys.executable, "manage.py", "rqworker", "default"],
                cwd=BASE_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=os.environ.copy(),
            )
        )
    queue = get_queue("default")
    deadline = time.monotonic() + 60
    while len(Worker.all(queue=queue)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the workers did not start; see {log_dir}")
        time.sleep(0.1)
    return workers


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(30)


def burst(repository, request_ids: list[int], alice, workers: int) -> Burst:
    from django_rq import get_queue
    from rq.registry import FinishedJobRegistry, StartedJobRegistry

    from delegations import services
    from delegations.models import AuditEvent, DelegationRequest, RequestStatus

    start = time.perf_counter()
    approved_at = datetime.now(UTC)
    services.requests_decide(
        request_ids=request_ids, acting_user=alice, verdict="approve", comment="release day"
    )
    approving = time.perf_counter() - start
    waiting = DelegationRequest.objects.filter(pk__in=request_ids).exclude(
        status__in=[RequestStatus.DELEGATED, RequestStatus.FAILED]
    )
    deadline = time.monotonic() + 300
    while waiting.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the requests were not applied within 5 minutes")
        time.sleep(0.005)
    wall = time.perf_counter() - start
    queue = get_queue("default")
    # The requests are Delegated once the run commits; the job itself ends a moment later.
    started = StartedJobRegistry(queue=queue)
    while any(job_id.startswith("publish-") for job_id in started.get_job_ids()):
        time.sleep(0.01)
    registry = FinishedJobRegistry(queue=queue)
    jobs = [queue.fetch_job(job_id) for job_id in registry.get_job_ids()]
    worker_seconds = sum(
        (job.ended_at - job.started_at).total_seconds()
        for job in jobs
        if job is not None
        and job.func_name.endswith("repository_publish_job")
        and tuple(job.args) == (repository.pk,)
        and job.started_at
        and job.ended_at
        and job.started_at >= approved_at
    )
    return Burst(
        workers=workers,
        publishes=AuditEvent.objects.filter(
            repository=repository, action="notary.published"
        ).count(),
        worker_seconds=worker_seconds,
        approving_seconds=approving,
        wall_seconds=wall,
        delegated=DelegationRequest.objects.filter(
            pk__in=request_ids, status=RequestStatus.DELEGATED
        ).count(),
    )


def cli_one_by_one(server_url: str, work: Path, ca, count: int) -> float:
    gun = "dtr.example.org/bench/cli"
    cli = NotaryCLI(server_url, work / "cli-trust")
    cli("init", "-p", gun)
    cli("key", "rotate", gun, "snapshot", "-r")  # server-managed, like the portal's
    paths = []
    for number in range(count):
        certificate, _ = ca.issue(f"cli{number:04d}", now=datetime.now(UTC))
        path = work / f"cli{number:04d}.pem"
        path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        paths.append(path)
    start = time.perf_counter()
    for path in paths:
        cli("delegation", "add", gun, "targets/releases", str(path), "--all-paths")
        cli("delegation", "add", gun, f"targets/{TEAM}", str(path), "--all-paths")
        cli("publish", gun)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    arguments = parser.parse_args()
    count = arguments.requests

    with tempfile.TemporaryDirectory(prefix="bench-burst-") as temporary:
        work = Path(temporary)
        redis_port, notary_port = free_port(), free_port()
        redis = redis_service(port=redis_port, data_dir=work / "redis", durable=False)
        notary = notary_service(port=notary_port, data_dir=work / "notary")
        with redis, notary:
            notary_url = f"http://127.0.0.1:{notary_port}"
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
            with in_process.portal_environment(work, redis_url=redis_url) as ca:
                in_process.migrated_application()
                alice = in_process.create_user("alice", groups=["owners:bench"])
                results = []
                single = portal_repository(notary_url, "single", alice)
                single_ids = pending_requests(single, ca, 5, offset=10 * count)
                running = start_workers(1, work)
                try:
                    # One approval at a time: the worker's whole run for one delegation, its
                    # lease, collecting, the publish and the record included.
                    one_by_one = [burst(single, [pk], alice, 1) for pk in single_ids]
                finally:
                    stop_workers(running)
                for number, workers in enumerate((1, 3)):
                    repository = portal_repository(notary_url, f"burst{workers}", alice)
                    ids = pending_requests(repository, ca, count, offset=number * count)
                    running = start_workers(workers, work)
                    try:
                        results.append(burst(repository, ids, alice, workers))
                    finally:
                        stop_workers(running)
                cli_seconds = cli_one_by_one(notary_url, work, ca, count)

    single_ms = statistics.median(result.worker_seconds for result in one_by_one) * 1000
    cli_single_ms = cli_seconds * 1000 / count
    print("One approval, the worker's run (lease, database, publish, read-back):")
    print(
        f"  portal worker   median {single_ms:.1f} ms of {len(one_by_one)}; the CLI's one "
        f"delegation {cli_single_ms:.1f} ms on average ({cli_single_ms / single_ms:.1f}x)"
    )
    print(f"{count} approvals on one repository, local notary-server, SQLite:")
    for result in results:
        ratio = cli_seconds / result.worker_seconds if result.worker_seconds else float("inf")
        print(
            f"  portal, {result.workers} worker(s)  {result.publishes} publish(es), "
            f"worker time {result.worker_seconds * 1000:7.1f} ms; the bulk approval "
            f"{result.approving_seconds * 1000:.0f} ms, then the last Delegated at "
            f"{result.wall_seconds * 1000:.0f} ms; {result.delegated}/{count} delegated; "
            f"the CLI takes {ratio:.1f}x the worker time"
        )
    cli_ms = cli_seconds * 1000
    print(f"  notary CLI          {count} x (delegation add x2 + publish): {cli_ms:.1f} ms")


if __name__ == "__main__":
    in_process.run(main)

"""Crashes injected into real processes (rqworker, rqcron, redis-server, notary-server, and
PostgreSQL for the second pass): each ends with the portal's active delegations equal to the
Notary server's, no request stuck, nothing applied twice.

The times printed (run with `-s`) are from the kill to the last request Delegated; the lease
lifetime and sweep interval are shortened for the suite (3 s and 1 s instead of 15 s and 10 s).
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from delegations import services
from delegations.models import AuditEvent, Delegation, DelegationRequest, RequestStatus
from stack.processes import free_port, redis_service
from tests.conftest import BASE_DIR, start_process, stop_process, wait_for
from tests.factories import make_user, submit_request
from tests.notary.tampering import TamperingProxy

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

BURST = 20
CRASH_POINTS = ["before_post", "after_post", "read_back"]
ROUNDS = 5


@pytest.fixture
def crash_env(worker_env) -> dict[str, str]:
    return {
        **worker_env,
        "PORTAL_NOTARY_TIMEOUT": "2",
        "PORTAL_STALLED_AFTER_SECONDS": "3",
        "PORTAL_SWEEP_SECONDS": "1",
    }


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Starts manage.py processes on request; stops those still running afterwards."""
    started: list[tuple[subprocess.Popen, Path]] = []

    def start(*command: str, env: dict[str, str], name: str) -> subprocess.Popen:
        log_path = tmp_path / f"{name}-{len(started)}.log"
        process = start_process(list(command), env, log_path)
        started.append((process, log_path))
        return process

    yield start
    for process, log_path in started:
        if process.poll() is None:
            stop_process(process, log_path)


@pytest.fixture
def burst(repository, people):
    """BURST pending requests of team qa members on the repository, and their owner."""
    members = [make_user(f"member{number:02d}", teams=("qa",)) for number in range(BURST)]
    return [submit_request(repository, member) for member in members], people["alice"]


def approve_all(requests, owner, rng: random.Random) -> None:
    for request in requests:
        services.request_approve(request_id=request.pk, acting_user=owner)
        time.sleep(rng.uniform(0, 0.03))


def all_delegated(repository) -> bool:
    return not (
        DelegationRequest.objects.filter(repository=repository)
        .exclude(status=RequestStatus.DELEGATED)
        .exists()
    )


def require_portal_equals_notary(repository, requests, notary_cli) -> None:
    """Every request delegated once, and the server's roles hold exactly the active keys."""
    statuses = DelegationRequest.objects.filter(repository=repository).values_list(
        "status", flat=True
    )
    assert set(statuses) == {RequestStatus.DELEGATED}
    active = set(
        Delegation.objects.active()
        .filter(repository=repository)
        .values_list("canonical_key_id", flat=True)
    )
    assert active == {request.canonical_key_id for request in requests}
    listed = notary_cli.delegations(repository.gun)
    assert set(listed["targets/releases"]["keys"]) == active
    assert set(listed["targets/qa"]["keys"]) == active
    for request in requests:
        assert Delegation.objects.filter(request=request).count() == 1
        delegated = AuditEvent.objects.filter(request=request, action="request.delegated")
        assert delegated.count() == 1


@pytest.mark.parametrize("round_number", range(ROUNDS))
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_worker_killed_mid_publish_is_replaced_and_nothing_is_lost_or_doubled(
    point, round_number, crash_env, processes, burst, repository, notary_cli
):
    requests, owner = burst
    rng = random.Random(f"{point}-{round_number}")
    # The crashing worker starts after a random part of the burst is approved, so its first
    # publish (where it dies) carries a batch of random size, while the approvals go on.
    first = rng.randint(1, BURST - 1)
    approve_all(requests[:first], owner, rng)
    crashing = processes(
        "rqworker",
        "default",
        "--worker-class",
        "tests.crashing_worker.CrashingWorker",
        env={**crash_env, "PORTAL_TEST_CRASH_AT": point},
        name="crashing-worker",
    )
    approve_all(requests[first:], owner, rng)
    assert crashing.wait(60) == -9
    killed_at = time.monotonic()
    assert not all_delegated(repository)

    processes("rqworker", "default", env=crash_env, name="replacement-worker")
    processes("rqcron", "delegations.cron", env=crash_env, name="cron")
    wait_for(lambda: all_delegated(repository), what="every request to be delegated")
    recovered = time.monotonic() - killed_at

    require_portal_equals_notary(repository, requests, notary_cli)
    found = AuditEvent.objects.filter(
        request__repository=repository, action="notary.found_delegated"
    )
    # Killed after the server took the batch: the next run found it in place, and said so.
    assert found.exists() == (point != "before_post")
    print(f"\nkilled {point}, round {round_number}: all delegated {recovered:.1f} s after")
    assert recovered < 30


@pytest.mark.parametrize("workers", [2, 3])
def test_several_workers_on_one_repository_publish_in_turn(
    workers, crash_env, processes, burst, repository, notary_cli
):
    requests, owner = burst
    for number in range(workers):
        processes("rqworker", "default", env=crash_env, name=f"worker{number}")
    approve_all(requests, owner, random.Random(workers))
    wait_for(lambda: all_delegated(repository), what="every request to be delegated")
    require_portal_equals_notary(repository, requests, notary_cli)
    # Serialised: every publish built on the one before (no version was lost to a race).
    published = AuditEvent.objects.filter(repository=repository, action="notary.published")
    versions = sorted(event.details["targets_version_after"] for event in published)
    assert versions == list(range(2, 2 + len(versions)))


def test_a_flushed_redis_loses_no_approval(
    crash_env, processes, burst, repository, notary_cli, rq_queue
):
    requests, owner = burst
    processes("rqworker", "default", env=crash_env, name="worker")
    processes("rqcron", "delegations.cron", env=crash_env, name="cron")
    rng = random.Random("flush")
    half = BURST // 2
    approve_all(requests[:half], owner, rng)
    rq_queue.connection.flushall()  # the queue, its jobs and the markers are gone
    approve_all(requests[half:], owner, rng)
    rq_queue.connection.flushall()
    wait_for(lambda: all_delegated(repository), what="every request to be delegated")
    require_portal_equals_notary(repository, requests, notary_cli)


def test_a_job_that_kills_its_worker_every_time_fails_after_its_attempts(
    crash_env, processes, burst, repository, notary_cli
):
    requests, owner = burst
    env = {**crash_env, "PORTAL_PUBLISH_ATTEMPTS": "2"}
    approve_all(requests[:3], owner, random.Random("loop"))
    for number in range(2):  # a supervisor restarts it; it dies again on the same batch
        crashing = processes(
            "rqworker",
            "default",
            "--worker-class",
            "tests.crashing_worker.CrashingWorker",
            env={**env, "PORTAL_TEST_CRASH_AT": "before_post"},
            name=f"crashing-worker{number}",
        )
        if number == 1:
            processes("rqcron", "delegations.cron", env=env, name="cron")
        assert crashing.wait(60) == -9
    processes("rqworker", "default", env=env, name="worker")

    failed = DelegationRequest.objects.filter(pk__in=[r.pk for r in requests[:3]])
    wait_for(
        lambda: set(failed.values_list("status", flat=True)) == {RequestStatus.FAILED},
        what="the requests to end Failed instead of looping in Applying",
    )
    assert all("stopped or met an unexpected error 2 times" in r.failure_reason for r in failed)
    assert not notary_cli.delegations(repository.gun)  # nothing went in: failed truthfully


def test_an_approval_whose_web_process_died_before_queueing_it_is_applied(
    crash_env, processes, burst, repository, notary_cli, rq_queue
):
    requests, owner = burst
    approve_all(requests[1:], owner, random.Random("web"))
    # The web process commits the approval, then is SIGKILLed before its job reaches Redis.
    killed = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            _APPROVE_THEN_DIE.format(request_id=requests[0].pk, owner=owner.get_username()),
        ],
        cwd=BASE_DIR,
        env=crash_env,
        capture_output=True,
        timeout=60,
    )
    assert killed.returncode == -9, killed.stderr.decode()
    assert DelegationRequest.objects.get(pk=requests[0].pk).status == RequestStatus.APPROVED

    processes("rqworker", "default", env=crash_env, name="worker")
    processes("rqcron", "delegations.cron", env=crash_env, name="cron")
    wait_for(lambda: all_delegated(repository), what="every request to be delegated")
    require_portal_equals_notary(repository, requests, notary_cli)


_APPROVE_THEN_DIE = """
import os, signal
from django.contrib.auth import get_user_model
from delegations import queueing, services
queueing.enqueue_repository_publish = lambda repository_id: os.kill(os.getpid(), signal.SIGKILL)
services.request_approve(
    request_id={request_id}, acting_user=get_user_model().objects.get(username="{owner}")
)
"""


def test_a_redis_restarted_mid_burst_loses_nothing(
    crash_env, processes, burst, repository, notary_cli, settings, tmp_path
):
    requests, owner = burst
    port = free_port()
    redis = redis_service(port=port, data_dir=tmp_path / "redis", durable=True).start()
    try:
        url = f"redis://127.0.0.1:{port}/0"
        settings.RQ_QUEUES = {"default": {**settings.RQ_QUEUES["default"], "URL": url}}
        env = {**crash_env, "PORTAL_REDIS_URL": url}
        processes("rqworker", "default", env=env, name="worker")
        cron = processes("rqcron", "delegations.cron", env=env, name="cron")
        rng = random.Random("restart")
        approve_all(requests[: BURST // 2], owner, rng)
        redis.stop()  # its append-only file keeps what was queued
        redis.start()
        approve_all(requests[BURST // 2 :], owner, rng)
        if cron.poll() is not None:  # as compose's restart policy and make run do
            processes("rqcron", "delegations.cron", env=env, name="cron-restarted")
        wait_for(lambda: all_delegated(repository), what="every request to be delegated")
        require_portal_equals_notary(repository, requests, notary_cli)
    finally:
        redis.stop()


@pytest.mark.slow
def test_a_notary_server_gone_for_60_seconds_mid_burst_loses_nothing(
    crash_env, processes, burst, repository, notary_cli, notary_url
):
    """The outage is a proxy in front of the server that stops listening (connections are
    refused, as by a stopped server): the test server keeps its trust data in memory, which a
    real stop would lose."""
    requests, owner = burst
    with TamperingProxy(notary_url) as proxy:
        repository.notary_url = proxy.url
        repository.save(update_fields=["notary_url"])
        # The production back-off, shortened only as far as this outage needs.
        env = {**crash_env, "PORTAL_JOB_RETRY_INTERVALS": "5,30,60,120"}
        processes("rqworker", "default", env=env, name="worker")
        processes("rqcron", "delegations.cron", env=env, name="cron")
        rng = random.Random("outage")
        approve_all(requests[: BURST // 2], owner, rng)
        proxy.stop()
        stopped_at = time.monotonic()
        approve_all(requests[BURST // 2 :], owner, rng)
        time.sleep(max(0.0, 60 - (time.monotonic() - stopped_at)))
        proxy.start_again()
        back_at = time.monotonic()
        wait_for(
            lambda: all_delegated(repository),
            what="every request to be delegated",
            timeout=180,
        )
        print(f"\nnotary back: all delegated {time.monotonic() - back_at:.1f} s after")
        require_portal_equals_notary(repository, requests, notary_cli)

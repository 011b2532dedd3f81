"""Whether this portal can do its work now: its database, Redis (the queue), a worker that has
reported in lately, and optionally the Notary servers of its repositories. Each check says what
failed in words an operator can act on, and never holds a secret (no URL with a password)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
import urllib3
from django.conf import settings
from django.db import connection
from rq import Worker

from ..models import Repository

# Each check answers within this, so a hung dependency makes /readyz say so rather than hang.
CHECK_TIMEOUT_SECONDS = 3.0
# An idle RQ worker beats about every `worker_ttl - 15` seconds (405 by default); one that has
# been silent for longer than its ttl and a minute is gone.
WORKER_SILENCE = timedelta(seconds=420 + 60)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def readiness(*, notary: bool | None = None) -> list[Check]:
    checks = [database_check()]
    queue = redis_check()
    checks.append(queue)
    checks.append(worker_check() if queue.ok else Check("worker", False, "Redis is unavailable"))
    if settings.PORTAL_READYZ_NOTARY if notary is None else notary:
        checks.extend(notary_checks())
    return checks


def database_check() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:
        return Check("database", False, f"{type(error).__name__}: {_first_line(error)}")
    return Check("database", True, "ok")


def _redis() -> redis.Redis:
    return redis.Redis.from_url(
        str(settings.RQ_QUEUES["default"]["URL"]),
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
        socket_timeout=CHECK_TIMEOUT_SECONDS,
    )


def redis_check() -> Check:
    try:
        _redis().ping()
    except redis.RedisError as error:
        return Check("redis", False, f"{type(error).__name__}: {_first_line(error)}")
    return Check("redis", True, "ok")


def worker_check() -> Check:
    try:
        workers = Worker.all(connection=_redis())
    except redis.RedisError as error:
        return Check("worker", False, f"{type(error).__name__}: {_first_line(error)}")
    now = datetime.now(UTC)
    beating = [
        worker
        for worker in workers
        if worker.last_heartbeat is not None
        and now - worker.last_heartbeat.replace(tzinfo=UTC) < WORKER_SILENCE
    ]
    if not beating:
        return Check(
            "worker",
            False,
            f"no worker has reported in the last {int(WORKER_SILENCE.total_seconds())} s "
            f"({len(workers)} registered)",
        )
    return Check("worker", True, f"{len(beating)} running")


def notary_checks() -> list[Check]:
    """notary-server's own health endpoint, once per server the repositories use."""
    verify = settings.PORTAL_NOTARY_CA_BUNDLE or None
    pool = urllib3.PoolManager(
        cert_reqs="CERT_REQUIRED",
        ca_certs=verify,
        timeout=urllib3.Timeout(total=CHECK_TIMEOUT_SECONDS),
        retries=False,
    )
    checks = []
    urls = sorted(set(Repository.objects.values_list("notary_url", flat=True)))
    for url in urls:
        name = f"notary {url}"
        try:
            answer = pool.request("GET", url.rstrip("/") + "/_notary_server/health")
        except urllib3.exceptions.HTTPError as error:
            checks.append(Check(name, False, f"{type(error).__name__}: {_first_line(error)}"))
            continue
        ok = answer.status == 200
        checks.append(Check(name, ok, "ok" if ok else f"answered {answer.status}"))
    return checks


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [""])[0][:300]

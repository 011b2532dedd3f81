"""/healthz, /readyz and /metrics against real processes: a Redis that is stopped and started
again, a real rqworker, publishes that succeed and fail."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from delegations import services
from delegations.models import Repository
from stack.processes import LOOPBACK, free_port, redis_service
from tests.conftest import start_process, stop_process, wait_for
from tests.factories import submit_request

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def test_healthz_answers_without_a_session():
    answer = Client().get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


@pytest.fixture
def own_redis(tmp_path, settings, rq_queue):
    """A Redis of this test's own (append-only, as in production), that it may stop. After
    `rq_queue`, so that the queue the portal checks is this one."""
    port = free_port()
    service = redis_service(port=port, data_dir=tmp_path / "redis", durable=True)
    url = f"redis://{LOOPBACK}:{port}/0"
    settings.RQ_QUEUES = {"default": {**settings.RQ_QUEUES["default"], "URL": url}}
    service.start()
    try:
        yield service, url
    finally:
        service.stop()


def readyz() -> tuple[int, dict]:
    answer = Client().get("/readyz")
    return answer.status_code, answer.json()


@pytest.mark.django_db(transaction=True)
def test_readyz_names_what_fails_and_recovers_when_redis_comes_back(
    own_redis, worker_env, tmp_path
):
    service, url = own_redis
    status, body = readyz()
    assert (status, body["failing"]) == (503, ["worker"])  # nothing works the queue yet
    with pytest.raises(CommandError, match="Not ready: worker"):
        call_command("health_check")

    log = tmp_path / "worker.log"
    worker = start_process(["rqworker", "default"], {**worker_env, "PORTAL_REDIS_URL": url}, log)
    try:
        wait_for(lambda: readyz()[0] == 200, what="/readyz to see the worker")
        assert readyz()[1]["checks"]["database"] == "ok"
        call_command("health_check")

        service.stop()
        status, body = readyz()
        assert status == 503
        assert body["status"] == "not ready"
        assert body["failing"] == ["redis", "worker"]
        assert "Connection" in body["checks"]["redis"]

        service.start()
        wait_for(lambda: readyz()[0] == 200, what="/readyz to recover with Redis")
    finally:
        stop_process(worker, log)


def test_readyz_can_ask_the_notary_servers(repository, rq_queue, settings):
    settings.PORTAL_READYZ_NOTARY = True
    checks = readyz()[1]["checks"]
    assert checks[f"notary {repository.notary_url}"] == "ok"
    port = free_port()
    Repository.objects.filter(pk=repository.pk).update(notary_url=f"http://{LOOPBACK}:{port}")
    status, body = readyz()
    assert status == 503
    assert f"notary http://{LOOPBACK}:{port}" in body["failing"]


def scrape(client: Client, **headers: str) -> str:
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.content
    assert answer["Content-Type"].startswith("text/plain; version=")
    return answer.content.decode()


def value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert match, f"{series} not in\n{text}"
    return float(match.group(1))


def test_metrics_count_requests_queue_publishes_and_failures(
    repository, people, rq_queue, run_jobs, django_capture_on_commit_callbacks, settings
):
    now = timezone.now()
    waiting = submit_request(repository, people["bob"])
    services.request_approve(
        request_id=waiting.pk, acting_user=people["alice"], now=now - timedelta(hours=1)
    )
    pending = submit_request(repository, people["dave"], team="dev")

    text = scrape(Client())
    assert value(text, 'portal_requests{status="approved"}') == 1
    assert value(text, 'portal_requests{status="pending"}') == 1
    assert value(text, "portal_oldest_approved_unapplied_seconds") >= 3600
    assert value(text, "portal_redis_up") == 1

    with django_capture_on_commit_callbacks(execute=True):
        services.request_approve(request_id=pending.pk, acting_user=people["alice"])
    assert value(scrape(Client()), 'portal_queue_jobs{state="queued"}') >= 1
    run_jobs()
    text = scrape(Client())
    assert value(text, 'portal_requests{status="delegated"}') == 2
    assert value(text, "portal_oldest_approved_unapplied_seconds") == 0
    assert value(text, "portal_publish_duration_seconds_count") == 1
    assert value(text, 'portal_publish_duration_seconds_bucket{le="+Inf"}') == 1
    assert value(text, "portal_delegations_active") == 2

    # A publish that cannot reach its server is counted by what failed.
    Repository.objects.filter(pk=repository.pk).update(
        notary_url=f"http://{LOOPBACK}:{free_port()}"
    )
    later = submit_request(repository, people["olga"])
    with django_capture_on_commit_callbacks(execute=True):
        services.request_approve(request_id=later.pk, acting_user=people["alice"])
    services.repository_publish(repository_id=repository.pk)
    text = scrape(Client())
    assert value(text, 'portal_publish_failures_total{reason="server_unreachable"}') == 1


def test_metrics_are_only_for_the_scraper(settings, rq_queue):
    settings.PORTAL_METRICS_NETWORKS = []
    settings.PORTAL_METRICS_TOKEN = ""
    assert Client().get("/metrics").status_code == 403
    settings.PORTAL_METRICS_TOKEN = "scraper-token-made-for-this-test"
    assert Client().get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    scrape(Client(), Authorization="Bearer scraper-token-made-for-this-test")
    # Forwarded headers are the client's to write; only the peer's address counts.
    import ipaddress

    settings.PORTAL_METRICS_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]
    settings.PORTAL_METRICS_TOKEN = ""
    forged = Client().get("/metrics", headers={"X-Forwarded-For": "10.1.2.3"})
    assert forged.status_code == 403
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200

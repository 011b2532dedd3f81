"""The figures Prometheus scrapes at /metrics.

Most are read from the database and the queue at scrape time, so every web process answers the
same. Publish durations and failures happen in the worker: it adds them to counters in Redis
(best effort: a metric is never worth a failed publish), and the scrape reads them from there.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import django_rq
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from redis import RedisError
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)

from ..models import AuditAction, AuditEvent, Delegation, DelegationRequest, RequestStatus

logger = logging.getLogger(__name__)

PUBLISH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_DURATIONS = "portal:metrics:publish_seconds"
_FAILURES = "portal:metrics:publish_failures"


def _connection():
    return django_rq.get_connection("default")


def publish_observed(seconds: float) -> None:
    """Count one publish to a Notary server that took `seconds` (the worker calls this)."""
    try:
        with _connection().pipeline() as pipeline:
            for bound in PUBLISH_BUCKETS:
                if seconds <= bound:
                    pipeline.hincrby(_DURATIONS, f"le:{bound}", 1)
            pipeline.hincrby(_DURATIONS, "count", 1)
            pipeline.hincrbyfloat(_DURATIONS, "sum", seconds)
            pipeline.execute()
    except RedisError as error:
        logger.warning("publish duration not counted: %s", error)


def publish_failed(error: BaseException) -> None:
    """Count one failed publish by what failed (the error's kind, e.g. server_unreachable)."""
    reason = re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()
    try:
        _connection().hincrby(_FAILURES, reason, 1)
    except RedisError as failure:
        logger.warning("publish failure not counted: %s", failure)


class PortalCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from _requests()
        yield from _delegations()
        yield from _oldest_approved()
        yield from _from_redis()


def _requests() -> Iterator[Metric]:
    family = GaugeMetricFamily(
        "portal_requests", "Delegation requests by status", labels=["status"]
    )
    counts = dict(
        DelegationRequest.objects.values_list("status").annotate(n=Count("id")).order_by()
    )
    for status in RequestStatus.values:
        family.add_metric([status], counts.get(status, 0))
    yield family


def _delegations() -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "portal_delegations_active",
        "Delegations whose key is in both roles",
        value=Delegation.objects.active().count(),
    )


def _oldest_approved() -> Iterator[Metric]:
    oldest = AuditEvent.objects.filter(
        action=AuditAction.REQUEST_APPROVED,
        request__status__in=(RequestStatus.APPROVED, RequestStatus.APPLYING),
    ).aggregate(oldest=Min("created_at"))["oldest"]
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    yield GaugeMetricFamily(
        "portal_oldest_approved_unapplied_seconds",
        "How long the oldest approved request has waited for the worker to apply it (0: none)",
        value=max(age, 0.0),
    )


def _from_redis() -> Iterator[Metric]:
    try:
        connection = _connection()
        queue = django_rq.get_queue("default")
        depth = {
            "queued": queue.count,
            "started": StartedJobRegistry(queue=queue).count,
            "scheduled": ScheduledJobRegistry(queue=queue).count,
            "deferred": DeferredJobRegistry(queue=queue).count,
            "failed": FailedJobRegistry(queue=queue).count,
        }
        durations = {k.decode(): v.decode() for k, v in connection.hgetall(_DURATIONS).items()}
        failures = {k.decode(): int(v) for k, v in connection.hgetall(_FAILURES).items()}
    except RedisError as error:
        logger.warning("queue figures not read: %s", error)
        yield GaugeMetricFamily("portal_redis_up", "Whether Redis answered this scrape", value=0)
        return
    yield GaugeMetricFamily("portal_redis_up", "Whether Redis answered this scrape", value=1)
    jobs = GaugeMetricFamily(
        "portal_queue_jobs", "Jobs of the worker's queue by state", labels=["state"]
    )
    for state, jobs_in_state in depth.items():
        jobs.add_metric([state], jobs_in_state)
    yield jobs
    buckets = [(str(bound), float(durations.get(f"le:{bound}", 0))) for bound in PUBLISH_BUCKETS]
    count = float(durations.get("count", 0))
    yield HistogramMetricFamily(
        "portal_publish_duration_seconds",
        "Publishes to Notary servers by how long they took",
        buckets=[*buckets, ("+Inf", count)],
        sum_value=float(durations.get("sum", 0)),
    )
    failed = CounterMetricFamily(
        "portal_publish_failures", "Failed publishes by what failed", labels=["reason"]
    )
    for reason, number in sorted(failures.items()):
        failed.add_metric([reason], number)
    yield failed


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(PortalCollector())

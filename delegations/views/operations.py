"""For the machines around the portal: /healthz (the process answers), /readyz (it can work:
database, Redis, a live worker, optionally the Notary servers) and /metrics (Prometheus).

None of them needs a session. /metrics is for a scraper with PORTAL_METRICS_TOKEN, or from an
address in PORTAL_METRICS_NETWORKS; it tells how busy the portal is, which is not for everyone.
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..monitoring import health, metrics


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = health.readiness()
    ready = all(check.ok for check in checks)
    body = {
        "status": "ready" if ready else "not ready",
        "failing": [check.name for check in checks if not check.ok],
        "checks": {check.name: check.detail for check in checks},
    }
    return JsonResponse(body, status=200 if ready else 503)


@never_cache
@require_GET
def metrics_page(request: HttpRequest) -> HttpResponse:
    if not _may_scrape(request):
        return HttpResponse(
            "Metrics are for the scraper: send PORTAL_METRICS_TOKEN as a bearer token, or scrape "
            "from PORTAL_METRICS_NETWORKS.\n",
            status=403,
            content_type="text/plain",
        )
    return HttpResponse(generate_latest(metrics.REGISTRY), content_type=CONTENT_TYPE_LATEST)


def _may_scrape(request: HttpRequest) -> bool:
    token = settings.PORTAL_METRICS_TOKEN
    sent = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        return True
    try:
        # The peer's address only: a forwarded-for header is whatever the client wrote.
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in settings.PORTAL_METRICS_NETWORKS)

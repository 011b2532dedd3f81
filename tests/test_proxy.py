"""The compose stack's TLS proxy, run for real: Caddy with `deploy/caddy/Caddyfile` in front of the
portal under gunicorn, as docker-compose.yml runs them, on loopback ports. It checks what the
portal's settings assume of the proxy (tests/test_hardening.py fakes it in process): it
terminates TLS with the operator's certificate, says https in X-Forwarded-Proto, and puts the
address it saw last in X-Forwarded-For whatever the client sent there."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from axes.models import AccessAttempt

from delegations.demo.tls import demo_server_certificates
from stack.processes import LOOPBACK, Service, free_port
from tests.conftest import BASE_DIR
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.services

CADDYFILE = BASE_DIR / "deploy" / "caddy" / "Caddyfile"


@pytest.fixture
def portal_behind_caddy(worker_env, tmp_path: Path) -> Iterator[dict[str, object]]:
    """The portal (gunicorn, as compose's `web`) and Caddy (as compose's `proxy`) started; yields
    their addresses and the CA that checks the proxy's certificate."""
    certificates = tmp_path / "certs"
    demo_server_certificates(certificates, names=["localhost"], now=datetime.now(UTC))
    web_port, http_port, https_port = free_port(), free_port(), free_port()
    web = Service(
        "web",
        [sys.executable, "-m", "gunicorn", "portal.wsgi", "--bind", f"{LOOPBACK}:{web_port}"],
        port=web_port,
        log_path=tmp_path / "web.log",
        cwd=BASE_DIR,
        env={
            **worker_env,
            # compose's settings for the web service behind its proxy, and the redirect an
            # operator may add (the proxy already sends plain http to https).
            "PORTAL_BEHIND_TLS_PROXY": "1",
            "PORTAL_BASE_URL": f"https://localhost:{https_port}",
            "PORTAL_SSL_REDIRECT": "1",
            "PORTAL_HSTS_SECONDS": "3600",
        },
    )
    proxy = Service(
        "caddy",
        ["caddy", "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        port=https_port,
        log_path=tmp_path / "caddy.log",
        env={
            "HOME": str(tmp_path),
            "XDG_DATA_HOME": str(tmp_path / "caddy-data"),
            "XDG_CONFIG_HOME": str(tmp_path / "caddy-config"),
            "PORTAL_HOSTNAME": f"localhost:{https_port}",
            "PORTAL_TLS": f"{certificates / 'server.pem'} {certificates / 'server-key.pem'}",
            "PROXY_HTTP_PORT": str(http_port),
            "PROXY_BIND": LOOPBACK,
            "PROXY_ADMIN": "off",
            "PROXY_UPSTREAM": f"{LOOPBACK}:{web_port}",
        },
    )
    with web, proxy:
        yield {
            "https": f"https://localhost:{https_port}",
            "http": f"http://localhost:{http_port}",
            "web": f"http://{LOOPBACK}:{web_port}",
            "ca": str(certificates / "ca.pem"),
        }


def test_the_proxy_terminates_tls_and_the_portal_knows_the_request_was_https(portal_behind_caddy):
    https, ca = portal_behind_caddy["https"], portal_behind_caddy["ca"]

    page = requests.get(f"{https}/accounts/login/", verify=ca, timeout=10, allow_redirects=False)

    assert page.status_code == 200  # not redirected: the portal saw https
    assert page.headers["Strict-Transport-Security"].startswith("max-age=3600")
    assert "Secure" in page.headers["Set-Cookie"]
    # The certificate is the operator's: a client without its CA refuses the connection.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{https}/healthz", timeout=10)


def test_plain_http_goes_to_https_and_only_the_probes_answer_on_the_web_port(portal_behind_caddy):
    to_https = requests.get(
        f"{portal_behind_caddy['http']}/accounts/login/", timeout=10, allow_redirects=False
    )
    assert to_https.status_code in (301, 308)
    assert to_https.headers["Location"] == f"{portal_behind_caddy['https']}/accounts/login/"

    web = portal_behind_caddy["web"]
    # The web port is compose's internal one: pages there are sent to https, while the
    # healthcheck and the load balancer's probes answer as they are.
    assert (
        requests.get(f"{web}/accounts/login/", timeout=10, allow_redirects=False).status_code == 301
    )
    assert requests.get(f"{web}/healthz", timeout=10, allow_redirects=False).status_code == 200
    assert requests.get(f"{web}/readyz", timeout=10, allow_redirects=False).status_code in (
        200,
        503,
    )


def test_a_forged_forwarded_for_does_not_move_failed_logins_off_the_real_address(
    portal_behind_caddy,
):
    https, ca = portal_behind_caddy["https"], portal_behind_caddy["ca"]
    make_user("bob", teams=("qa",))
    session = requests.Session()
    form = session.get(f"{https}/accounts/login/", verify=ca, timeout=10).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)

    failed = session.post(
        f"{https}/accounts/login/",
        data={"csrfmiddlewaretoken": token, "username": "bob", "password": PASSWORD + "-wrong"},
        headers={"X-Forwarded-For": "203.0.113.9", "Referer": f"{https}/accounts/login/"},
        verify=ca,
        timeout=10,
    )

    assert failed.status_code == 200
    assert "Please enter a correct username" in failed.text
    attempt = AccessAttempt.objects.get(username="bob")
    assert attempt.ip_address == LOOPBACK  # where the proxy saw the client, not what it claimed
    assert attempt.failures_since_start == 1

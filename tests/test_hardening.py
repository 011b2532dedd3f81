"""Hardening (issue 16, item 5): failed logins lock an account and an address out (audited),
pages carry a strict Content-Security-Policy, sessions end on time and everywhere at once, and
`check --deploy` with production settings warns only about what the operator must decide."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from django.test import Client
from django.urls import reverse

from delegations.models import AuditEvent
from tests.conftest import BASE_DIR
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def log_in(client: Client, username: str, password: str):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_twenty_wrong_passwords_lock_the_account_out_and_are_audited(settings):
    make_user("bob", teams=("qa",))
    make_user("carol", teams=("qa",))
    client = Client(REMOTE_ADDR="192.0.2.10")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "bob", "wrong").status_code == 200  # the form again
    assert not AuditEvent.objects.filter(action="account.locked_out").exists()

    locked = log_in(client, "bob", "wrong")

    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    event = AuditEvent.objects.get(action="account.locked_out")
    assert event.actor_name == "login-throttle"
    assert event.details["username"] == "bob"
    assert event.details["address"] == "192.0.2.10"
    # The right password no longer helps, from anywhere: the account is locked...
    assert log_in(Client(REMOTE_ADDR="198.51.100.7"), "bob", PASSWORD).status_code == 429
    # ...and so is the address, for every account.
    assert log_in(client, "carol", PASSWORD).status_code == 429
    # Someone else, elsewhere, logs in as usual.
    assert log_in(Client(REMOTE_ADDR="198.51.100.8"), "carol", PASSWORD).status_code == 302


def test_behind_the_proxy_failures_count_against_the_address_the_proxy_saw(settings):
    settings.PORTAL_BEHIND_TLS_PROXY = True
    make_user("bob", teams=("qa",))
    proxy = "10.0.0.2"  # every request arrives from the proxy
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="203.0.113.5"), "nobody", "wrong")
    # A forged first hop does not escape: the proxy appends the real one last.
    forged = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.5")
    assert log_in(forged, "bob", PASSWORD).status_code == 429
    other = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert log_in(other, "bob", PASSWORD).status_code == 302


def test_pages_carry_a_strict_content_security_policy(client):
    make_user("bob", teams=("qa",))
    client.force_login(make_user("dora", teams=("qa",)))
    for url in (reverse("login"), reverse("delegations:request_create"), "/api/v1/docs/"):
        policy = client.get(url)["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["script-src"] == "'self'", url
        assert directives["style-src"] == "'self'", url
        assert directives["object-src"] == "'none'"
        assert directives["frame-ancestors"] == "'none'"
        assert "unsafe-inline" not in policy
        assert "unsafe-eval" not in policy


def test_a_session_ends_on_time_and_everywhere_at_once(settings):
    assert settings.SESSION_COOKIE_AGE == 8 * 3600
    bob = make_user("bob", teams=("qa",))
    laptop, phone = Client(), Client()
    for device in (laptop, phone):
        assert log_in(device, "bob", PASSWORD).status_code == 302
    requests_page = reverse("delegations:request_list")
    assert phone.get(requests_page).status_code == 200

    ended = laptop.post(reverse("delegations:logout_everywhere"))

    assert ended.status_code == 302
    assert phone.get(requests_page).status_code == 302  # back to the login page
    assert laptop.get(requests_page).status_code == 302
    event = AuditEvent.objects.get(action="account.sessions_ended")
    assert (event.actor, event.details) == (bob, {"sessions": 2})


def test_check_deploy_with_production_settings_warns_only_about_the_operators_choices(tmp_path):
    # The production environment of the README: behind the TLS proxy, HSTS, secure cookies.
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_DATA_DIR": str(tmp_path),
        "PORTAL_SECRET_KEY": secrets.token_urlsafe(50),
        "PORTAL_KEY_SEALING_KEY": "A" * 43 + "=",
        "PORTAL_AUDIT_KEY": secrets.token_urlsafe(32),
        "PORTAL_BASE_URL": "https://portal.example.org",
        "PORTAL_ALLOWED_HOSTS": "portal.example.org",
        "PORTAL_BEHIND_TLS_PROXY": "1",
        "PORTAL_SSL_REDIRECT": "1",
        "PORTAL_HSTS_SECONDS": "31536000",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = {line.split()[1].strip("()") for line in result.stderr.splitlines() if "?: (" in line}
    # Only HSTS for every subdomain, and preloading: they bind the whole company domain, so
    # they are left to the operator (PORTAL_HSTS_INCLUDE_SUBDOMAINS, PORTAL_HSTS_PRELOAD).
    assert found == {"security.W005", "security.W021"}, result.stderr
    env.update(PORTAL_HSTS_INCLUDE_SUBDOMAINS="1", PORTAL_HSTS_PRELOAD="1")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr

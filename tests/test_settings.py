"""Configuration: embedded defaults in debug mode, a named error for a missing secret otherwise."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from tests.conftest import BASE_DIR

LOAD = "import django; django.setup(); from django.conf import settings; print(settings.{})"


def load_settings(tmp_path, expression: str = "DEBUG", **env: str):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    clean.update({"DJANGO_SETTINGS_MODULE": "portal.settings", "PORTAL_DATA_DIR": str(tmp_path)})
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", LOAD.format(expression)],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "PORTAL_SECRET_KEY"),
        ({"PORTAL_SECRET_KEY": "x" * 50}, "PORTAL_KEY_ENCRYPTION_KEYS"),
    ],
)
def test_outside_debug_a_missing_secret_stops_start_up_naming_it(tmp_path, env, missing):
    result = load_settings(tmp_path, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{missing} is not set" in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing generated outside debug mode


def test_debug_mode_generates_local_secrets_readable_only_by_the_owner(tmp_path):
    first = load_settings(tmp_path, "SECRET_KEY", PORTAL_DEBUG="1")
    assert first.returncode == 0, first.stderr
    for name in ("secret-key", "key-encryption-key"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    again = load_settings(tmp_path, "SECRET_KEY", PORTAL_DEBUG="1")
    assert again.stdout == first.stdout  # the same secret on every start


def test_embedded_defaults_are_sqlite_local_redis_and_console_mail(tmp_path):
    result = load_settings(
        tmp_path,
        "DATABASES['default']['ENGINE'], settings.REDIS_URL, settings.EMAIL_BACKEND",
        PORTAL_DEBUG="1",
    )
    assert result.returncode == 0, result.stderr
    assert "django.db.backends.sqlite3" in result.stdout
    assert "redis://127.0.0.1:6379/0" in result.stdout
    assert "console.EmailBackend" in result.stdout


def test_production_values_come_from_the_environment(tmp_path):
    result = load_settings(
        tmp_path,
        "DATABASES['default'], settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS",
        PORTAL_SECRET_KEY="s" * 50,
        PORTAL_KEY_ENCRYPTION_KEYS="A" * 43 + "=",
        PORTAL_DATABASE_URL="postgres://portal:p%40ss@db.internal:5432/portal",
        PORTAL_SMTP_URL="smtp://relay.internal:587?starttls=1",
    )
    assert result.returncode == 0, result.stderr
    for expected in ("'HOST': 'db.internal'", "'PASSWORD': 'p@ss'", "relay.internal", "587 True"):
        assert expected in result.stdout


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PORTAL_DEBUG", "maybe", "PORTAL_DEBUG must be true or false"),
        ("PORTAL_NOTARY_TIMEOUT", "soon", "PORTAL_NOTARY_TIMEOUT must be a number"),
        ("PORTAL_JOB_RETRY_INTERVALS", "10,later", "PORTAL_JOB_RETRY_INTERVALS must be whole"),
        ("PORTAL_KEY_ENCRYPTION_KEYS", "c2hvcnQ=", "PORTAL_KEY_ENCRYPTION_KEYS must hold base64"),
    ],
)
def test_a_malformed_value_stops_start_up_naming_its_variable(tmp_path, variable, value, message):
    valid = {"PORTAL_SECRET_KEY": "s" * 50, "PORTAL_KEY_ENCRYPTION_KEYS": "A" * 43 + "="}
    result = load_settings(tmp_path, **{**valid, variable: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_the_targets_key_algorithms_settings_accept_are_the_ones_the_client_makes():
    from delegations.notary import KEY_ALGORITHMS
    from portal import settings as portal_settings

    assert set(portal_settings._TARGETS_KEY_ALGORITHMS) == set(KEY_ALGORITHMS)

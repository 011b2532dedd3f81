"""Configuration: embedded defaults in debug mode, a named error for a missing secret otherwise."""

from __future__ import annotations

import ast
import os
import stat
import subprocess
import sys

import ldap
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
        ({"PORTAL_SECRET_KEY": "x" * 50}, "PORTAL_AUDIT_KEY"),
        ({"PORTAL_SECRET_KEY": "x" * 50, "PORTAL_AUDIT_KEY": "a" * 32}, "PORTAL_KEY_SEALING_KEY"),
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
    for name in ("secret-key", "key-unsealing-key", "audit-key"):
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
        PORTAL_KEY_SEALING_KEY="A" * 43 + "=",
        PORTAL_AUDIT_KEY="a" * 32,
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
        ("PORTAL_KEY_SEALING_KEY", "c2hvcnQ=", "PORTAL_KEY_SEALING_KEY must hold base64"),
        ("PORTAL_AUDIT_KEY", "short", "PORTAL_AUDIT_KEY must be at least 32"),
        ("PORTAL_KEY_UNSEALING_KEYS", "c2hvcnQ=", "PORTAL_KEY_UNSEALING_KEYS must hold base64"),
    ],
)
def test_a_malformed_value_stops_start_up_naming_its_variable(tmp_path, variable, value, message):
    valid = {
        "PORTAL_SECRET_KEY": "s" * 50,
        "PORTAL_KEY_SEALING_KEY": "A" * 43 + "=",
        "PORTAL_AUDIT_KEY": "a" * 32,
    }
    result = load_settings(tmp_path, **{**valid, variable: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_the_targets_key_algorithms_settings_accept_are_the_ones_the_client_makes():
    from delegations.notary import KEY_ALGORITHMS
    from portal import settings as portal_settings

    assert set(portal_settings._TARGETS_KEY_ALGORITHMS) == set(KEY_ALGORITHMS)


LDAP_ENV = {
    "PORTAL_DEBUG": "1",
    "PORTAL_LDAP_URI": "ldap://directory.example.org",
    "PORTAL_LDAP_USER_BASE": "ou=people,dc=example,dc=org",
    "PORTAL_LDAP_GROUP_BASE": "ou=groups,dc=example,dc=org",
    "PORTAL_LDAP_TEAM_BASE": "ou=teams,ou=groups,dc=example,dc=org",
}


def test_without_a_directory_only_local_accounts_log_in(tmp_path):
    result = load_settings(tmp_path, "AUTHENTICATION_BACKENDS", PORTAL_DEBUG="1")
    assert result.stdout.strip() == (
        "['delegations.directory.login.LoginThrottle', 'django.contrib.auth.backends.ModelBackend']"
    )


def test_the_directory_is_configured_from_the_environment(tmp_path):
    # LOAD prints settings.<expression>: a tuple's repr here, after the settings' own name.
    show = (
        "SETTINGS_MODULE, repr((settings.AUTHENTICATION_BACKENDS, "
        "settings.AUTH_LDAP_USER_SEARCH.filterstr, settings.AUTH_LDAP_START_TLS, "
        "settings.AUTH_LDAP_CONNECTION_OPTIONS, settings.AUTH_LDAP_USER_FLAGS_BY_GROUP))"
    )
    result = load_settings(
        tmp_path,
        show,
        **LDAP_ENV,
        PORTAL_LDAP_START_TLS="1",
        PORTAL_LDAP_CA_FILE="/etc/directory-ca.pem",
        PORTAL_LDAP_ADMIN_GROUP="cn=portal-admins,ou=groups,dc=example,dc=org",
    )
    assert result.returncode == 0, result.stderr
    printed = result.stdout.removeprefix("portal.settings ")
    backends, user_filter, start_tls, options, flags = ast.literal_eval(printed)
    assert backends == [
        "delegations.directory.login.LoginThrottle",
        "delegations.directory.login.DirectoryBackend",
        "delegations.directory.login.LocalAccountBackend",
    ]
    # Disabled accounts are not found by the login search at all.
    assert user_filter == "(&(uid=%(user)s)(!(shadowExpire=1)))"
    assert start_tls is True
    assert options[ldap.OPT_X_TLS_CACERTFILE] == "/etc/directory-ca.pem"
    assert options[ldap.OPT_X_TLS_REQUIRE_CERT] == ldap.OPT_X_TLS_DEMAND
    assert options[ldap.OPT_REFERRALS] == 0
    # python-ldap applies TLS options only to a new context, made by the last one set.
    assert list(options)[-1] == ldap.OPT_X_TLS_NEWCTX
    assert flags["is_staff"] == "cn=portal-admins,ou=groups,dc=example,dc=org"


@pytest.mark.parametrize("missing", ["USER_BASE", "GROUP_BASE", "TEAM_BASE"])
def test_a_directory_without_its_bases_stops_start_up(tmp_path, missing):
    env = {k: v for k, v in LDAP_ENV.items() if k != f"PORTAL_LDAP_{missing}"}
    result = load_settings(tmp_path, **env)
    assert result.returncode != 0
    assert f"PORTAL_LDAP_{missing} is required with PORTAL_LDAP_URI" in result.stderr

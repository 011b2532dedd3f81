"""The portal's connection to the LDAP directory: one per thread, bound as the service account,
every failure turned into DirectoryUnavailable."""

from __future__ import annotations

import threading

import ldap
from django.conf import settings


class DirectoryUnavailable(Exception):
    """The directory could not be read: down, unreachable, refusing TLS or the bind."""


_local = threading.local()


def search(
    base: str,
    search_filter: str,
    attributes: list[str],
    *,
    scope: int = ldap.SCOPE_SUBTREE,
    missing_ok: bool = False,
    strict: bool = False,
):
    """Entries (dn, attributes) found; any failure is DirectoryUnavailable, a connection that
    went stale is opened again once.

    A missing base is a failure too (unless `missing_ok`): a renamed OU or a replica still
    loading must not read as "nobody is there". `strict` also refuses referrals, which are not
    followed: for the sync, part of a team behind one would look like people leaving it."""
    for attempt in (1, 2):
        try:
            results = _connection().search_s(base, scope, search_filter, attributes)
        except ldap.NO_SUCH_OBJECT as error:
            if missing_ok:
                return []
            raise DirectoryUnavailable(f"{base} does not exist: {_describe(error)}") from error
        except ldap.SERVER_DOWN as error:
            _local.connection = None
            if attempt == 2:
                raise DirectoryUnavailable(_describe(error)) from error
        except ldap.LDAPError as error:
            _local.connection = None
            raise DirectoryUnavailable(_describe(error)) from error
        else:
            # Referrals come back as entries without a DN.
            if strict and any(dn is None for dn, _ in results):
                raise DirectoryUnavailable(f"a search under {base} returned referrals")
            return [(dn, attrs) for dn, attrs in results if dn is not None]
    raise AssertionError("unreachable")


def drop_connection() -> None:
    """Forget this thread's connection; the next search opens a new one."""
    _local.connection = None


def _connection():
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = _open()
        _local.connection = connection
    return connection


def _open():
    from portal.ldap_settings import connection_options

    options = {name: getattr(settings, name) for name in _CONNECTION_SETTINGS}
    connection = ldap.initialize(settings.PORTAL_LDAP_URI)
    for option, value in connection_options(options).items():
        connection.set_option(option, value)
    connection.protocol_version = ldap.VERSION3
    try:
        if settings.PORTAL_LDAP_START_TLS:
            connection.start_tls_s()
        connection.simple_bind_s(settings.PORTAL_LDAP_BIND_DN, settings.PORTAL_LDAP_BIND_PASSWORD)
    except ldap.LDAPError as error:
        raise DirectoryUnavailable(_describe(error)) from error
    return connection


_CONNECTION_SETTINGS = ("PORTAL_LDAP_TIMEOUT", "PORTAL_LDAP_CA_FILE")


def _describe(error: ldap.LDAPError) -> str:
    """python-ldap's error in one line: its description and the server's or library's detail."""
    info = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
    parts = [info.get("desc", type(error).__name__), info.get("info", "")]
    return ": ".join(str(part) for part in parts if part)

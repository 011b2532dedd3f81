"""django-auth-ldap's settings, made from the portal's PORTAL_LDAP_* ones.

Kept apart from settings.py so that python-ldap is imported only when a directory is set up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ldap
from django_auth_ldap.config import LDAPSearch, MemberDNGroupType


def connection_options(portal: Mapping[str, Any]) -> dict[int, object]:
    """python-ldap options of every directory connection (login and the portal's own reads)."""
    options: dict[int, object] = {
        ldap.OPT_NETWORK_TIMEOUT: portal["PORTAL_LDAP_TIMEOUT"],
        ldap.OPT_TIMEOUT: portal["PORTAL_LDAP_TIMEOUT"],
        # Referrals would send the bind password to whichever server they name.
        ldap.OPT_REFERRALS: 0,
        ldap.OPT_X_TLS_REQUIRE_CERT: ldap.OPT_X_TLS_DEMAND,
    }
    if portal["PORTAL_LDAP_CA_FILE"]:
        options[ldap.OPT_X_TLS_CACERTFILE] = portal["PORTAL_LDAP_CA_FILE"]
    # Last: the TLS options above take effect only in a new TLS context.
    options[ldap.OPT_X_TLS_NEWCTX] = 0
    return options


def login_filter(portal: Mapping[str, Any]) -> str:
    """The user search filter, refusing disabled accounts as if they did not exist."""
    user_filter = portal["PORTAL_LDAP_USER_FILTER"]
    disabled = portal["PORTAL_LDAP_DISABLED_FILTER"]
    return f"(&{user_filter}(!{disabled}))" if disabled else user_filter


def django_auth_ldap_settings(portal: Mapping[str, Any]) -> dict[str, object]:
    settings = {
        "AUTH_LDAP_SERVER_URI": portal["PORTAL_LDAP_URI"],
        "AUTH_LDAP_BIND_DN": portal["PORTAL_LDAP_BIND_DN"],
        "AUTH_LDAP_BIND_PASSWORD": portal["PORTAL_LDAP_BIND_PASSWORD"],
        "AUTH_LDAP_START_TLS": portal["PORTAL_LDAP_START_TLS"],
        "AUTH_LDAP_CONNECTION_OPTIONS": connection_options(portal),
        "AUTH_LDAP_USER_SEARCH": LDAPSearch(
            portal["PORTAL_LDAP_USER_BASE"], ldap.SCOPE_SUBTREE, login_filter(portal)
        ),
        "AUTH_LDAP_GROUP_SEARCH": LDAPSearch(
            portal["PORTAL_LDAP_GROUP_BASE"],
            ldap.SCOPE_SUBTREE,
            portal["PORTAL_LDAP_GROUP_FILTER"],
        ),
        "AUTH_LDAP_GROUP_TYPE": MemberDNGroupType(portal["PORTAL_LDAP_GROUP_MEMBER_ATTRIBUTE"]),
        "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        # Name and address follow the directory at every login.
        "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
        # No login cache: a cached DN would skip the disabled filter, and a cached "no such
        # user" from an outage would outlive it. The portal's own reads are cached instead.
        "AUTH_LDAP_CACHE_TIMEOUT": 0,
    }
    if portal["PORTAL_LDAP_ADMIN_GROUP"]:
        admins = portal["PORTAL_LDAP_ADMIN_GROUP"]
        settings["AUTH_LDAP_USER_FLAGS_BY_GROUP"] = {"is_staff": admins, "is_superuser": admins}
    return settings

"""The portal configured against the test directory (the `ldap_tree` fixture's slapd).

Settings are made the way portal/settings.py makes them from the environment, so a test that
changes one PORTAL_LDAP_* value sees django-auth-ldap follow it too.
"""

from __future__ import annotations

from delegations import directory, services
from portal.ldap_settings import django_auth_ldap_settings
from stack.slapd import demo_directory_env

DEMO_OWNERS = "owners:dev/nginx"


def portal_ldap_values(server) -> dict[str, object]:
    """The settings `make run` gives the demo tree (stack.slapd.demo_directory_env), with every
    other PORTAL_LDAP_* at its default, for the test server."""
    return {
        **demo_directory_env(server.uri),
        "PORTAL_LDAP_START_TLS": False,
        "PORTAL_LDAP_CA_FILE": "",
        "PORTAL_LDAP_TIMEOUT": 3.0,
        "PORTAL_LDAP_USER_FILTER": "(uid=%(user)s)",
        "PORTAL_LDAP_USERNAME_ATTRIBUTE": "uid",
        "PORTAL_LDAP_DISABLED_FILTER": "(shadowExpire=1)",
        "PORTAL_LDAP_GROUP_FILTER": "(objectClass=groupOfNames)",
        "PORTAL_LDAP_GROUP_MEMBER_ATTRIBUTE": "member",
        # Every read goes to the server, so a test sees its own changes to the tree at once.
        "PORTAL_DIRECTORY_CACHE_SECONDS": 0,
        "PORTAL_DIRECTORY_SYNC_MAX_ENDINGS": 25,
    }


def configure_directory(settings, server, **overrides: object) -> None:
    """Point the portal at `server` (a DirectoryServer), as the environment would."""
    values = {**portal_ldap_values(server), **overrides}
    for name, value in values.items():
        setattr(settings, name, value)
    for name, value in django_auth_ldap_settings(values).items():
        setattr(settings, name, value)
    settings.AUTHENTICATION_BACKENDS = [
        "delegations.directory.login.DirectoryBackend",
        "delegations.directory.login.LocalAccountBackend",
    ]
    directory.forget()


def directory_user(username: str):
    """The portal user of a directory account, as if they had logged in once."""
    entry = directory.account(username, fresh=True)
    assert entry is not None, f"{username} is not in the test directory"
    return services.directory_account_provision(entry=entry)

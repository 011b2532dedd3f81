"""The LDAP directory: who people are, their teams and groups (`reads`, answered through `cache`
over `connection`), logging in with a directory account (`login`), and the page shown while the
directory cannot be read (`middleware`).

The rest of the portal reads the directory through what is imported here.
"""

from .connection import DirectoryUnavailable
from .reads import (
    Account,
    Memberships,
    account,
    accounts,
    configured,
    forget,
    group_members,
    memberships,
    normal_dn,
    team_members,
)

__all__ = [
    "Account",
    "DirectoryUnavailable",
    "Memberships",
    "account",
    "accounts",
    "configured",
    "forget",
    "group_members",
    "memberships",
    "normal_dn",
    "team_members",
]

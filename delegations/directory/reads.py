"""The portal's reads of the LDAP directory: accounts, teams, and the members of a group.

Login is django-auth-ldap's (`login`); everything else the portal asks the directory is asked
here, with the same PORTAL_LDAP_* settings. Answers are cached (`cache`) because every page asks
who the user is; the sync asks with `fresh=True`, as it acts on the answer.

An unreachable directory raises DirectoryUnavailable. Callers must not read it as "in no team":
the sync would otherwise end every delegation the moment the server restarts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

import ldap
import ldap.dn
import ldap.filter
from django.conf import settings

from . import cache
from .connection import DirectoryUnavailable, drop_connection, search

# Usernames per search filter when many accounts are read at once; keeps filters a sane size.
_CHUNK = 200
_ACCOUNT_ATTRIBUTES = ["mail", "givenName", "sn"]


@dataclass(frozen=True)
class Account:
    username: str
    dn: str
    disabled: bool
    email: str = ""
    first_name: str = ""
    last_name: str = ""


@dataclass(frozen=True)
class Memberships:
    """The groups an account is in: all of them by name, and the UCP teams among them."""

    groups: frozenset[str]
    teams: frozenset[str]


def configured() -> bool:
    return bool(settings.PORTAL_LDAP_URI)


# -- reads -----------------------------------------------------------------------------------------


def account(username: str, *, fresh: bool = False) -> Account | None:
    """The directory's account of `username`, or None when it has none."""
    return accounts([username], fresh=fresh).get(username)


def accounts(usernames: Iterable[str], *, fresh: bool = False) -> dict[str, Account]:
    """The accounts of those `usernames` the directory has, disabled ones included."""
    wanted = sorted(set(usernames))
    found: dict[str, Account] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        read = partial(_read_accounts, chunk, strict=fresh)
        found.update(cache.cached(("accounts", *chunk), read, fresh))
    return found


def memberships(dn: str, *, fresh: bool = False) -> Memberships:
    """The groups under PORTAL_LDAP_GROUP_BASE and the teams under PORTAL_LDAP_TEAM_BASE that
    list `dn` as a member."""
    return cache.cached(("memberships", normal_dn(dn)), lambda: _read_memberships(dn), fresh)


def team_members(*, fresh: bool = False) -> dict[str, frozenset[str]]:
    """Every team with the (normalised) DNs of its members: what the sync compares against."""
    return cache.cached(("team-members",), lambda: _read_team_members(strict=fresh), fresh)


def group_members(group_name: str, *, fresh: bool = False) -> list[Account]:
    """The enabled accounts in the group named `group_name` under PORTAL_LDAP_GROUP_BASE; empty
    when there is no such group."""
    return cache.cached(("group", group_name), lambda: _read_group_members(group_name), fresh)


def forget() -> None:
    """Drop every cached answer and this thread's connection (tests, and after the directory or
    its settings are known to have changed)."""
    cache.clear()
    drop_connection()


def normal_dn(dn: str) -> str:
    """`dn` in one spelling, so DNs from member attributes and from searches compare equal."""
    try:
        parts = ldap.dn.str2dn(dn)
    except ldap.DECODING_ERROR:
        return dn.strip().lower()
    return ldap.dn.dn2str([[(a.lower(), v.lower(), f) for a, v, f in rdn] for rdn in parts])


# -- the searches ----------------------------------------------------------------------------------


def _read_accounts(usernames: list[str], *, strict: bool) -> dict[str, Account]:
    attribute = settings.PORTAL_LDAP_USERNAME_ATTRIBUTE
    any_of = "".join(_user_filter(name) for name in usernames)
    entries = search(
        settings.PORTAL_LDAP_USER_BASE,
        f"(|{any_of})",
        [attribute, *_ACCOUNT_ATTRIBUTES],
        strict=strict,
    )
    disabled = _disabled_dns(settings.PORTAL_LDAP_USER_BASE, f"(|{any_of})")
    # uid and its kin compare case-insensitively in the directory, so here too.
    asked = {name.lower(): name for name in usernames}
    found: dict[str, Account] = {}
    for dn, attributes in entries:
        username = asked.get(_first(attributes, attribute).lower())
        if username is None:
            continue
        account = _account(username, dn, attributes, disabled)
        # Two entries of one username (an old one left in another OU): the enabled one is the
        # person who logs in, so the sync must not disable them for the other.
        if username not in found or found[username].disabled:
            found[username] = account
    return found


def _read_memberships(dn: str) -> Memberships:
    # A disabled account (its session outliving the sync, say) owns and belongs to nothing.
    if _disabled_dns(dn, "(objectClass=*)", ldap.SCOPE_BASE):
        return Memberships(groups=frozenset(), teams=frozenset())
    member = (
        f"({settings.PORTAL_LDAP_GROUP_MEMBER_ATTRIBUTE}={ldap.filter.escape_filter_chars(dn)})"
    )
    group_filter = f"(&{settings.PORTAL_LDAP_GROUP_FILTER}{member})"
    team_base = normal_dn(settings.PORTAL_LDAP_TEAM_BASE)
    groups = search(settings.PORTAL_LDAP_GROUP_BASE, group_filter, ["cn"])
    if not _is_within(team_base, normal_dn(settings.PORTAL_LDAP_GROUP_BASE)):
        groups += search(settings.PORTAL_LDAP_TEAM_BASE, group_filter, ["cn"])
    names = {(group_dn, _first(attributes, "cn")) for group_dn, attributes in groups}
    return Memberships(
        groups=frozenset(name for _, name in names if name),
        teams=frozenset(
            name for group_dn, name in names if name and _is_within(normal_dn(group_dn), team_base)
        ),
    )


def _read_team_members(*, strict: bool) -> dict[str, frozenset[str]]:
    attribute = settings.PORTAL_LDAP_GROUP_MEMBER_ATTRIBUTE
    teams: dict[str, set[str]] = {}
    for _, attributes in search(
        settings.PORTAL_LDAP_TEAM_BASE,
        settings.PORTAL_LDAP_GROUP_FILTER,
        ["cn", attribute],
        strict=strict,
    ):
        name = _first(attributes, "cn")
        if name:
            teams.setdefault(name, set()).update(
                normal_dn(member.decode()) for member in _values(attributes, attribute)
            )
    return {name: frozenset(members) for name, members in teams.items()}


def _read_group_members(group_name: str) -> list[Account]:
    attribute = settings.PORTAL_LDAP_GROUP_MEMBER_ATTRIBUTE
    named = (
        f"(&{settings.PORTAL_LDAP_GROUP_FILTER}(cn={ldap.filter.escape_filter_chars(group_name)}))"
    )
    member_dns = {
        normal_dn(member.decode()): member.decode()
        for _, attributes in search(settings.PORTAL_LDAP_GROUP_BASE, named, [attribute])
        for member in _values(attributes, attribute)
    }
    members = []
    for member_dn in member_dns.values():
        # A member is read at its own DN: a group may list people from anywhere in the tree,
        # and only entries the user search would find (and that are not disabled) count.
        entry = _read_entry(member_dn)
        if entry is not None and not entry.disabled:
            members.append(entry)
    return sorted(members, key=lambda entry: entry.username)


def _read_entry(dn: str) -> Account | None:
    attribute = settings.PORTAL_LDAP_USERNAME_ATTRIBUTE
    user_filter = _user_filter("*", escape=False)
    entries = search(
        dn, user_filter, [attribute, *_ACCOUNT_ATTRIBUTES], scope=ldap.SCOPE_BASE, missing_ok=True
    )
    if not entries:
        return None
    found_dn, attributes = entries[0]
    username = _first(attributes, attribute)
    if not username:
        return None
    return _account(username, found_dn, attributes, _disabled_dns(dn, user_filter, ldap.SCOPE_BASE))


def _disabled_dns(base: str, among: str, scope: int = ldap.SCOPE_SUBTREE) -> set[str]:
    disabled = settings.PORTAL_LDAP_DISABLED_FILTER
    if not disabled:
        return set()
    # Read at one entry's own DN (scope base), a missing entry is simply not disabled.
    entries = search(
        base, f"(&{among}{disabled})", ["1.1"], scope=scope, missing_ok=scope == ldap.SCOPE_BASE
    )
    return {normal_dn(dn) for dn, _ in entries}


def _account(username: str, dn: str, attributes: dict, disabled: set[str]) -> Account:
    return Account(
        username=username,
        dn=dn,
        disabled=normal_dn(dn) in disabled,
        email=_first(attributes, "mail"),
        first_name=_first(attributes, "givenName"),
        last_name=_first(attributes, "sn"),
    )


def _user_filter(username: str, *, escape: bool = True) -> str:
    value = ldap.filter.escape_filter_chars(username) if escape else username
    return settings.PORTAL_LDAP_USER_FILTER % {"user": value}


def _values(attributes: dict, name: str) -> list[bytes]:
    """An attribute's values, its name matched as LDAP does (case-insensitively). A ranged answer
    (Active Directory's `member;range=0-1499` for big groups) is a partial one: refused."""
    for key in attributes:
        if key.lower().startswith(f"{name.lower()};range="):
            raise DirectoryUnavailable(f"{key} is a partial answer; ranged reads are not supported")
    return next((v for k, v in attributes.items() if k.lower() == name.lower()), [])


def _first(attributes: dict, name: str) -> str:
    values = _values(attributes, name)
    return values[0].decode("utf-8", "replace") if values else ""


def _is_within(dn: str, base: str) -> bool:
    return dn == base or dn.endswith("," + base)

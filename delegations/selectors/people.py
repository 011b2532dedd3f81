"""Who is in which team and who owns which repository: answered here and only here, so the
directory (LDAP) and the local groups answer alike for callers.

A directory account (a user with a DirectoryAccount, made at their first LDAP login or when the
portal first had to tell them something) is answered by the LDAP directory; a local account by
its local Django groups, where teams are the groups named with the team prefix.
"""

from __future__ import annotations

from functools import reduce
from operator import or_
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from .. import directory
from ..models import ApiToken, DirectoryAccount, Repository

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def directory_account_of(user: User) -> DirectoryAccount | None:
    """The user's directory account, when a directory is set up and they come from it."""
    if not directory.configured() or user.pk is None:
        return None
    try:
        return user.directory_account
    except DirectoryAccount.DoesNotExist:
        return None


def _memberships(user: User) -> directory.Memberships:
    if not user.is_authenticated or not user.is_active:
        return directory.Memberships(groups=frozenset(), teams=frozenset())
    account = directory_account_of(user)
    if account is not None:
        return directory.memberships(account.dn)
    names = frozenset(user.groups.values_list("name", flat=True))
    prefix = settings.PORTAL_TEAM_GROUP_PREFIX
    teams = frozenset(name[len(prefix) :] for name in names if name.startswith(prefix))
    return directory.Memberships(groups=names, teams=teams)


def group_names_of(user: User) -> frozenset[str]:
    """The names of the groups an active user is in."""
    return _memberships(user).groups


def teams_of(user: User) -> list[str]:
    """The UCP teams `user` belongs to, sorted."""
    return sorted(_memberships(user).teams)


def members_of(
    group_name: str, *, directory_members: list[directory.Account] | None = None
) -> QuerySet[User]:
    """The active portal users in a group: the directory's group of that name for directory
    accounts (`directory_members` when the caller has read it already), and the local group for
    local ones.

    Directory members who have no portal user yet are not among them: making them is a write,
    `services.repository_owners_provision`, done before a notification is owed to them.
    """
    users = get_user_model().objects.filter(is_active=True)
    if not directory.configured():
        return users.filter(groups__name=group_name).order_by("username")
    local = Q(groups__name=group_name, directory_account__isnull=True)
    if directory_members is None:
        directory_members = directory.group_members(group_name)
    names = [entry.username for entry in directory_members]
    # django-auth-ldap finds users case-insensitively, so a directory member is found so too.
    in_directory = Q(directory_account__isnull=False) & reduce(
        or_, (Q(username__iexact=name) for name in names), Q(pk__in=[])
    )
    return users.filter(local | in_directory).distinct().order_by("username")


def owners_of(
    repository: Repository, *, directory_members: list[directory.Account] | None = None
) -> QuerySet[User]:
    """The active users who own `repository`: the members of its owners group."""
    return members_of(repository.owners_group, directory_members=directory_members)


def is_auditor(user: User, *, groups: frozenset[str] | None = None) -> bool:
    """Whether `user` reads everything and changes nothing: a member of PORTAL_AUDITOR_GROUP
    (`groups`: the user's group names, if read already)."""
    return settings.PORTAL_AUDITOR_GROUP in (group_names_of(user) if groups is None else groups)


def is_owner(user: User, repository: Repository) -> bool:
    return repository.owners_group in group_names_of(user)


def repositories_owned_by(
    user: User, *, groups: frozenset[str] | None = None
) -> QuerySet[Repository]:
    """`groups`: the user's group names, when the caller has read them already."""
    return Repository.objects.filter(
        owners_group__in=group_names_of(user) if groups is None else groups
    )


def api_tokens_of(user: User) -> QuerySet[ApiToken]:
    """The user's API tokens, newest first, revoked ones included (their page shows them)."""
    return ApiToken.objects.filter(user=user).order_by("-created_at")

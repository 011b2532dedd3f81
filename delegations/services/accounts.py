"""Portal users of directory accounts: made for owners who never logged in, and disabled or
enabled again as the directory says.

An owner who has never opened the portal must still be told about requests for their
repository, and a notification needs a user to go to. Such users are made as django-auth-ldap
makes them at a first login: same username, no usable password, name and address from the
directory. An existing user of that username is the same person (django-auth-ldap links them the
same way). Each is an audited write, done before the change that owes them an email opens its
transaction: asking the directory inside it would hold other writers up.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.models import Session
from django.db import IntegrityError, transaction

from .. import clock, directory, selectors
from ..audit.chain import (
    DIRECTORY_ACTOR,
    DIRECTORY_SYNC_ACTOR,
    LOGIN_THROTTLE_ACTOR,
    audit_record,
)
from ..models import AuditAction, DirectoryAccount, Repository

if TYPE_CHECKING:
    from django.contrib.auth.models import User


logger = logging.getLogger(__name__)


def repository_owners_provision(
    *, repository: Repository, now: datetime | None = None
) -> list[User]:
    """The owners of `repository` to tell about it, every directory member among them made a
    portal user first. Call it before the transaction that owes them a notification."""
    if not directory.configured():
        return list(selectors.owners_of(repository))
    members = directory.group_members(repository.owners_group)
    for entry in members:
        directory_account_provision(entry=entry, now=now)
    return list(selectors.owners_of(repository, directory_members=members))


def repository_owners_or_known(
    *, repository: Repository, now: datetime | None = None
) -> list[User]:
    """`repository_owners_provision` for the worker, which must record what it did whatever the
    directory says: while the directory cannot be read, the owners the portal already knows."""
    try:
        return repository_owners_provision(repository=repository, now=now)
    except directory.DirectoryUnavailable as error:
        logger.warning("owners of %s read from the portal, directory down: %s", repository, error)
        try:
            return list(selectors.owners_of(repository))
        except directory.DirectoryUnavailable:
            return []


def directory_account_provision(
    *, entry: directory.Account, now: datetime | None = None
) -> User | None:
    """The portal user of a directory account, made or linked on first sight; None for a local
    administrator of the same name, whom only their own directory login may link."""
    # django-auth-ldap names users in lower case and finds them case-insensitively; so here.
    username = entry.username.lower()
    account = (
        DirectoryAccount.objects.select_related("user")
        .filter(user__username__iexact=username)
        .first()
    )
    if account is not None:
        return account.user
    users = get_user_model()
    local = users.objects.filter(username__iexact=username).first()
    if local is not None and (local.is_staff or local.is_superuser):
        logger.warning("%s is a local administrator and a directory account; not linked", username)
        return None
    now = now or clock.now()
    try:
        with transaction.atomic():
            user, created = users.objects.get_or_create(
                username=local.get_username() if local is not None else username,
                defaults={
                    "email": entry.email,
                    "first_name": entry.first_name[:150],
                    "last_name": entry.last_name[:150],
                },
            )
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
            DirectoryAccount.objects.create(user=user, dn=entry.dn, seen_at=now)
            audit_record(
                action=AuditAction.ACCOUNT_PROVISIONED,
                actor=None,
                now=now,
                details={
                    "username": user.get_username(),
                    "dn": entry.dn,
                    "linked_local_account": not created,
                },
                system_actor=DIRECTORY_ACTOR,
            )
    except IntegrityError:
        # Another process made the same user at the same moment.
        return users.objects.get(username__iexact=username)
    return user


def directory_login_record(*, user: User, dn: str, now: datetime | None = None) -> None:
    """Record a login with a directory account: the user becomes (or stays) a directory
    account, which never logs in with a local password.

    django-auth-ldap saves `user` after this, so what changes of it is changed on the object.
    """
    now = now or clock.now()
    user.set_unusable_password()
    if user.pk is None:
        user.is_active = True
        user.save()
    account = DirectoryAccount.objects.filter(user_id=user.pk).first()
    if account is not None and account.disabled_at is not None:
        # The login search only finds enabled accounts: one the sync disabled is enabled again,
        # as the sync itself would. One an administrator deactivated in the portal stays so
        # (the login form says it is inactive).
        directory_account_set_active(
            account_id=account.pk, active=True, dn=dn, acting_user=user, now=now
        )
        user.is_active = True
    DirectoryAccount.objects.update_or_create(
        user=user, defaults={"dn": dn, "seen_at": now, "disabled_at": None}
    )


def directory_account_set_active(
    *,
    account_id: int,
    active: bool,
    dn: str,
    acting_user: User | None = None,
    now: datetime | None = None,
) -> bool:
    """Disable the portal user of a directory account the directory disabled or dropped (their
    sessions end, they cannot log in), or enable again one it shows enabled once more. The
    directory sync does both; a login with the account enables it (`acting_user`, themselves).
    False when the account was so already."""
    now = now or clock.now()
    with transaction.atomic():
        account = DirectoryAccount.objects.select_related("user").get(pk=account_id)
        changed = (
            get_user_model()
            .objects.filter(pk=account.user_id, is_active=not active)
            .update(is_active=active)
        )
        DirectoryAccount.objects.filter(pk=account_id).update(
            dn=dn, disabled_at=None if active else now
        )
        if not changed:
            return False
        audit_record(
            action=AuditAction.ACCOUNT_ENABLED if active else AuditAction.ACCOUNT_DISABLED,
            actor=acting_user,
            now=now,
            details={"username": account.user.get_username(), "dn": dn},
            system_actor=DIRECTORY_SYNC_ACTOR,
        )
    return True


def login_lockout_record(*, username: str, address: str, now: datetime | None = None) -> None:
    """Audit a lock-out after too many failed logins (the account, the address, or both)."""
    now = now or clock.now()
    with transaction.atomic():
        audit_record(
            action=AuditAction.ACCOUNT_LOCKED_OUT,
            actor=None,
            now=now,
            details={
                "username": username[:150],
                "address": address[:64],
                "failures": settings.AXES_FAILURE_LIMIT,
                "minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
            },
            system_actor=LOGIN_THROTTLE_ACTOR,
        )


def sessions_end_all(*, user: User, now: datetime | None = None) -> int:
    """End every session of `user`, on every device ("Log out everywhere"). Returns how many."""
    now = now or clock.now()
    ended = 0
    with transaction.atomic():
        for session in Session.objects.select_for_update().filter(expire_date__gt=now):
            if str(session.get_decoded().get(SESSION_KEY)) == str(user.pk):
                session.delete()
                ended += 1
        audit_record(
            action=AuditAction.ACCOUNT_SESSIONS_ENDED,
            actor=user,
            now=now,
            details={"sessions": ended},
        )
    return ended


def admin_change_record(
    *, action: str, actor: User, details: dict[str, object], now: datetime | None = None
) -> None:
    """Audit a change an administrator made in the admin to a local user or group."""
    with transaction.atomic():
        audit_record(action=action, actor=actor, now=now or clock.now(), details=details)

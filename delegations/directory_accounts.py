"""Portal users for directory accounts that never logged in.

An owner who has never opened the portal must still be told about requests for their repository,
and a notification needs a user to go to. Such users are made as django-auth-ldap makes them at
a first login: same username, no usable password, name and address from the directory. An
existing user of that username is the same person (django-auth-ldap links them the same way).
"""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from . import clock
from .directory import Account
from .models import DirectoryAccount

logger = logging.getLogger(__name__)


def directory_user_for(entry: Account) -> AbstractBaseUser | None:
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
    User = get_user_model()
    local = User.objects.filter(username__iexact=username).first()
    if local is not None and (local.is_staff or local.is_superuser):
        logger.warning("%s is a local administrator and a directory account; not linked", username)
        return None
    try:
        with transaction.atomic():
            user, created = User.objects.get_or_create(
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
            DirectoryAccount.objects.get_or_create(
                user=user, defaults={"dn": entry.dn, "seen_at": clock.now()}
            )
    except IntegrityError:
        # Another process made the same user at the same moment.
        user = User.objects.get(username__iexact=username)
    return user

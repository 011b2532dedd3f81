"""Changes made in the admin to local users and groups go into the audit chain: with no
directory, those groups are the teams and the owners groups, so adding someone to one grants
rights as surely as an approval does.

Only changes made through the admin are recorded (`AdminActorMiddleware` names who makes them);
a login updating `last_login`, or the directory sync, are not admin changes.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

_admin_actor: contextvars.ContextVar[Any] = contextvars.ContextVar("admin_actor", default=None)
User = get_user_model()


class AdminActorMiddleware:
    """Remembers who is signed in to the admin while it handles their request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if not request.path.startswith("/admin/") or user is None or not user.is_authenticated:
            return self.get_response(request)
        token = _admin_actor.set(user)
        try:
            return self.get_response(request)
        finally:
            _admin_actor.reset(token)


def _record(action: str, details: dict[str, object]) -> None:
    actor = _admin_actor.get()
    if actor is None:
        return
    from .. import services  # the services record through this package's chain

    services.admin_change_record(action=action, actor=actor, details=details)


@receiver(post_save, sender=User)
def user_saved(sender: type, instance: Any, created: bool, **kwargs: Any) -> None:
    _record(
        "admin.user_saved",
        {
            "user": instance.get_username(),
            "created": created,
            "active": instance.is_active,
            "staff": instance.is_staff,
            "superuser": instance.is_superuser,
        },
    )


@receiver(post_delete, sender=User)
def user_deleted(sender: type, instance: Any, **kwargs: Any) -> None:
    _record("admin.user_deleted", {"user": instance.get_username()})


@receiver(post_save, sender=Group)
def group_saved(sender: type, instance: Group, created: bool, **kwargs: Any) -> None:
    _record("admin.group_saved", {"group": instance.name, "created": created})


@receiver(post_delete, sender=Group)
def group_deleted(sender: type, instance: Group, **kwargs: Any) -> None:
    _record("admin.group_deleted", {"group": instance.name})


@receiver(m2m_changed, sender=User.groups.through)
def membership_changed(
    sender: type, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **kwargs: Any
) -> None:
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    change = {"post_add": "added", "post_remove": "removed", "pre_clear": "removed"}[action]
    if reverse:  # a group's members were changed
        group = instance
        if action == "pre_clear":
            users = list(group.user_set.values_list("username", flat=True))
        else:
            users = list(
                User.objects.filter(pk__in=pk_set or ()).values_list("username", flat=True)
            )
        for username in sorted(users):
            _record(
                "admin.membership_changed",
                {"user": username, "group": group.name, "change": change},
            )
        return
    if action == "pre_clear":
        groups = list(instance.groups.values_list("name", flat=True))
    else:
        groups = list(Group.objects.filter(pk__in=pk_set or ()).values_list("name", flat=True))
    for name in sorted(groups):
        _record(
            "admin.membership_changed",
            {"user": instance.get_username(), "group": name, "change": change},
        )

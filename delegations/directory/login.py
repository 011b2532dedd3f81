"""Logging in: a directory account through django-auth-ldap, made to fit the portal, and the
throttle on failed logins (django-axes) in front of every backend.

- The user it logs in is recorded as a DirectoryAccount, so the portal reads their teams and
  ownerships from the directory from then on, and local groups no longer count for them.
- A directory account never also logs in with a local password: that password would outlive
  the account being disabled in the directory.
- An unreachable directory is told apart from a wrong password, for the login form
  (`forms.LoginForm`) to say so.
"""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django_auth_ldap.backend import LDAPBackend, ldap_error, populate_user

from .. import services
from ..models import DirectoryAccount


class DirectoryBackend(LDAPBackend):
    def get_or_build_user(self, username, ldap_user):
        user, built = super().get_or_build_user(username, ldap_user)
        # A local administrator of the same name is not taken over by whoever holds that name
        # in the directory; to link them on purpose, drop the local account's staff flags first.
        local_admin = not built and (user.is_staff or user.is_superuser)
        if local_admin and not DirectoryAccount.objects.filter(user=user).exists():
            raise PermissionDenied("a local administrator's name")
        return user, built

    def get_user(self, user_id):
        # django-auth-ldap returns disabled users too; a session must end with the account.
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None


class LocalAccountBackend(ModelBackend):
    """Django's own accounts, except those that belong to the directory."""

    def user_can_authenticate(self, user) -> bool:
        if DirectoryAccount.objects.filter(user=user).exists():
            return False
        return super().user_can_authenticate(user)


@receiver(populate_user, sender=DirectoryBackend)
def record_directory_account(sender, user, ldap_user, **kwargs) -> None:
    """Called by django-auth-ldap whenever it fills a user from the directory (each login),
    before it saves the user."""
    services.directory_login_record(user=user, dn=ldap_user.dn)


@receiver(ldap_error, sender=DirectoryBackend)
def remember_directory_failure(sender, context, request=None, exception=None, **kwargs) -> None:
    # Any step of a login can meet it: looking the user up, binding, reading their groups.
    if request is not None:
        request.directory_failure = exception


class LoginThrottle(AxesStandaloneBackend):
    """django-axes's check of the login form: refuses an account or address over the failure
    limit. It needs the web request; an authentication without one (a command, the test
    client) is not a login from the form, so it is left to the other backends."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_address(request) -> str:
    """The address failed logins are counted against: the peer, or behind the portal's TLS
    proxy the address that proxy saw (the last hop it appended to X-Forwarded-For; earlier
    entries are the client's to write)."""
    if settings.PORTAL_BEHIND_TLS_PROXY:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if hops and hops[-1]:
            return hops[-1]
    return request.META.get("REMOTE_ADDR", "")


@receiver(user_locked_out)
def record_lockout(sender, request, username=None, ip_address=None, **kwargs) -> None:
    services.login_lockout_record(username=username or "", address=ip_address or "")

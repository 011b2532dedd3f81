"""Portal users who come from the LDAP directory."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class DirectoryAccount(models.Model):
    """A portal user who comes from the LDAP directory: their teams and ownerships are read
    from it, and the directory sync ends their delegations when they leave a team or are
    disabled. Users without one are local accounts (local groups)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="directory_account"
    )
    dn = models.CharField(max_length=1024)
    seen_at = models.DateTimeField(help_text="When the directory last showed the account")
    disabled_at = models.DateTimeField(
        null=True, blank=True, help_text="When the sync found it disabled or gone"
    )

    def __str__(self) -> str:
        return self.dn

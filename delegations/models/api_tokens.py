"""Tokens that let programs use the JSON API as the person who made them."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A personal API token. Only a hash of the secret is stored: the secret is shown once, when
    the token is made. A token acts as its user, with the rights the directory gives that user at
    the time of each call."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What it is for, e.g. release pipeline")
    # SHA-256 of the secret: secrets are long random strings, so no slow hash is needed.
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The secret's first characters, to tell tokens apart on the page and in logs.
    prefix = models.CharField(max_length=16, editable=False)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user} token {self.name} ({self.prefix}…)"

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

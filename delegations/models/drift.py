"""Drift: where the Notary server's delegations and the portal's disagree (product.md W3)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ..notary import short_key_id as short_form_of
from .publishing import PublishedWork
from .repositories import Repository


class DriftKind(models.TextChoices):
    UNKNOWN_KEY = "unknown_key", "A key the portal did not delegate"
    MISSING_KEY = "missing_key", "A delegated key missing from the trust data"
    ONE_ROLE_ONLY = "one_role_only", "A delegated key in one of its roles only"


class DriftAction(models.TextChoices):
    """What an owner asked the worker to do about a finding."""

    REMOVE = "remove", "Remove the key from every role"
    REPUBLISH = "republish", "Publish the delegation again"


class DriftResolution(models.TextChoices):
    GONE = "gone", "No longer found"
    ADOPTED = "adopted", "Adopted as a member's delegation"
    REMOVED = "removed", "Removed from the trust data"
    REPUBLISHED = "republished", "Published again"


class DriftFinding(PublishedWork):
    """One disagreement, found by the reconciler and open until it no longer holds or an owner
    acted on it. A key is found once per repository and kind while the finding is open, so the
    owners hear of it once."""

    repository = models.ForeignKey(Repository, on_delete=models.PROTECT, related_name="drift")
    kind = models.CharField(max_length=16, choices=DriftKind.choices)
    canonical_key_id = models.CharField(max_length=64)
    # The key as the trust data holds it (public only), for adopting or removing it.
    keytype = models.CharField(max_length=32, blank=True)
    public = models.TextField(blank=True)
    subject = models.CharField(max_length=255, blank=True)
    roles_present = models.JSONField(default=list)
    roles_missing = models.JSONField(default=list)
    # The portal's delegation of that key, for a missing key or a key in one role only.
    delegation = models.ForeignKey(
        "Delegation", on_delete=models.PROTECT, null=True, blank=True, related_name="drift"
    )
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    action = models.CharField(max_length=16, choices=DriftAction.choices, blank=True)
    action_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=16, choices=DriftResolution.choices, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["repository", "first_seen_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["repository", "kind", "canonical_key_id"],
                condition=models.Q(resolved_at__isnull=True),
                name="one_open_finding_per_key_and_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.short_key_id} on {self.repository}"

    @property
    def short_key_id(self) -> str:
        return short_form_of(self.canonical_key_id)

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

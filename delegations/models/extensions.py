"""Members' requests for more time on an active delegation, and the owners' decisions on them.

An extension changes only the delegation's last day (`lifetimes`): the key is in both roles
already, so approving one publishes nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .delegations import Delegation
from .requests import Verdict


class ExtensionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    # The member took it back, or the delegation ended before anyone decided.
    WITHDRAWN = "withdrawn", "Withdrawn"


class Extension(models.Model):
    delegation = models.ForeignKey(Delegation, on_delete=models.PROTECT, related_name="extensions")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="extensions"
    )
    # The last day asked for, and the delegation's when it was asked (empty: the certificate's).
    until = models.DateField()
    previous_until = models.DateField(null=True, blank=True)
    reason = models.TextField()
    status = models.CharField(
        max_length=16, choices=ExtensionStatus.choices, default=ExtensionStatus.PENDING
    )
    created_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["delegation"],
                condition=models.Q(status="pending"),
                name="one_pending_extension_per_delegation",
            )
        ]

    def __str__(self) -> str:
        return f"Extension #{self.pk} of {self.delegation} to {self.until}"


class ExtensionDecision(models.Model):
    """One owner's approval or rejection of an extension."""

    extension = models.ForeignKey(Extension, on_delete=models.PROTECT, related_name="decisions")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="extension_decisions"
    )
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["extension", "owner"], name="one_decision_per_owner_and_extension"
            )
        ]

    def __str__(self) -> str:
        return f"{self.owner} {self.get_verdict_display().lower()} extension #{self.extension_id}"

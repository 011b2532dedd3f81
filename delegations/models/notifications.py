"""The outbox of notification emails."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .requests import DelegationRequest


class NotificationKind(models.TextChoices):
    """Every email the portal sends; its templates are `delegations/emails/<kind>.*`."""

    REQUEST_SUBMITTED = "request_submitted"
    REQUEST_DECIDED = "request_decided"
    REQUEST_DELEGATED = "request_delegated"
    REQUEST_EXPIRING = "request_expiring"
    REQUEST_EXPIRED = "request_expired"
    REQUEST_DIRECTORY_WITHDRAWN = "request_directory_withdrawn"
    REQUEST_FAILED = "request_failed"
    DELEGATION_REVOKED = "delegation_revoked"
    DELEGATION_GIVEN_UP = "delegation_given_up"
    DELEGATION_DIRECTORY_REVOKED = "delegation_directory_revoked"
    DELEGATION_END_FAILED = "delegation_end_failed"
    DELEGATION_EXPIRED = "delegation_expired"
    CERTIFICATE_EXPIRING = "certificate_expiring"
    DELEGATION_ENDING = "delegation_ending"
    EXTENSION_REQUESTED = "extension_requested"
    EXTENSION_DECIDED = "extension_decided"
    REVIEW_OPENED = "review_opened"
    REVIEW_DUE = "review_due"
    DRIFT_FOUND = "drift_found"
    TEAM_ACCESS_FAILED = "team_access_failed"


class Notification(models.Model):
    """One email owed to one person about a request (or, for drift, a finding).

    Written in the transaction of the change it reports and sent by the worker, so an email is
    neither lost with a job nor sent twice when another recipient's delivery fails.
    """

    request = models.ForeignKey(
        DelegationRequest,
        on_delete=models.PROTECT,
        related_name="notifications",
        null=True,
        blank=True,
    )
    finding = models.ForeignKey(
        "DriftFinding",
        on_delete=models.PROTECT,
        related_name="notifications",
        null=True,
        blank=True,
    )
    # The extension an extension's notification is about (its request is the delegation's).
    extension = models.ForeignKey(
        "Extension",
        on_delete=models.PROTECT,
        related_name="notifications",
        null=True,
        blank=True,
    )
    # The access review a review's notification is about (it is about no request).
    review = models.ForeignKey(
        "AccessReview",
        on_delete=models.PROTECT,
        related_name="notifications",
        null=True,
        blank=True,
    )
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    # Reminders are owed once per occasion ("30d", "7d", …): a second run of the reminder job
    # meets the unique constraint instead of mailing again. Empty for one-off notifications.
    occasion = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["sent_at", "created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "kind", "recipient", "occasion"],
                condition=~models.Q(occasion=""),
                name="one_notification_per_occasion",
            ),
            models.UniqueConstraint(
                fields=["review", "kind", "recipient", "occasion"],
                condition=~models.Q(occasion=""),
                name="one_review_notification_per_occasion",
            ),
        ]

    def __str__(self) -> str:
        about = (
            f"#{self.request_id}"
            if self.request_id
            else f"review {self.review_id}"
            if self.review_id
            else f"drift {self.finding_id}"
        )
        return f"{self.kind} to {self.recipient} about {about}"

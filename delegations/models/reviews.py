"""Access reviews: every so often a repository's owners re-certify each active delegation, keep
it or revoke it, before a deadline. A closed review is a record of who kept what and why."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .delegations import Delegation
from .repositories import Repository, UnreviewedPolicy


class AccessReview(models.Model):
    repository = models.ForeignKey(Repository, on_delete=models.PROTECT, related_name="reviews")
    opened_at = models.DateTimeField()
    deadline = models.DateTimeField()
    # The repository's choice when the review opened: a later change applies to later reviews.
    unreviewed = models.CharField(max_length=8, choices=UnreviewedPolicy.choices)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Kept unreviewed past the deadline: the repository is flagged until a review is finished.
    flagged = models.BooleanField(default=False)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["repository"],
                condition=models.Q(closed_at__isnull=True),
                name="one_open_review_per_repository",
            )
        ]

    def __str__(self) -> str:
        return f"Review #{self.pk} of {self.repository}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class ReviewVerdict(models.TextChoices):
    KEEP = "keep", "Kept"
    REVOKE = "revoke", "Revoked"


class ReviewOutcome(models.TextChoices):
    """What the deadline did to a delegation nobody reviewed."""

    KEPT_UNREVIEWED = "kept_unreviewed", "Kept without review"
    ENDED_UNREVIEWED = "ended_unreviewed", "Ended: not re-certified"
    # It ended some other way (revoked, given up, expired) while the review was open.
    ENDED_MEANWHILE = "ended_meanwhile", "Ended before it was reviewed"


class ReviewItem(models.Model):
    """One delegation under review, as it stood when the review opened."""

    review = models.ForeignKey(AccessReview, on_delete=models.PROTECT, related_name="items")
    delegation = models.ForeignKey(
        Delegation, on_delete=models.PROTECT, related_name="review_items"
    )
    # The roles whose current file the delegation's key signs, [{"role", "version"}], as the
    # verified read found them when the review opened; None when the server could not be read.
    signs = models.JSONField(null=True, blank=True)
    verdict = models.CharField(max_length=8, choices=ReviewVerdict.choices, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    outcome = models.CharField(max_length=16, choices=ReviewOutcome.choices, blank=True)

    class Meta:
        ordering = ["delegation__team", "delegation__member__username", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["review", "delegation"], name="one_item_per_delegation_and_review"
            )
        ]

    def __str__(self) -> str:
        return f"{self.delegation} in review #{self.review_id}"

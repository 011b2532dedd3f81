"""Delegations: one member's key in both roles of a repository, from its publish to its end."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models

from .. import lifetimes
from ..notary import short_key_id as short_form_of
from .publishing import PublishedWork
from .repositories import Repository
from .requests import DelegationRequest


class EndReason(models.TextChoices):
    REVOKED = "revoked", "Revoked"
    REPLACED = "replaced", "Replaced by renewal"
    LEFT_TEAM = "left_team", "Left the team"
    # Its last day passed, or its certificate expired (`lifetimes`).
    EXPIRED = "expired", "Expired"
    GIVEN_UP = "given_up", "Given up"
    DISABLED = "disabled", "Account disabled"
    # UCP no longer lists the certificate's key among the member's client bundles.
    BUNDLE_DELETED = "bundle_deleted", "Client bundle deleted"
    # Nobody re-certified it by its access review's deadline, and the repository ends those.
    NOT_RECERTIFIED = "not_recertified", "Not re-certified"


# Ends the directory sync asks for: nobody chose them, the state of the directory (or of the
# member's client bundles in UCP) did.
DIRECTORY_END_REASONS = (EndReason.LEFT_TEAM, EndReason.DISABLED, EndReason.BUNDLE_DELETED)


class DelegationQuerySet(models.QuerySet["Delegation"]):
    def active(self) -> DelegationQuerySet:
        """Delegations whose key is in the trust data: not ended (an end may be on its way)."""
        return self.filter(ended_at__isnull=True)

    def steady(self) -> DelegationQuerySet:
        """Active delegations nobody has asked to end: the ones that can be renewed, ended or
        reminded of."""
        return self.active().filter(ending="")

    def ending(self) -> DelegationQuerySet:
        """Active delegations whose end was asked for and is not done yet."""
        return self.active().exclude(ending="")


class Delegation(PublishedWork):
    """An active (or ended) grant: one member's key in both roles of a repository."""

    request = models.OneToOneField(
        DelegationRequest, on_delete=models.PROTECT, related_name="delegation"
    )
    repository = models.ForeignKey(Repository, on_delete=models.PROTECT, related_name="delegations")
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="delegations"
    )
    team = models.CharField(max_length=64)
    canonical_key_id = models.CharField(max_length=64)
    tuf_key_id = models.CharField(max_length=64)
    roles = models.JSONField()
    active_from = models.DateTimeField()
    certificate_expires_at = models.DateTimeField()
    # The last day (`lifetimes`), and the moment it ends; empty for as long as the certificate
    # is valid. The earlier of `ends_at` and `certificate_expires_at` ends the delegation.
    until = models.DateField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=16, choices=EndReason.choices, blank=True)
    # An end someone asked for, while the worker takes the key out of the trust data: set by
    # compare-and-set on an active delegation with none pending, so it is asked once; the key
    # still signs until `ended_at` is set. Who asked and why stay on record afterwards.
    ending = models.CharField(max_length=16, choices=EndReason.choices, blank=True)
    ending_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    ending_requested_at = models.DateTimeField(null=True, blank=True)
    ending_comment = models.TextField(blank=True)
    # The last end the worker gave up on (the key stayed in): which end, why, and when, for the
    # email that says so.
    failed_ending = models.CharField(max_length=16, choices=EndReason.choices, blank=True)
    failed_ending_reason = models.TextField(blank=True)
    failed_ending_at = models.DateTimeField(null=True, blank=True)
    # When an end the directory sync asked for last failed. Kept whatever fails later: the sync
    # asks once and mails once; after that an owner revokes by hand.
    directory_end_failed_at = models.DateTimeField(null=True, blank=True)

    objects = DelegationQuerySet.as_manager()

    class Meta:
        ordering = ["repository", "team", "active_from"]
        indexes = [
            models.Index(fields=["repository", "ended_at"]),
            # The expiry sweep's two questions.
            models.Index(fields=["ended_at", "ends_at"]),
            models.Index(fields=["ended_at", "certificate_expires_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.member} in {self.repository} ({self.team})"

    @classmethod
    def of_request(cls, request: DelegationRequest, *, since: datetime) -> Delegation:
        """The (unsaved) grant a delegated request makes: its key, in both of its roles."""
        return cls(
            request=request,
            repository=request.repository,
            member=request.requester,
            team=request.team,
            canonical_key_id=request.canonical_key_id,
            tuf_key_id=request.tuf_key_id,
            roles=request.role_names,
            active_from=since,
            certificate_expires_at=request.not_after,
            until=request.until,
            ends_at=lifetimes.end_of(request.until) if request.until else None,
        )

    @property
    def is_active(self) -> bool:
        return self.ended_at is None

    @property
    def is_ending(self) -> bool:
        """Whether the worker is taking the key out now (it still signs until then)."""
        return self.is_active and bool(self.ending)

    @property
    def short_key_id(self) -> str:
        return short_form_of(self.canonical_key_id)

    @property
    def expires_at(self) -> datetime:
        """When it ends by itself: its last day over, or its certificate expired."""
        if self.ends_at is not None and self.ends_at < self.certificate_expires_at:
            return self.ends_at
        return self.certificate_expires_at

    @property
    def ends_before_certificate(self) -> bool:
        return self.ends_at is not None and self.ends_at < self.certificate_expires_at

"""Members' requests for a delegation, and the owners' decisions on them."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models

from ..intake.certificates import expires_soon
from ..notary import RELEASES, team_role_name
from ..notary import short_key_id as short_form_of
from .publishing import PublishedWork
from .repositories import Repository

# What people write for others to read (a request's reason, a decision's or an end's comment)
# is kept to this many characters.
MAX_COMMENT_CHARACTERS = 2000


def pending_lifetime() -> timedelta:
    """How long a request waits for its owners before it expires (PORTAL_REQUEST_EXPIRY_DAYS)."""
    return timedelta(days=settings.PORTAL_REQUEST_EXPIRY_DAYS)


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    APPLYING = "applying", "Applying"
    DELEGATED = "delegated", "Delegated"
    REJECTED = "rejected", "Rejected"
    FAILED = "failed", "Failed"
    WITHDRAWN = "withdrawn", "Withdrawn"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"
    SUPERSEDED = "superseded", "Superseded"


# A request in one of these states still stands in the way of another for the same key, or for
# the same member, repository and team (the database enforces it). A key delegated by a request
# now past them is refused too, for as long as its Delegation is active (checked in the service).
OPEN_STATUSES = (RequestStatus.PENDING, RequestStatus.APPROVED, RequestStatus.APPLYING)


class DelegationRequest(PublishedWork):
    """A member's request to sign for a repository as a member of one team."""

    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="delegation_requests"
    )
    repository = models.ForeignKey(Repository, on_delete=models.PROTECT, related_name="requests")
    team = models.CharField(max_length=64)
    reason = models.TextField()
    # The public certificate only, normalised as notary stores it; never a private key.
    certificate_pem = models.TextField()
    keytype = models.CharField(max_length=32)
    tuf_key_id = models.CharField(max_length=64)
    canonical_key_id = models.CharField(max_length=64, db_index=True)
    certificate_sha256 = models.CharField(max_length=64)
    subject = models.CharField(max_length=1024)
    issuer = models.CharField(max_length=1024)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    key_description = models.CharField(max_length=32, blank=True, help_text="e.g. ECDSA P-256")
    # The nonce of the challenge the requester signed with the certificate's key; unique, so a
    # challenge proves possession once. Empty when proof of possession was not required.
    possession_nonce = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # The last day of the delegation (`lifetimes`), empty for as long as the certificate is
    # valid: as the member asked it, and as it stands once owners shortened it when approving.
    requested_until = models.DateField(null=True, blank=True)
    until = models.DateField(null=True, blank=True)
    # The delegation this request renews with a new certificate: applying it replaces that
    # delegation's key with this one in the same publish.
    renews = models.ForeignKey(
        "Delegation", on_delete=models.PROTECT, null=True, blank=True, related_name="renewals"
    )
    status = models.CharField(
        max_length=16, choices=RequestStatus.choices, default=RequestStatus.PENDING
    )
    targets_version_before = models.PositiveIntegerField(null=True, blank=True)
    targets_version_after = models.PositiveIntegerField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["repository", "status", "created_at"]),
            models.Index(fields=["requester", "created_at"]),
            # The owners' queue: pending requests read in order without a sort, and its filter
            # choices and counts answered from the index alone.
            models.Index(fields=["status", "created_at", "id"]),
            models.Index(fields=["status", "team", "repository", "requester"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["repository", "requester", "team"],
                condition=models.Q(status__in=OPEN_STATUSES),
                name="one_open_request_per_member_and_team",
            ),
            models.UniqueConstraint(
                fields=["repository", "canonical_key_id"],
                condition=models.Q(status__in=OPEN_STATUSES),
                name="one_open_request_per_key",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.requester} → {self.repository} ({self.team})"

    @property
    def role_names(self) -> list[str]:
        """Both roles UCP needs a signer's key in."""
        return [RELEASES, team_role_name(self.team)]

    @property
    def short_key_id(self) -> str:
        return short_form_of(self.canonical_key_id)

    @property
    def expires_at(self) -> datetime:
        """When the request expires if nobody decides on it (`services.requests_expire`)."""
        return self.created_at + pending_lifetime()

    @property
    def certificate_fingerprint(self) -> str:
        """The SHA-256 fingerprint as `openssl x509 -noout -fingerprint -sha256` prints it."""
        upper = self.certificate_sha256.upper()
        return ":".join(upper[index : index + 2] for index in range(0, len(upper), 2))

    @property
    def possession_proven(self) -> bool:
        return bool(self.possession_nonce)

    def certificate_expires_soon(self, now: datetime) -> bool:
        return expires_soon(self.not_after, now)


class Verdict(models.TextChoices):
    APPROVE = "approve", "Approved"
    REJECT = "reject", "Rejected"


class Decision(models.Model):
    """One owner's approval or rejection of a request."""

    request = models.ForeignKey(
        DelegationRequest, on_delete=models.PROTECT, related_name="decisions"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="decisions"
    )
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    comment = models.TextField(blank=True)
    # The earlier last day this owner set when approving, if they shortened the request.
    until = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "owner"], name="one_decision_per_owner")
        ]

    def __str__(self) -> str:
        return f"{self.owner} {self.get_verdict_display().lower()} #{self.request_id}"

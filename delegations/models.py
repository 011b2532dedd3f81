"""The portal's domain (product.md §3). Rows change only through `services`."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from .certificates import expires_soon
from .notary import RELEASES, team_role_name


class Repository(models.Model):
    """A DTR repository whose trust data the portal manages."""

    dtr_host = models.CharField(max_length=253, help_text="e.g. dtr.example.org")
    namespace = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    notary_url = models.URLField(help_text="The Notary server, e.g. https://dtr.example.org")
    owners_group = models.CharField(
        max_length=150, help_text="The group whose members own this repository and approve requests"
    )
    root_certificate_pem = models.TextField(
        blank=True, help_text="The pinned root certificate, set when trust is initialised"
    )
    approvals_required = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text="How many different owners must approve a request before it is applied",
    )
    trust_initialised_at = models.DateTimeField(null=True, blank=True)
    # The Notary client's memory between runs (see delegations.notary.reading.TrustMemory).
    trusted_root = models.TextField(
        blank=True, help_text="root.json as last verified: root rotations are followed from it"
    )
    seen_versions = models.JSONField(
        default=dict,
        blank=True,
        help_text="The highest version seen of each role; older ones are refused as replays",
    )
    # Raised when the pin changes or the memory is cleared, so a read that began before does
    # not write back what it remembered under the old anchor.
    trust_epoch = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "repositories"
        ordering = ["dtr_host", "namespace", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["dtr_host", "namespace", "name"], name="unique_repository_gun"
            )
        ]

    def __str__(self) -> str:
        return self.gun

    @property
    def gun(self) -> str:
        """The globally unique name Notary knows the repository by."""
        return f"{self.dtr_host}/{self.namespace}/{self.name}"

    @property
    def path(self) -> str:
        return f"{self.namespace}/{self.name}"


class KeyRole(models.TextChoices):
    ROOT = "root", "Root"
    TARGETS = "targets", "Targets"
    SNAPSHOT = "snapshot", "Snapshot"


class RepositoryKey(models.Model):
    """A private key of a repository's trust data, envelope-encrypted (see `keystore`)."""

    repository = models.ForeignKey(Repository, on_delete=models.PROTECT, related_name="keys")
    role = models.CharField(max_length=16, choices=KeyRole.choices)
    keytype = models.CharField(max_length=32)
    public = models.TextField(help_text="keyval.public as it appears in root.json")
    tuf_key_id = models.CharField(max_length=64)
    canonical_key_id = models.CharField(max_length=64)
    sealed_private_key = models.BinaryField(editable=False)
    key_encryption_key_id = models.CharField(max_length=32, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "role"], name="one_key_per_role")
        ]

    def __str__(self) -> str:
        return f"{self.repository} {self.role} key {self.canonical_key_id[:12]}"


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


class DelegationRequest(models.Model):
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
        """The 12-character form `docker trust inspect` shows."""
        return self.canonical_key_id[:12]

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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "owner"], name="one_decision_per_owner")
        ]

    def __str__(self) -> str:
        return f"{self.owner} {self.get_verdict_display().lower()} #{self.request_id}"


class Notification(models.Model):
    """One email owed to one person about a request.

    Written in the transaction of the change it reports and sent by the worker, so an email is
    neither lost with a job nor sent twice when another recipient's delivery fails.
    """

    request = models.ForeignKey(
        DelegationRequest, on_delete=models.PROTECT, related_name="notifications"
    )
    kind = models.CharField(max_length=32)
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
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.recipient} about #{self.request_id}"


class EndReason(models.TextChoices):
    REVOKED = "revoked", "Revoked"
    REPLACED = "replaced", "Replaced by renewal"
    LEFT_TEAM = "left_team", "Left the team"
    EXPIRED = "expired", "Certificate expired"
    GIVEN_UP = "given_up", "Given up"
    DISABLED = "disabled", "Account disabled"


# Ends the directory sync asks for: nobody chose them, the directory's state did.
DIRECTORY_END_REASONS = (EndReason.LEFT_TEAM, EndReason.DISABLED)


class Delegation(models.Model):
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

    class Meta:
        ordering = ["repository", "team", "active_from"]
        indexes = [models.Index(fields=["repository", "ended_at"])]

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
        )

    @property
    def is_active(self) -> bool:
        return self.ended_at is None


class AuditEvent(models.Model):
    """Append-only record of every state change and publish, chained by hashes.

    Each event's hash covers its content and the previous event's hash, so editing or deleting
    any row breaks every hash after it.
    """

    created_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Kept as text too, so the record still names the actor if the account is deleted.
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    request = models.ForeignKey(
        DelegationRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    repository = models.ForeignKey(
        Repository, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_events"
    )
    details = models.JSONField(default=dict)
    previous_hash = models.CharField(max_length=64, unique=True)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action}"


class AuditChainHead(models.Model):
    """One row holding the newest audit hash; locking it serialises writers of the chain."""

    last_hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return self.last_hash


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

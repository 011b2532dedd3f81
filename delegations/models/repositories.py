"""Repositories the portal manages, and the sealed private keys of their trust data."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from ..notary import short_key_id as short_form_of


class UnreviewedPolicy(models.TextChoices):
    """What an access review's deadline does to the delegations nobody reviewed."""

    KEEP = "keep", "Keep them, and flag the repository"
    END = "end", "End them (not re-certified)"


# A century: longer than any certificate, and short enough for date arithmetic.
MAX_DELEGATION_DAYS = 36500


class Repository(models.Model):
    """A DTR repository whose trust data the portal manages."""

    dtr_host = models.CharField(max_length=253, help_text="e.g. dtr.example.org")
    namespace = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    notary_url = models.URLField(help_text="The Notary server, e.g. https://dtr.example.org")
    dtr_url = models.URLField(
        blank=True, help_text="DTR's API, when not https://<DTR host> (a proxy, another port)"
    )
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
    # How long delegations last (`lifetimes`): the longest an owner allows, and what the request
    # form offers; empty for as long as the member's certificate is valid.
    max_delegation_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DELEGATION_DAYS)],
        help_text="The longest a delegation may last, in days; empty for no limit",
    )
    default_delegation_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DELEGATION_DAYS)],
        help_text="What the request form offers, in days; empty offers the longest allowed",
    )
    # Access reviews (`services.reviews`): how often, how long the owners have, and what the
    # deadline does to delegations nobody reviewed.
    review_interval_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DELEGATION_DAYS)],
        help_text="Owners re-certify every active delegation this often, in days; empty: never",
    )
    review_deadline_days = models.PositiveIntegerField(
        default=14,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="How many days the owners have to finish a review",
    )
    review_unreviewed = models.CharField(
        max_length=8,
        choices=UnreviewedPolicy.choices,
        default=UnreviewedPolicy.KEEP,
        help_text="What the deadline does to delegations nobody reviewed",
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

    def clean(self) -> None:
        if (
            self.max_delegation_days is not None
            and self.default_delegation_days is not None
            and self.default_delegation_days > self.max_delegation_days
        ):
            raise ValidationError(
                {"default_delegation_days": "The default cannot be longer than the longest."}
            )

    @property
    def gun(self) -> str:
        """The globally unique name Notary knows the repository by."""
        return f"{self.dtr_host}/{self.namespace}/{self.name}"

    @property
    def path(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def dtr_api_url(self) -> str:
        return self.dtr_url or f"https://{self.dtr_host}"


class TrustFile(models.Model):
    """The last snapshot or targets file of a repository the portal verified (the rest of the
    client's memory is on `Repository`). Trusted for nothing: a read uses it only when the
    verified file above lists exactly its hashes, and checks it as if downloaded. A row of its
    own, so that a large targets file is loaded only when the trust data is read."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="trust_files")
    role = models.CharField(max_length=255)
    data = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "role"], name="unique_trust_file_role")
        ]

    def __str__(self) -> str:
        return f"{self.repository}: {self.role}"


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
        return f"{self.repository} {self.role} key {short_form_of(self.canonical_key_id)}"


class HandoverStatus(models.TextChoices):
    PREPARING = "preparing", "Being prepared"
    READY = "ready", "Ready to download"
    TAKEN = "taken", "Taken by its owners"
    EXPIRED = "expired", "Expired"
    FAILED = "failed", "Failed"


OPEN_HANDOVER_STATUSES = (HandoverStatus.PREPARING, HandoverStatus.READY)


class RootKeyHandover(models.Model):
    """A repository's root key on its way out of the portal, to its owners' offline storage.

    An owner types a passphrase, which the web process seals to the worker (it cannot open it
    itself); the worker writes the root key into a notary key file encrypted with it and forgets
    the passphrase; the owner downloads the file and confirms they stored it, and only then is
    the portal's sealed root key deleted. An unconfirmed file is deleted after
    PORTAL_ROOT_KEY_HANDOVER_HOURS, and the root key stays sealed in the portal."""

    repository = models.ForeignKey(
        Repository, on_delete=models.CASCADE, related_name="root_key_handovers"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=HandoverStatus.choices, default=HandoverStatus.PREPARING
    )
    # Emptied as soon as the worker has used it.
    sealed_passphrase = models.BinaryField(default=b"", editable=False)
    sealing_key_id = models.CharField(max_length=32, blank=True, editable=False)
    # The root key encrypted with the owner's passphrase: emptied once taken, expired or failed.
    key_file = models.BinaryField(default=b"", editable=False)
    canonical_key_id = models.CharField(max_length=64, blank=True)
    failure = models.TextField(blank=True)
    created_at = models.DateTimeField()
    ready_at = models.DateTimeField(null=True, blank=True)
    downloaded_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["repository"],
                condition=models.Q(status__in=OPEN_HANDOVER_STATUSES),
                name="one_open_root_key_handover",
            )
        ]

    def __str__(self) -> str:
        return f"{self.repository} root key handover ({self.status})"

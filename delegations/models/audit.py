"""The hash-chained audit log (written and verified by `delegations.audit`)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .repositories import Repository
from .requests import DelegationRequest


class AuditAction(models.TextChoices):
    """Every kind of event the audit log records, `<subject>.<what happened>`."""

    # A member's request, from submission to its end.
    REQUEST_SUBMITTED = "request.submitted"
    REQUEST_APPROVAL_COUNTED = "request.approval_counted"
    REQUEST_APPROVED = "request.approved"
    REQUEST_REJECTED = "request.rejected"
    REQUEST_WITHDRAWN = "request.withdrawn"
    REQUEST_EXPIRED = "request.expired"
    REQUEST_APPLYING = "request.applying"
    REQUEST_DELEGATED = "request.delegated"
    REQUEST_FAILED = "request.failed"
    REQUEST_SUPERSEDED = "request.superseded"
    REQUEST_REVOKED = "request.revoked"
    REQUEST_GIVEN_UP = "request.given_up"
    # Ends of a delegation asked for, and one the worker gave up on.
    DELEGATION_REVOKE_REQUESTED = "delegation.revoke_requested"
    DELEGATION_GIVE_UP_REQUESTED = "delegation.give_up_requested"
    DELEGATION_LEFT_TEAM = "delegation.left_team"
    DELEGATION_ACCOUNT_DISABLED = "delegation.account_disabled"
    DELEGATION_BUNDLE_DELETED = "delegation.bundle_deleted"
    DELEGATION_EXPIRED = "delegation.expired"
    # Members' requests for more time, and the owners' decisions.
    EXTENSION_REQUESTED = "extension.requested"
    EXTENSION_APPROVAL_COUNTED = "extension.approval_counted"
    EXTENSION_APPROVED = "extension.approved"
    EXTENSION_REJECTED = "extension.rejected"
    EXTENSION_WITHDRAWN = "extension.withdrawn"
    # Access reviews.
    REVIEW_OPENED = "review.opened"
    REVIEW_KEPT = "review.kept"
    REVIEW_REVOKED = "review.revoked"
    REVIEW_CLOSED = "review.closed"
    DELEGATION_NOT_RECERTIFIED = "delegation.not_recertified"
    DELEGATION_END_FAILED = "delegation.end_failed"
    # What the worker found or did on the Notary server.
    NOTARY_PUBLISHED = "notary.published"
    NOTARY_FOUND_DELEGATED = "notary.found_delegated"
    NOTARY_FOUND_REMOVED = "notary.found_removed"
    # Drift between the trust data and the portal, and what owners did about it.
    DRIFT_FOUND = "drift.found"
    DRIFT_GONE = "drift.gone"
    DRIFT_ADOPTED = "drift.adopted"
    DRIFT_ACTION_REQUESTED = "drift.action_requested"
    DRIFT_ACTION_FAILED = "drift.action_failed"
    DRIFT_REMOVED = "drift.removed"
    DRIFT_REPUBLISHED = "drift.republished"
    # Repositories and their keys.
    REPOSITORY_REGISTERED = "repository.registered"
    REPOSITORY_UPDATED = "repository.updated"
    REPOSITORY_TRUST_INITIALISATION_REQUESTED = "repository.trust_initialisation_requested"
    REPOSITORY_KEYS_GENERATED = "repository.keys_generated"
    REPOSITORY_TRUST_INITIALISED = "repository.trust_initialised"
    REPOSITORY_TRUST_ADOPTED = "repository.trust_adopted"
    REPOSITORY_KEY_IMPORTED = "repository.key_imported"
    REPOSITORY_KEY_RESEALED = "repository.key_resealed"
    REPOSITORY_ROOT_PINNED = "repository.root_pinned"
    REPOSITORY_ROOT_UNPINNED = "repository.root_unpinned"
    REPOSITORY_TRUST_MEMORY_CLEARED = "repository.trust_memory_cleared"
    ROOT_KEY_HANDOVER_REQUESTED = "root_key.handover_requested"
    ROOT_KEY_HANDOVER_READY = "root_key.handover_ready"
    ROOT_KEY_DOWNLOADED = "root_key.downloaded"
    ROOT_KEY_HANDED_OVER = "root_key.handed_over"
    ROOT_KEY_HANDOVER_ENDED = "root_key.handover_ended"
    # Teams' access to repositories in DTR.
    DTR_TEAM_ACCESS_GRANTED = "dtr.team_access_granted"
    DTR_TEAM_ACCESS_FAILED = "dtr.team_access_failed"
    DTR_TEAM_ACCESS_REMOVED = "dtr.team_access_removed"
    # Accounts that come from the directory, and its sync.
    ACCOUNT_PROVISIONED = "account.provisioned"
    ACCOUNT_DISABLED = "account.disabled"
    ACCOUNT_ENABLED = "account.enabled"
    DIRECTORY_SYNC_HELD = "directory.sync_held"
    ACCOUNT_LOCKED_OUT = "account.locked_out"
    ADMIN_USER_SAVED = "admin.user_saved"
    ADMIN_USER_DELETED = "admin.user_deleted"
    ADMIN_GROUP_SAVED = "admin.group_saved"
    ADMIN_GROUP_DELETED = "admin.group_deleted"
    ADMIN_MEMBERSHIP_CHANGED = "admin.membership_changed"
    AUDIT_CHAIN_KEYED = "audit.chain_keyed"
    ACCOUNT_SESSIONS_ENDED = "account.sessions_ended"
    API_TOKEN_CREATED = "api_token.created"  # noqa: S105 - an action name
    API_TOKEN_REVOKED = "api_token.revoked"  # noqa: S105 - an action name


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
    action = models.CharField(max_length=64, choices=AuditAction.choices)
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

    @property
    def short_hash(self) -> str:
        """The start of the event's hash, enough to tell events apart on a page."""
        return self.hash[:12]


class AuditChainHead(models.Model):
    """One row holding the newest audit hash; locking it serialises writers of the chain."""

    last_hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return self.last_hash

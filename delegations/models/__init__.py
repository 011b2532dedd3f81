"""The portal's domain (product.md §3), one module per concern. Rows change only through
`services`; everything else imports the models from here."""

from .accounts import DirectoryAccount
from .api_tokens import ApiToken
from .audit import AuditAction, AuditChainHead, AuditEvent
from .delegations import DIRECTORY_END_REASONS, Delegation, DelegationQuerySet, EndReason
from .drift import DriftAction, DriftFinding, DriftKind, DriftResolution
from .extensions import Extension, ExtensionDecision, ExtensionStatus
from .notifications import Notification, NotificationKind
from .publishing import PublishLease
from .repositories import (
    MAX_DELEGATION_DAYS,
    OPEN_HANDOVER_STATUSES,
    HandoverStatus,
    KeyRole,
    Repository,
    RepositoryKey,
    RootKeyHandover,
    TrustFile,
)
from .requests import (
    MAX_COMMENT_CHARACTERS,
    OPEN_STATUSES,
    Decision,
    DelegationRequest,
    RequestStatus,
    Verdict,
    pending_lifetime,
)
from .reviews import AccessReview, ReviewItem, ReviewOutcome, ReviewVerdict, UnreviewedPolicy
from .team_access import TeamAccessGrant, TeamAccessStatus

__all__ = [
    "DIRECTORY_END_REASONS",
    "MAX_COMMENT_CHARACTERS",
    "MAX_DELEGATION_DAYS",
    "OPEN_HANDOVER_STATUSES",
    "OPEN_STATUSES",
    "AccessReview",
    "ApiToken",
    "AuditAction",
    "AuditChainHead",
    "AuditEvent",
    "Decision",
    "Delegation",
    "DelegationQuerySet",
    "DelegationRequest",
    "DirectoryAccount",
    "DriftAction",
    "DriftFinding",
    "DriftKind",
    "DriftResolution",
    "EndReason",
    "Extension",
    "ExtensionDecision",
    "ExtensionStatus",
    "HandoverStatus",
    "KeyRole",
    "Notification",
    "NotificationKind",
    "PublishLease",
    "Repository",
    "RepositoryKey",
    "RequestStatus",
    "ReviewItem",
    "ReviewOutcome",
    "ReviewVerdict",
    "RootKeyHandover",
    "TeamAccessGrant",
    "TeamAccessStatus",
    "TrustFile",
    "UnreviewedPolicy",
    "Verdict",
    "pending_lifetime",
]

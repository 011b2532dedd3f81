"""Every read the portal makes, by what it reads about. Selectors never write: a test runs each
of them under a guard that fails on any INSERT, UPDATE or DELETE."""

from .delegations import (
    NOT_AN_OWNER,
    active_delegations_owned_by,
    delegation_of_member,
    delegation_owned_by,
    delegations_owing_certificate_reminder,
    open_renewal_of,
    other_delegations_of_key,
    renewable_delegation,
)
from .drift import Disagreement, drift_between, drift_finding_owned_by, drift_open_for
from .people import (
    directory_account_of,
    group_names_of,
    is_owner,
    members_of,
    owners_of,
    repositories_owned_by,
    teams_of,
)
from .previews import DryRun, RevocationPreview, request_dry_run, revocation_preview
from .repositories import repositories_open_for_requests, repository_by_gun, split_gun
from .requests import (
    QueueFilters,
    approval_queue_for,
    approval_queue_narrowed,
    approvals_missing,
    approvals_of,
    conflicting_request,
    delegation_renewed_by,
    expired_request_ids,
    request_change,
    request_for_viewer,
    requests_of,
    requests_owing_expiry_reminder,
    why_cannot_decide,
)
from .sweeps import unsent_notification_ids, waiting_repository_ids
from .team_access import team_access_due_ids, team_access_of

__all__ = [
    "NOT_AN_OWNER",
    "Disagreement",
    "DryRun",
    "QueueFilters",
    "RevocationPreview",
    "active_delegations_owned_by",
    "approval_queue_for",
    "approval_queue_narrowed",
    "approvals_missing",
    "approvals_of",
    "conflicting_request",
    "delegation_of_member",
    "delegation_owned_by",
    "delegation_renewed_by",
    "delegations_owing_certificate_reminder",
    "directory_account_of",
    "drift_between",
    "drift_finding_owned_by",
    "drift_open_for",
    "expired_request_ids",
    "group_names_of",
    "is_owner",
    "members_of",
    "open_renewal_of",
    "other_delegations_of_key",
    "owners_of",
    "renewable_delegation",
    "repositories_open_for_requests",
    "repositories_owned_by",
    "repository_by_gun",
    "request_change",
    "request_dry_run",
    "request_for_viewer",
    "requests_of",
    "requests_owing_expiry_reminder",
    "revocation_preview",
    "split_gun",
    "team_access_due_ids",
    "team_access_of",
    "teams_of",
    "unsent_notification_ids",
    "waiting_repository_ids",
    "why_cannot_decide",
]

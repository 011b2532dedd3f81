"""Every write the portal makes, by domain. Each state change is a compare-and-set with an audit
event, and its side effects (jobs, emails) are enqueued only once the transaction has committed.
What a change needs from the directory is read before its transaction begins."""

from .accounts import (
    admin_change_record,
    directory_account_provision,
    directory_account_set_active,
    directory_login_record,
    login_lockout_record,
    repository_owners_provision,
    sessions_end_all,
)
from .api_tokens import api_token_create, api_token_revoke, api_token_use
from .audit_checkpoints import audit_checkpoint_issue
from .decisions import request_approve, request_reject, requests_decide
from .delegation_endings import (
    delegation_end_fail,
    delegation_end_for_directory,
    delegation_give_up,
    delegation_revoke,
    delegations_expire,
)
from .delegation_requests import request_fail, request_submit
from .directory_sync import directory_sync
from .drift import (
    drift_action_request,
    drift_adopt,
    repositories_reconcile,
    repository_reconcile,
)
from .extensions import extension_approve, extension_reject, extension_request
from .notifications import notification_send, notifications_create
from .publishing import delegation_end, repository_publish, request_apply
from .reminders import reminders_send
from .repositories import (
    repository_initialise_trust,
    repository_register,
    repository_trust_initialise_request,
    repository_update,
)
from .repository_keys import repository_key_import, repository_keys_rewrap
from .request_endings import request_withdraw, requests_expire
from .reviews import review_close, review_decide, review_open, reviews_run
from .root_keys import (
    root_key_download,
    root_key_handover_cancel,
    root_key_handover_confirm,
    root_key_handover_prepare,
    root_key_handover_request,
    root_key_handovers_sweep,
)
from .state import TRANSITIONS
from .sweeps import unsent_notifications_resend, waiting_publishes_resume
from .team_access import team_access_grant, team_access_remove, team_access_resume
from .trust_anchors import repository_root_pin, repository_trust_forget

__all__ = [
    "TRANSITIONS",
    "admin_change_record",
    "api_token_create",
    "api_token_revoke",
    "api_token_use",
    "audit_checkpoint_issue",
    "delegation_end",
    "delegation_end_fail",
    "delegation_end_for_directory",
    "delegation_give_up",
    "delegation_revoke",
    "delegations_expire",
    "directory_account_provision",
    "directory_account_set_active",
    "directory_login_record",
    "directory_sync",
    "drift_action_request",
    "drift_adopt",
    "extension_approve",
    "extension_reject",
    "extension_request",
    "login_lockout_record",
    "notification_send",
    "notifications_create",
    "reminders_send",
    "repositories_reconcile",
    "repository_initialise_trust",
    "repository_key_import",
    "repository_keys_rewrap",
    "repository_owners_provision",
    "repository_publish",
    "repository_reconcile",
    "repository_register",
    "repository_root_pin",
    "repository_trust_forget",
    "repository_trust_initialise_request",
    "repository_update",
    "request_apply",
    "request_approve",
    "request_fail",
    "request_reject",
    "request_submit",
    "request_withdraw",
    "requests_decide",
    "requests_expire",
    "review_close",
    "review_decide",
    "review_open",
    "reviews_run",
    "root_key_download",
    "root_key_handover_cancel",
    "root_key_handover_confirm",
    "root_key_handover_prepare",
    "root_key_handover_request",
    "root_key_handovers_sweep",
    "sessions_end_all",
    "team_access_grant",
    "team_access_remove",
    "team_access_resume",
    "unsent_notifications_resend",
    "waiting_publishes_resume",
]

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from .views import (
    account,
    approvals,
    audit,
    delegations,
    drift,
    extensions,
    repositories,
    repository_keys,
    requests,
    reviews,
)
from .views.api import audit as api_audit
from .views.api import errors as api_errors
from .views.api import extensions as api_extensions
from .views.api import members as api_members
from .views.api import owners as api_owners
from .views.api import reviews as api_reviews

API = "api/v1/"

app_name = "delegations"

urlpatterns = [
    path("", requests.home, name="home"),
    path("requests/", requests.request_list, name="request_list"),
    path("requests/new/", requests.request_create, name="request_create"),
    path("requests/<int:request_id>/", requests.request_detail, name="request_detail"),
    path("requests/<int:request_id>/withdraw/", requests.request_withdraw, name="request_withdraw"),
    path("requests/<int:request_id>/approve/", approvals.request_approve, name="request_approve"),
    path("requests/<int:request_id>/reject/", approvals.request_reject, name="request_reject"),
    path("approvals/", approvals.approval_queue, name="approval_queue"),
    path("approvals/decide/", approvals.requests_bulk_decide, name="requests_bulk_decide"),
    path("delegations/", delegations.delegation_list, name="delegation_list"),
    path(
        "delegations/<int:delegation_id>/renew/",
        requests.delegation_renew,
        name="delegation_renew",
    ),
    path(
        "delegations/<int:delegation_id>/extend/",
        extensions.delegation_extend,
        name="delegation_extend",
    ),
    path(
        "extensions/<int:extension_id>/approve/",
        extensions.extension_approve,
        name="extension_approve",
    ),
    path(
        "extensions/<int:extension_id>/reject/",
        extensions.extension_reject,
        name="extension_reject",
    ),
    path(
        "delegations/<int:delegation_id>/revoke/",
        delegations.delegation_revoke,
        name="delegation_revoke",
    ),
    path(
        "delegations/<int:delegation_id>/give-up/",
        delegations.delegation_give_up,
        name="delegation_give_up",
    ),
    path("reviews/", reviews.review_list, name="review_list"),
    path("reviews/<int:review_id>/", reviews.review_detail, name="review_detail"),
    path(
        "reviews/<int:review_id>/items/<int:item_id>/decide/",
        reviews.review_decide,
        name="review_decide",
    ),
    path("reviews/<int:review_id>/record.csv", reviews.review_export_csv, name="review_export_csv"),
    path(
        "reviews/<int:review_id>/record.json", reviews.review_export_json, name="review_export_json"
    ),
    path("drift/", drift.drift_list, name="drift_list"),
    path("drift/<int:finding_id>/adopt/", drift.drift_adopt, name="drift_adopt"),
    path("drift/<int:finding_id>/remove/", drift.drift_remove, name="drift_remove"),
    path("drift/<int:finding_id>/republish/", drift.drift_republish, name="drift_republish"),
    path("repositories/", repositories.repository_list, name="repository_list"),
    path("repositories/new/", repositories.repository_register, name="repository_register"),
    path(
        "repositories/<int:repository_id>/",
        repositories.repository_detail,
        name="repository_detail",
    ),
    path(
        "repositories/<int:repository_id>/initialise/",
        repositories.repository_initialise,
        name="repository_initialise",
    ),
    path(
        "repositories/<int:repository_id>/team-access/remove/",
        repositories.team_access_remove,
        name="team_access_remove",
    ),
    *[
        path(f"repositories/<int:repository_id>/{route}/", view, name=name)
        for route, view, name in (
            ("root-key/request", repository_keys.root_key_request, "root_key_request"),
            ("root-key/download", repository_keys.root_key_download, "root_key_download"),
            ("root-key/confirm", repository_keys.root_key_confirm, "root_key_confirm"),
            ("root-key/cancel", repository_keys.root_key_cancel, "root_key_cancel"),
            ("keys/import", repository_keys.key_import, "key_import"),
            ("root/pin", repository_keys.root_pin, "root_pin"),
        )
    ],
    path("tokens/", account.token_list, name="token_list"),
    path("tokens/<int:token_id>/revoke/", account.token_revoke, name="token_revoke"),
    path("sessions/end-all/", account.logout_everywhere, name="logout_everywhere"),
    # The JSON API, its schema and its reference page (assets served from the sidecar package).
    path(f"{API}schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path(
        f"{API}docs/",
        # The split view serves its start-up script as a file: no inline script for the CSP.
        SpectacularSwaggerSplitView.as_view(url_name="delegations:api_schema"),
        name="api_docs",
    ),
    *[
        path(f"{API}{route}", view, name=f"api_{name}")
        for route, view, name in (
            ("repositories/", api_members.repository_list, "repository_list"),
            (
                "repositories/<int:repository_id>/delegations/",
                api_owners.repository_delegations,
                "repository_delegations",
            ),
            ("challenges/", api_members.challenge_create, "challenge_create"),
            ("requests/", api_members.request_list, "request_list"),
            ("requests/<int:request_id>/", api_members.request_detail, "request_detail"),
            (
                "requests/<int:request_id>/withdraw/",
                api_members.request_withdraw,
                "request_withdraw",
            ),
            ("requests/<int:request_id>/dry-run/", api_owners.request_dry_run, "request_dry_run"),
            ("requests/<int:request_id>/approve/", api_owners.request_approve, "request_approve"),
            ("requests/<int:request_id>/reject/", api_owners.request_reject, "request_reject"),
            ("queue/", api_owners.queue, "queue"),
            ("queue/decide/", api_owners.requests_decide, "requests_decide"),
            (
                "delegations/<int:delegation_id>/revocation-preview/",
                api_owners.revocation_preview,
                "revocation_preview",
            ),
            (
                "delegations/<int:delegation_id>/revoke/",
                api_owners.delegation_revoke,
                "delegation_revoke",
            ),
            (
                "delegations/<int:delegation_id>/give-up/",
                api_members.delegation_give_up,
                "delegation_give_up",
            ),
            (
                "delegations/<int:delegation_id>/renew/",
                api_members.delegation_renew,
                "delegation_renew",
            ),
            (
                "delegations/<int:delegation_id>/extensions/",
                api_extensions.delegation_extend,
                "delegation_extend",
            ),
            ("extensions/", api_extensions.extension_queue, "extension_queue"),
            (
                "extensions/<int:extension_id>/approve/",
                api_extensions.extension_approve,
                "extension_approve",
            ),
            (
                "extensions/<int:extension_id>/reject/",
                api_extensions.extension_reject,
                "extension_reject",
            ),
            ("reviews/", api_reviews.review_list, "review_list"),
            ("reviews/<int:review_id>/", api_reviews.review_detail, "review_detail"),
            (
                "reviews/<int:review_id>/items/<int:item_id>/decide/",
                api_reviews.review_decide,
                "review_decide",
            ),
            ("audit/", api_audit.audit_events, "audit_events"),
            ("audit/export.csv", api_audit.audit_export_csv, "audit_export_csv"),
            ("audit/export.json", api_audit.audit_export_json, "audit_export_json"),
        )
    ],
    re_path(r"^api/(?P<path>.*)$", api_errors.api_not_found),
    path("audit/", audit.audit_log_page, name="audit_log"),
    path("audit/export.csv", audit.audit_export_csv, name="audit_export_csv"),
    path("audit/export.json", audit.audit_export_json, name="audit_export_json"),
]

from django.urls import path

from .views import (
    approvals,
    audit,
    delegations,
    drift,
    repositories,
    repository_keys,
    requests,
)

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
        "delegations/<int:delegation_id>/revoke/",
        delegations.delegation_revoke,
        name="delegation_revoke",
    ),
    path(
        "delegations/<int:delegation_id>/give-up/",
        delegations.delegation_give_up,
        name="delegation_give_up",
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
    path("audit/", audit.audit_log_page, name="audit_log"),
    path("audit/export.csv", audit.audit_export_csv, name="audit_export_csv"),
    path("audit/export.json", audit.audit_export_json, name="audit_export_json"),
]

from django.urls import path

from . import approval_views, delegation_views, views
from .audit_views import audit_export_csv, audit_export_json, audit_log_page

app_name = "delegations"

urlpatterns = [
    path("", views.home, name="home"),
    path("requests/", views.request_list, name="request_list"),
    path("requests/new/", views.request_create, name="request_create"),
    path("requests/<int:request_id>/", views.request_detail, name="request_detail"),
    path("requests/<int:request_id>/withdraw/", views.request_withdraw, name="request_withdraw"),
    path(
        "requests/<int:request_id>/approve/",
        approval_views.request_approve,
        name="request_approve",
    ),
    path("requests/<int:request_id>/reject/", approval_views.request_reject, name="request_reject"),
    path("approvals/", approval_views.approval_queue, name="approval_queue"),
    path("approvals/decide/", approval_views.requests_bulk_decide, name="requests_bulk_decide"),
    path("delegations/", views.delegation_list, name="delegation_list"),
    path("delegations/<int:delegation_id>/renew/", views.delegation_renew, name="delegation_renew"),
    path(
        "delegations/<int:delegation_id>/revoke/",
        delegation_views.delegation_revoke,
        name="delegation_revoke",
    ),
    path(
        "delegations/<int:delegation_id>/give-up/",
        delegation_views.delegation_give_up,
        name="delegation_give_up",
    ),
    path("audit/", audit_log_page, name="audit_log"),
    path("audit/export.csv", audit_export_csv, name="audit_export_csv"),
    path("audit/export.json", audit_export_json, name="audit_export_json"),
]

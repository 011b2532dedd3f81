from django.urls import path

from . import views

app_name = "delegations"

urlpatterns = [
    path("", views.home, name="home"),
    path("requests/", views.request_list, name="request_list"),
    path("requests/new/", views.request_create, name="request_create"),
    path("requests/<int:request_id>/", views.request_detail, name="request_detail"),
    path("requests/<int:request_id>/approve/", views.request_approve, name="request_approve"),
    path("requests/<int:request_id>/reject/", views.request_reject, name="request_reject"),
    path("approvals/", views.approval_queue, name="approval_queue"),
    path("delegations/", views.delegation_list, name="delegation_list"),
]

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from delegations.forms import LoginForm
from delegations.views import operations

urlpatterns = [
    path(
        "accounts/login/", auth_views.LoginView.as_view(authentication_form=LoginForm), name="login"
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("healthz", operations.healthz, name="healthz"),
    path("readyz", operations.readyz, name="readyz"),
    path("metrics", operations.metrics_page, name="metrics"),
    path("", include("delegations.urls")),
]

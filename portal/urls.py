from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from delegations.forms import LoginForm

urlpatterns = [
    path(
        "accounts/login/", auth_views.LoginView.as_view(authentication_form=LoginForm), name="login"
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("delegations.urls")),
]

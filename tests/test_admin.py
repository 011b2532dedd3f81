"""The Django admin: every model is there, and pages render for a superuser."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.factories import make_user, submit_request

pytestmark = pytest.mark.django_db


def test_every_model_of_the_app_is_registered():
    models = apps.get_app_config("delegations").get_models()
    assert {m.__name__ for m in models if m not in admin.site._registry} == set()


def test_admin_pages_render_and_never_show_sealed_keys(client, repository):
    submit_request(repository, make_user("bob", teams=("qa",)))
    superuser = get_user_model().objects.create_superuser("root", "root@example.org", "pw")
    client.force_login(superuser)
    for model in apps.get_app_config("delegations").get_models():
        meta = model._meta
        changelist = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        assert changelist.status_code == 200, meta.model_name
        instance = model.objects.first()
        if instance is not None:
            url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[instance.pk])
            page = client.get(url)
            assert page.status_code == 200, meta.model_name
            assert "sealed_private_key" not in page.content.decode()


def test_only_staff_see_the_queue_pages_of_django_rq(client, rq_queue):
    url = reverse("admin:django_rq_home")
    client.force_login(make_user("bob", teams=("qa",)))
    assert client.get(url).status_code == 302  # to the admin login
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.org", "pw"))
    page = client.get(url)
    assert page.status_code == 200
    assert "default" in page.content.decode()

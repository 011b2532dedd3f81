"""API calls are counted per token in Redis, as in production (the other tests count in
memory): over the limit a token gets 429 with Retry-After, and other tokens are not held."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from delegations import services
from tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def test_a_token_over_its_limit_gets_429_and_others_do_not(redis_url, settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    }
    settings.PORTAL_API_RATE = "3/minute"
    cache.clear()
    user = make_user("pipeline", teams=("qa",))
    clients = []
    for name in ("first", "second"):
        _, secret = services.api_token_create(user=user, name=name, expires_days=1)
        clients.append(Client(headers={"Authorization": f"Bearer {secret}"}))
    first, second = clients
    url = reverse("delegations:api_request_list")

    assert [first.get(url).status_code for _ in range(3)] == [200, 200, 200]
    held = first.get(url)

    assert held.status_code == 429
    assert held.json()["code"] == "throttled"
    assert 0 < int(held["Retry-After"]) <= 60
    assert second.get(url).status_code == 200  # counted per token, not per person
    assert any(key for key in cache._cache.get_client().keys("*throttle_api_token-*"))

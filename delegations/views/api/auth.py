"""Who calls the API: a personal token (`Authorization: Bearer dpt_…`), or a signed-in browser
session (the reference page's "try it out"); and how often they may."""

from __future__ import annotations

import logging
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, User
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from redis.exceptions import RedisError
from rest_framework import authentication, exceptions, throttling
from rest_framework.request import Request

from ... import services
from ...models import ApiToken

logger = logging.getLogger(__name__)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode("latin-1").lower() != self.keyword.lower():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send one token: Authorization: Bearer <token>.")
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("That is not an API token.") from None
        token = services.api_token_use(secret=secret)
        if token is None:
            raise exceptions.AuthenticationFailed(
                "The token is unknown, expired or revoked, or its account is disabled."
            )
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        # Makes an unauthenticated call a 401 (with this challenge) rather than a 403.
        return f'{self.keyword} realm="api"'


class PerTokenThrottle(throttling.SimpleRateThrottle):
    """`PORTAL_API_RATE` calls per token; a browser session counts per person, and the
    unauthenticated per address."""

    scope = "api"

    def get_rate(self) -> str:
        # Read at each call rather than once at import, so a changed setting takes effect.
        return str(settings.PORTAL_API_RATE)

    def get_cache_key(self, request: Request, view: Any) -> str:
        if isinstance(request.auth, ApiToken):
            ident = f"token-{request.auth.pk}"
        elif request.user is not None and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"address-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except RedisError as error:
            # Counting is a guard, not a gate: the API stays up while Redis is away.
            logger.warning("API rate limit not counted, the cache is unavailable: %s", error)
            return True


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """The token scheme in the OpenAPI schema (registered by being defined)."""

    target_class = BearerTokenAuthentication
    name = "bearerToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (dpt_…) from the API tokens page or "
            "`manage.py api_token_create`.",
        }


def user_of(request: Request) -> User:
    """The caller of a view behind the default permission (IsAuthenticated): someone."""
    return cast(User, request.user)

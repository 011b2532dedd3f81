"""Personal API tokens (issue 16): made and revoked by their owner on a page or by an
administrator's command, looked up by the API on every call.

A token is a long random secret shown once; only its SHA-256 is stored, so a copy of the
database gives no usable token. It acts as its user: the API checks the user's rights, as the
directory says now, on every call, exactly as the pages do.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from .. import clock
from ..audit.chain import audit_record
from ..exceptions import InvalidInput
from ..models import ApiToken, AuditAction

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# Recognisable in logs and by secret scanners.
TOKEN_PREFIX = "dpt_"  # noqa: S105 - a prefix, not a secret
MAX_EXPIRY_DAYS = 366
MAX_NAME_CHARACTERS = 100  # ApiToken.name's column
# last_used_at is written at most this often per token, so a busy pipeline does not turn every
# read into a write.
_LAST_USED_PRECISION = timedelta(minutes=1)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@sensitive_variables("secret")
def api_token_create(
    *,
    user: User,
    name: str,
    expires_days: int | None,
    acting_user: User | None = None,
    now: datetime | None = None,
) -> tuple[ApiToken, str]:
    """A new token for `user` and its secret, which is never readable again."""
    now = now or clock.now()
    name = name.strip()
    if not name:
        raise InvalidInput("Name the token after what will use it.", field="name")
    if len(name) > MAX_NAME_CHARACTERS:
        raise InvalidInput("The name is too long (100 characters at most).", field="name")
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        raise InvalidInput(
            f"A token lasts 1 to {MAX_EXPIRY_DAYS} days, or until it is revoked.",
            field="expires_days",
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            secret_hash=secret_hash(secret),
            prefix=secret[: len(TOKEN_PREFIX) + 6],
            created_at=now,
            expires_at=now + timedelta(days=expires_days) if expires_days else None,
        )
        audit_record(
            action=AuditAction.API_TOKEN_CREATED,
            actor=acting_user or user,
            now=now,
            details={
                "token": token.pk,
                "user": user.get_username(),
                "name": name,
                "prefix": token.prefix,
                "expires_at": token.expires_at.isoformat() if token.expires_at else None,
            },
        )
    return token, secret


def api_token_revoke(*, token_id: int, acting_user: User, now: datetime | None = None) -> ApiToken:
    """Revoke one of `acting_user`'s own tokens; the next call with it is refused."""
    now = now or clock.now()
    with transaction.atomic():
        token = (
            ApiToken.objects.select_for_update()
            .filter(pk=token_id, user=acting_user, revoked_at__isnull=True)
            .first()
        )
        if token is None:
            raise InvalidInput("You have no such token, or it is revoked already.")
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=now)
        audit_record(
            action=AuditAction.API_TOKEN_REVOKED,
            actor=acting_user,
            now=now,
            details={"token": token.pk, "name": token.name, "prefix": token.prefix},
        )
    token.refresh_from_db()
    return token


@sensitive_variables("secret")
def api_token_use(*, secret: str, now: datetime | None = None) -> ApiToken | None:
    """The usable token whose secret this is, its use noted; None for anything else (unknown,
    expired, revoked, or its user disabled), which the API answers with 401."""
    now = now or clock.now()
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(secret_hash=secret_hash(secret)).first()
    if token is None or not token.usable_at(now) or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at >= _LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token

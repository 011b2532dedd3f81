"""UCP's account API: the public keys of a user's client bundles (`GET /accounts/{user}/
publicKeys`), read as an account of the portal's. UCP signs API calls in with a session token
from `POST /auth/login`; the token is kept for the client's life and fetched again once when UCP
refuses it (it expired)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
from cryptography.hazmat.primitives import serialization

from .errors import DtrAuthenticationFailed, DtrRejected
from .http import ApiSession, object_of

logger = logging.getLogger(__name__)

# Keys asked for per page; UCP's default is 10.
PAGE_SIZE = 100
# A user has a handful of bundles: a page chain longer than this is a loop.
MAX_PAGES = 100


class UcpClient:
    def __init__(
        self,
        base_url: str,
        *,
        username: str,
        password: str,
        timeout: float = 10.0,
        verify: bool | str = True,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        self._credentials = {"username": username, "password": password}
        self._token: str | None = None
        self._http = ApiSession(
            base_url,
            product="UCP",
            username=username,
            credentials_hint="check PORTAL_UCP_USERNAME and PORTAL_UCP_PASSWORD",
            rights_hint="it needs to read other accounts' public keys",
            timeout=timeout,
            verify=verify,
            pool=pool,
        )

    def bundle_keys(self, account: str, *, complete: bool = False) -> list[bytes]:
        """The SubjectPublicKeyInfo (DER) of every public key UCP lists for `account`: the
        keys of the client bundles the user made, every page read. DtrNotFound when UCP knows
        no such account. An entry that is not a PEM public key is skipped, or with `complete`
        (for a caller that acts on a key's absence) fails the read with DtrRejected."""
        path = f"/accounts/{quote(account, safe='')}/publicKeys"
        action = f"reading the client bundle keys of {account} in UCP"
        keys: list[bytes] = []
        start = ""
        for _ in range(MAX_PAGES):
            query = {"limit": PAGE_SIZE, **({"start": start} if start else {})}
            page = object_of(
                self._signed_in_call("GET", f"{path}?{urlencode(query)}", action), action, "UCP"
            )
            entries = page.get("accountPublicKeys") or []
            if not isinstance(entries, list):
                raise DtrRejected(f"{action}: UCP's answer is not in the documented shape")
            for entry in entries:
                key = _spki(entry, account)
                if key is not None:
                    keys.append(key)
                elif complete:
                    raise DtrRejected(f"{action}: UCP lists a key that is not a PEM public key")
            following = page.get("nextPageStart") or ""
            if not isinstance(following, str) or not following or following == start:
                return keys
            start = following
        raise DtrRejected(f"{action}: UCP listed more than {MAX_PAGES} pages of keys")

    def _signed_in_call(self, method: str, path: str, action: str) -> Any:
        for attempt in range(2):
            if self._token is None:
                self._token = self._log_in()
            try:
                return self._http.call(method, path, action, authorization=f"Bearer {self._token}")
            except DtrAuthenticationFailed:
                self._token = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _log_in(self) -> str:
        action = "signing in to UCP"
        answer = object_of(
            self._http.call(
                "POST", "/auth/login", action, authorization=None, body=self._credentials
            ),
            action,
            "UCP",
        )
        token = answer.get("auth_token")
        if not isinstance(token, str) or not token:
            raise DtrRejected(f"{action}: UCP's answer holds no auth_token")
        return token


def _spki(entry: object, account: str) -> bytes | None:
    """The key of one listed entry; None (logged) for one that is not a PEM public key."""
    pem = entry.get("publicKey") if isinstance(entry, dict) else None
    try:
        key = serialization.load_pem_public_key(str(pem).encode())
    except (ValueError, TypeError, UnicodeError):
        logger.warning("UCP lists a public key of %s that does not parse; ignored", account)
        return None
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )

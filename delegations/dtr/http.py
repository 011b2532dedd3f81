"""HTTP to DTR's and UCP's APIs: one request at a time, JSON in and out, every answer sorted into
the package's transient and permanent errors with what to fix. Connection pools and the TLS
diagnosis are the Notary client's (`delegations.notary.pools`, `.tls`): the same rules for the
same platform's servers."""

from __future__ import annotations

import json
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError

from ..notary.pools import UnusableBundle, pool_for
from ..notary.tls import certificate_failure
from .errors import (
    DtrAccessDenied,
    DtrAuthenticationFailed,
    DtrError,
    DtrNotFound,
    DtrRejected,
    DtrTLSFailure,
    DtrUnreachable,
)

CA_BUNDLE_SETTING = "PORTAL_DTR_CA_BUNDLE"
# The answers used here are a repository, a page of grants or of keys: a few KiB.
MAX_ANSWER_BYTES = 1024 * 1024
# Statuses that say "not now": timeouts and rate limits, besides every 5xx.
_TRY_LATER = {408, 425, 429}


class ApiSession:
    """Requests to one API (`product`, DTR or UCP) as one account; `credentials_hint` and
    `rights_hint` say what to fix when the account is refused or lacks rights."""

    def __init__(
        self,
        base_url: str,
        *,
        product: str,
        username: str,
        credentials_hint: str,
        rights_hint: str,
        timeout: float,
        verify: bool | str,
        pool: urllib3.PoolManager | None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.product = product
        self.username = username
        self.credentials_hint = credentials_hint
        self.rights_hint = rights_hint
        self.timeout = timeout
        self.verify = verify
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._pool = pool

    def call(
        self, method: str, path: str, action: str, *, authorization: str | None, body: object = None
    ) -> Any:
        """Send one request and return its JSON answer (None for an empty one), or raise what
        the status says."""
        headers = {"Accept": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            if self._pool is None:
                self._pool = pool_for(self.base_url, self.verify)
            response = self._pool.request(
                method,
                self.base_url + path,
                body=payload,
                headers=headers,
                timeout=self._timeout,
                retries=False,
                redirect=False,
                preload_content=False,
            )
            try:
                data = response.read(MAX_ANSWER_BYTES + 1)
            finally:
                response.release_conn()
        except (HTTPError, UnusableBundle, OSError) as error:
            raise self._unreachable(error, action) from None
        if len(data) > MAX_ANSWER_BYTES:
            raise DtrRejected(
                f"{action}: {self.product}'s answer is larger than {MAX_ANSWER_BYTES} bytes"
            )
        status = response.status
        if 200 <= status < 300:
            return json_of(data, action, self.product) if data else None
        raise self._refusal(status, data, action)

    def _refusal(self, status: int, data: bytes, action: str) -> DtrError:
        code, reason = _api_error(data)
        said = (
            f"{self.product} answered {status}"
            + (f" {code}" if code else "")
            + (f": {reason}" if reason else "")
        )
        if status >= 500 or status in _TRY_LATER:
            return DtrUnreachable(f"{action}: {said}; trying again later")
        if status == 401:
            return DtrAuthenticationFailed(
                f"{action}: {self.product} refused the credentials of the service account "
                f"{self.username!r}; {self.credentials_hint}"
            )
        if status == 403:
            return DtrAccessDenied(
                f"{action}: the service account {self.username!r} lacks the rights for it in "
                f"{self.product} ({said}); {self.rights_hint}"
            )
        if status == 404:
            return DtrNotFound(f"{action}: {said}", code=code)
        return DtrRejected(f"{action}: {said}", code=code)

    def _unreachable(self, error: Exception, action: str) -> DtrError:
        trusted = (
            f"the CA bundle {self.verify}"
            if isinstance(self.verify, str)
            else "the system trust store"
        )
        if isinstance(error, UnusableBundle):
            return DtrTLSFailure(
                f"{action}: {trusted} cannot be used ({error}); check {CA_BUNDLE_SETTING}"
            )
        failure = certificate_failure(error)
        if failure is not None:
            return DtrTLSFailure(
                f"{action}: the TLS certificate of {self.base_url} does not verify against "
                f"{trusted} ({failure}); set {CA_BUNDLE_SETTING} to the CA bundle that issued it"
            )
        if isinstance(error, TimeoutError) and not isinstance(error, NewConnectionError):
            return DtrUnreachable(
                f"{action}: {self.base_url} did not answer within {self.timeout}s"
            )
        return DtrUnreachable(f"{action}: cannot reach {self.base_url}: {error}")


def json_of(data: bytes, action: str, product: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise DtrRejected(f"{action}: {product}'s answer is not JSON") from None


def object_of(answer: Any, action: str, product: str) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise DtrRejected(f"{action}: {product}'s answer is not the documented object")
    return answer


def _api_error(data: bytes) -> tuple[str, str]:
    """The first error code and message, from `{"errors": [{"code", "message", "detail"}]}`."""
    try:
        first = json.loads(data)["errors"][0]
        code, message = str(first.get("code", "")), str(first.get("message", ""))
        detail = first.get("detail")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
        return "", ""
    return code, f"{message} ({detail})" if detail else message

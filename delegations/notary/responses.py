"""What a Notary server's answers mean: statuses and notary's error envelopes turned into the
package's errors, connection failures sorted into configuration and passing trouble, and bodies
read under a cap. Used by `transport`; like it, nothing from urllib3 escapes."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from urllib3 import BaseHTTPResponse
from urllib3.exceptions import HTTPError, NewConnectionError, SSLError, TimeoutError

from .errors import (
    AuthenticationRequired,
    MetadataRejected,
    NotaryError,
    ServerFailure,
    SnapshotKeyRequired,
    TLSVerificationFailed,
    UnexpectedResponse,
    VersionConflict,
)
from .pools import UnusableBundle
from .tls import certificate_failure

CA_BUNDLE_SETTING = "PORTAL_NOTARY_CA_BUNDLE"
# Statuses that say "not now" rather than "never": timeouts and rate limits.
TRY_LATER = {408, 425, 429}
_CHUNK = 64 * 1024


def connection_error(
    error: Exception,
    url: str,
    transient: type[NotaryError],
    *,
    verify: bool | str,
    timeout: float,
) -> NotaryError:
    """What it means that `url` could not be reached: a certificate that does not verify is
    configuration (permanent); anything else may pass (`transient`)."""
    bundle = verify if isinstance(verify, str) else None
    trusted = f"the CA bundle {bundle}" if bundle else "the system trust store"
    host = urlsplit(url).netloc
    if isinstance(error, UnusableBundle):
        return TLSVerificationFailed(
            f"{trusted} cannot verify {host}: {error}; check {CA_BUNDLE_SETTING}"
        )
    # A refused connection is a NewConnectionError, which urllib3 also makes a TimeoutError.
    if isinstance(error, TimeoutError) and not isinstance(error, NewConnectionError):
        return transient(f"{url} did not answer within {timeout}s")
    failure = certificate_failure(error)
    if failure is not None:
        return TLSVerificationFailed(
            f"the TLS certificate of {host} does not verify against {trusted} ({failure}); "
            f"set {CA_BUNDLE_SETTING} to the CA bundle that issued it"
        )
    if isinstance(error, SSLError):
        return transient(f"TLS with {url} failed: {error}")
    return transient(f"cannot reach {url}: {error}")


def raise_for_status(gun: str, response: BaseHTTPResponse, action: str) -> None:
    """Nothing for a 200; otherwise the error that says what the server's status means."""
    status = response.status
    if status == 200:
        return
    if status >= 500:
        raise ServerFailure(f"{action} on {gun}: the server answered {status}")
    if status in (401, 403):
        raise AuthenticationRequired(f"{action} on {gun}: the server refused access ({status})")
    if status == 400:
        raise _rejection(response, action, gun)
    if status in TRY_LATER:
        raise ServerFailure(f"{action} on {gun}: the server answered {status}; try later")
    raise UnexpectedResponse(
        f"{action} on {gun}: the server answered {status}; check the repository's Notary URL"
    )


class TooLarge(Exception):
    """A body longer than the reader's limit."""


# notary's error envelopes are a few hundred bytes.
MAX_ERROR_BYTES = 64 * 1024


def read_capped(response: BaseHTTPResponse, limit: int) -> bytes:
    """The body of a streamed response; TooLarge past `limit` bytes."""
    body = bytearray()
    for chunk in response.stream(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise TooLarge
    return bytes(body)


def _rejection(response: BaseHTTPResponse, action: str, gun: str) -> NotaryError:
    """Turn notary's errcode envelope into the error that says what went wrong."""
    try:
        body = read_capped(response, MAX_ERROR_BYTES)
    except (TooLarge, HTTPError):
        body = b""
    try:
        first = json.loads(body)["errors"][0]
        server_code, detail = str(first.get("code", "")), first.get("detail")
        message = str(first.get("message", ""))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
        server_code, detail, message = "", None, body[:200].decode("utf-8", "replace")
    if server_code == "VERSION":
        return VersionConflict(f"{action} on {gun}: a newer version was published meanwhile")
    reason = message
    if isinstance(detail, dict) and isinstance(detail.get("Error"), dict):
        inner = detail["Error"]
        if inner.get("Missing") == "snapshot":
            return SnapshotKeyRequired(
                f"{gun} has a client-managed snapshot and the portal does not hold its key; "
                "rotate the snapshot key to the server (notary key rotate GUN snapshot -r)"
            )
        reason = f"{detail.get('Name', '')}: {inner.get('Msg', message)}"
    return MetadataRejected(
        f"the Notary server rejected {action} on {gun}: {server_code} {reason}".strip(),
        server_code=server_code,
        detail=detail,
    )

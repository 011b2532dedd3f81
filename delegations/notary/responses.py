"""What a Notary server's answers mean: statuses and notary's error envelopes turned into the
package's errors, connection failures sorted into configuration and passing trouble, and bodies
read under a cap. Used by `transport`; like it, nothing from `requests` escapes."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import requests

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
from .tls import bundle_failure, certificate_failure

CA_BUNDLE_SETTING = "PORTAL_NOTARY_CA_BUNDLE"
# Statuses that say "not now" rather than "never": timeouts and rate limits.
TRY_LATER = {408, 425, 429}
_CHUNK = 64 * 1024


def connection_error(
    error: OSError,
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
    if isinstance(error, requests.Timeout):
        return transient(f"{url} did not answer within {timeout}s")
    host = urlsplit(url).netloc
    failure = certificate_failure(error)
    if failure is not None:
        return TLSVerificationFailed(
            f"the TLS certificate of {host} does not verify against {trusted} ({failure}); "
            f"set {CA_BUNDLE_SETTING} to the CA bundle that issued it"
        )
    # requests checks the bundle path before connecting, raising a bare OSError.
    unusable = bundle_failure(error) if isinstance(error, requests.RequestException) else error
    if unusable is not None:
        return TLSVerificationFailed(
            f"{trusted} cannot verify {host}: {unusable}; check {CA_BUNDLE_SETTING}"
        )
    if isinstance(error, requests.exceptions.SSLError):
        return transient(f"TLS with {url} failed: {error}")
    return transient(f"cannot reach {url}: {error}")


def raise_for_status(gun: str, response: requests.Response, action: str) -> None:
    """Nothing for a 200; otherwise the error that says what the server's status means."""
    status = response.status_code
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


def read_capped(response: requests.Response, limit: int) -> bytes:
    """The body of a streamed response; TooLarge past `limit` bytes."""
    body = bytearray()
    for chunk in response.iter_content(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise TooLarge
    return bytes(body)


def _rejection(response: requests.Response, action: str, gun: str) -> NotaryError:
    """Turn notary's errcode envelope into the error that says what went wrong."""
    try:
        body = read_capped(response, MAX_ERROR_BYTES)
    except (TooLarge, requests.RequestException):
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

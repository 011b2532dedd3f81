"""HTTP to one repository's trust data on a Notary server, with errors mapped to ours.

Everything `requests` can raise stays in this module (style habit 5).
"""

from __future__ import annotations

import json
from urllib.parse import quote

import requests

from .errors import (
    AuthenticationRequired,
    InvalidMetadata,
    MetadataNotFound,
    MetadataRejected,
    NotaryError,
    ServerFailure,
    ServerUnreachable,
    SnapshotKeyRequired,
    UnexpectedResponse,
    VersionConflict,
)

# The Go client caps the timestamp at 1 MiB; other files can be large with many targets.
MAX_METADATA_BYTES = 100 * 1024 * 1024
_CHUNK = 64 * 1024
# Statuses that say "not now" rather than "never": timeouts and rate limits.
_TRY_LATER = {408, 425, 429}


class Transport:
    def __init__(
        self,
        server_url: str,
        gun: str,
        *,
        timeout: float = 10.0,
        verify: bool | str = True,
        session: requests.Session | None = None,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.gun = gun
        self.timeout = timeout
        self.verify = verify
        self.base_url = f"{self.server_url}/v2/{quote(gun, safe='/')}/_trust/tuf/"
        self.session = session or requests.Session()
        # requests reads proxy settings from the environment on every request, a seventh of a
        # delegation's time; read them once for this server instead.
        self.session.proxies.update(requests.utils.get_environ_proxies(self.server_url))
        self.session.trust_env = False

    def get(self, path: str, *, limit: int = MAX_METADATA_BYTES) -> bytes:
        """GET a file under the repository's trust URL; MetadataNotFound on 404."""
        response = self._request("GET", self.base_url + path, stream=True)
        with response:
            if response.status_code == 404:
                raise MetadataNotFound(f"{self.gun}: {path} does not exist on the server")
            self._raise_for_status(response, f"GET {path}")
            body = bytearray()
            try:
                for chunk in response.iter_content(_CHUNK):
                    body += chunk
                    if len(body) > limit:
                        raise InvalidMetadata(f"{path} is larger than {limit} bytes")
            except requests.RequestException as error:
                # The body streams after the status line, so it can break on its own.
                raise ServerUnreachable(
                    f"reading {path} from {self.server_url} failed: {error}"
                ) from None
            return bytes(body)

    def publish(self, files: dict[str, bytes]) -> None:
        """POST role files in one atomic update, as the Go client lays out the multipart body."""
        parts = [
            ("files", (role, data, "application/octet-stream")) for role, data in files.items()
        ]
        # A redirect would turn the POST into a GET and lose the upload.
        response = self._request("POST", self.base_url, files=parts, allow_redirects=False)
        with response:
            self._raise_for_status(response, "publish")

    def _request(self, method: str, url: str, **kwargs: object) -> requests.Response:
        try:
            return self.session.request(
                method, url, timeout=self.timeout, verify=self.verify, **kwargs
            )
        except requests.Timeout:
            raise ServerUnreachable(
                f"{self.server_url} did not answer within {self.timeout}s"
            ) from None
        except requests.exceptions.SSLError as error:
            raise ServerUnreachable(f"TLS with {self.server_url} failed: {error}") from None
        except requests.RequestException as error:
            raise ServerUnreachable(f"cannot reach {self.server_url}: {error}") from None

    def _raise_for_status(self, response: requests.Response, action: str) -> None:
        status = response.status_code
        if status == 200:
            return
        if status >= 500:
            raise ServerFailure(f"{action} on {self.gun}: the server answered {status}")
        if status in (401, 403):
            raise AuthenticationRequired(f"{action} on {self.gun}: the server answered {status}")
        if status == 400:
            raise _rejection(response, action, self.gun)
        if status in _TRY_LATER:
            raise ServerFailure(f"{action} on {self.gun}: the server answered {status}; try later")
        raise UnexpectedResponse(
            f"{action} on {self.gun}: the server answered {status}; check the repository's "
            "Notary URL"
        )


def _rejection(response: requests.Response, action: str, gun: str) -> NotaryError:
    """Turn notary's errcode envelope into the error that says what went wrong."""
    try:
        first = json.loads(response.content)["errors"][0]
        server_code, detail = str(first.get("code", "")), first.get("detail")
        message = str(first.get("message", ""))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        server_code, detail, message = "", None, response.text[:200]
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

"""DTR's repository and team-access API (`/api/v0/repositories/...`), as a service account.

HTTP Basic with the account's name and an access token (DTR takes a token wherever it takes the
password), TLS verified against a CA bundle, a timeout on every request, and every answer sorted
into the package's transient and permanent errors. Connection pools and the TLS diagnosis are
the Notary client's (`delegations.notary.pools`, `.tls`): the same rules for the same servers.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlencode

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

logger = logging.getLogger(__name__)

CA_BUNDLE_SETTING = "PORTAL_DTR_CA_BUNDLE"
# DTR's answers here are a repository or a page of grants: a few KiB.
MAX_ANSWER_BYTES = 1024 * 1024
# Grants asked for per page; DTR's default is 10.
PAGE_SIZE = 100
# Statuses that say "not now": timeouts and rate limits, besides every 5xx.
_TRY_LATER = {408, 425, 429}


class AccessLevel(StrEnum):
    """DTR's access levels on a repository, weakest first."""

    READ_ONLY = "read-only"
    READ_WRITE = "read-write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(AccessLevel).index(self)


@dataclass(frozen=True)
class TeamAccessChange:
    """What making sure of a team's access found and did: `before` is None for a team that had
    no access; `changed` is False when it already had enough."""

    team: str
    before: AccessLevel | None
    after: AccessLevel

    @property
    def changed(self) -> bool:
        return self.before != self.after


class DtrClient:
    def __init__(
        self,
        base_url: str,
        *,
        username: str,
        token: str,
        timeout: float = 10.0,
        verify: bool | str = True,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._authorization = "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()
        self.timeout = timeout
        self.verify = verify
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._pool = pool

    # -- repositories ------------------------------------------------------------------------------

    def repository_get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The repository as DTR describes it, or None when it does not exist (or the service
        account may not see it: DTR answers both with 404)."""
        try:
            action = f"reading {namespace}/{name}"
            return _object(self._call("GET", _repository_path(namespace, name), action), action)
        except DtrNotFound:
            return None

    def repository_create(
        self, namespace: str, name: str, *, private: bool = True, description: str = ""
    ) -> dict[str, Any]:
        """Create `namespace/name`; DtrRejected (code REPOSITORY_EXISTS) if it exists."""
        body = {
            "name": name,
            "shortDescription": description,
            "longDescription": "",
            "visibility": "private" if private else "public",
            "scanOnPush": False,
            "immutableTags": False,
            "enableManifestLists": False,
            "tagLimit": 0,
        }
        path = f"/api/v0/repositories/{quote(namespace, safe='')}"
        action = f"creating {namespace}/{name}"
        answer = _object(self._call("POST", path, action, body=body), action)
        logger.info("created the repository %s/%s in DTR", namespace, name)
        return answer

    # -- team access -------------------------------------------------------------------------------

    def team_access(self, namespace: str, name: str) -> dict[str, AccessLevel]:
        """Every team's access level on the repository, all pages read."""
        levels: dict[str, AccessLevel] = {}
        start = ""
        path = _repository_path(namespace, name) + "/teamAccess"
        action = f"reading the team access of {namespace}/{name}"
        while True:
            query = {"pageSize": PAGE_SIZE, **({"pageStart": start} if start else {})}
            page = self._call("GET", f"{path}?{urlencode(query)}", action)
            grants = _grants(page, action)
            new = [(team_id, team, level) for team_id, team, level in grants if team not in levels]
            for _, team, level in new:
                levels[team] = level
            # The page after starts at the last team seen (DTR's pageStart is inclusive, as the
            # stand-in reads the reference): stop when a page brings nothing new.
            if len(grants) < PAGE_SIZE or not new:
                return levels
            start = new[-1][0]

    def team_access_ensure(
        self, namespace: str, name: str, team: str, *, at_least: AccessLevel
    ) -> TeamAccessChange:
        """Give `team` at least `at_least` on the repository; a stronger grant (admin, say) is
        left as it is, and a grant already strong enough is not written again."""
        before = self.team_access(namespace, name).get(team)
        if before is not None and before.rank >= at_least.rank:
            return TeamAccessChange(team, before, before)
        path = f"{_repository_path(namespace, name)}/teamAccess/{quote(team, safe='')}"
        action = f"giving team {team} {at_least} on {namespace}/{name}"
        self._call("PUT", path, action, body={"accessLevel": str(at_least)})
        logger.info("team %s now has %s on %s/%s in DTR", team, at_least, namespace, name)
        return TeamAccessChange(team, before, at_least)

    def team_access_remove(self, namespace: str, name: str, team: str) -> None:
        """Take the team's access away; nothing happens for a team without access."""
        path = f"{_repository_path(namespace, name)}/teamAccess/{quote(team, safe='')}"
        self._call("DELETE", path, f"removing team {team}'s access to {namespace}/{name}")
        logger.info("team %s no longer has access to %s/%s in DTR", team, namespace, name)

    # -- HTTP --------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, action: str, *, body: object = None) -> Any:
        """Send one request and return its JSON answer (None for an empty one), or raise what
        DTR's status says."""
        headers = {"Authorization": self._authorization, "Accept": "application/json"}
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
            raise DtrRejected(f"{action}: DTR's answer is larger than {MAX_ANSWER_BYTES} bytes")
        status = response.status
        if 200 <= status < 300:
            return _json(data, action) if data else None
        raise self._refusal(status, data, action)

    def _refusal(self, status: int, data: bytes, action: str) -> DtrError:
        code, reason = _dtr_error(data)
        said = (
            f"DTR answered {status}"
            + (f" {code}" if code else "")
            + (f": {reason}" if reason else "")
        )
        if status >= 500 or status in _TRY_LATER:
            return DtrUnreachable(f"{action}: {said}; trying again later")
        if status == 401:
            return DtrAuthenticationFailed(
                f"{action}: DTR refused the credentials of the service account {self.username!r}; "
                "check PORTAL_DTR_USERNAME and PORTAL_DTR_TOKEN (an access token of that account)"
            )
        if status == 403:
            return DtrAccessDenied(
                f"{action}: the service account {self.username!r} lacks the rights for it in "
                f"DTR ({said}); give it admin on the repository or its organisation's namespace"
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


def _repository_path(namespace: str, name: str) -> str:
    return f"/api/v0/repositories/{quote(namespace, safe='')}/{quote(name, safe='')}"


def _json(data: bytes, action: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise DtrRejected(f"{action}: DTR's answer is not JSON") from None


def _object(answer: Any, action: str) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise DtrRejected(f"{action}: DTR's answer is not the documented object")
    return answer


def _dtr_error(data: bytes) -> tuple[str, str]:
    """DTR's first error code and message, from `{"errors": [{"code", "message", "detail"}]}`."""
    try:
        first = json.loads(data)["errors"][0]
        code, message = str(first.get("code", "")), str(first.get("message", ""))
        detail = first.get("detail")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
        return "", ""
    return code, f"{message} ({detail})" if detail else message


def _grants(page: Any, action: str) -> list[tuple[str, str, AccessLevel]]:
    """(team ID, team name, level) of each grant on a teamAccess page."""
    try:
        return [
            (
                str(entry["team"]["id"]),
                str(entry["team"]["name"]),
                AccessLevel(entry["accessLevel"]),
            )
            for entry in page["teamAccessList"]
        ]
    except (KeyError, TypeError, ValueError):
        raise DtrRejected(
            f"{action}: DTR's team access list is not in the documented shape"
        ) from None

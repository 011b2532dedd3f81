"""DTR's repository and team-access API (`/api/v0/repositories/...`), as a service account.

HTTP Basic with the account's name and an access token (DTR takes a token wherever it takes the
password); TLS, timeouts and the errors are `http.ApiSession`'s.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlencode

import urllib3

from .errors import DtrNotFound, DtrRejected
from .http import ApiSession, object_of

logger = logging.getLogger(__name__)

# Grants asked for per page; DTR's default is 10.
PAGE_SIZE = 100


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
        self._authorization = "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()
        self._http = ApiSession(
            base_url,
            product="DTR",
            username=username,
            credentials_hint="check PORTAL_DTR_USERNAME and PORTAL_DTR_TOKEN (an access token of "
            "that account)",
            rights_hint="give it admin on the repository or its organisation's namespace",
            timeout=timeout,
            verify=verify,
            pool=pool,
        )

    # -- repositories ------------------------------------------------------------------------------

    def repository_get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The repository as DTR describes it, or None when it does not exist (or the service
        account may not see it: DTR answers both with 404)."""
        try:
            action = f"reading {namespace}/{name}"
            answer = self._call("GET", _repository_path(namespace, name), action)
            return object_of(answer, action, "DTR")
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
        answer = object_of(self._call("POST", path, action, body=body), action, "DTR")
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
            # stand-in reads the reference). Only a page that brings nothing new ends the
            # reading: DTR may serve fewer than asked, and a grant missed on a later page (an
            # admin one) would be overwritten.
            if not new:
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

    def _call(self, method: str, path: str, action: str, *, body: object = None) -> Any:
        return self._http.call(method, path, action, authorization=self._authorization, body=body)


def _repository_path(namespace: str, name: str) -> str:
    return f"/api/v0/repositories/{quote(namespace, safe='')}/{quote(name, safe='')}"


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

"""A stand-in for DTR's HTTP API, for the tests and `make run`: DTR itself cannot run here.

It implements only the documented endpoints the portal calls, and answers them as DTR's API
reference (versions 2.2 to 2.7) says DTR does, refusals included, so the client's error paths
meet real answers:

- `POST /api/v0/repositories/{namespace}`: 201 and the repository; 400 `REPOSITORY_EXISTS`,
  400 `INVALID_JSON` or `INVALID_PARAMETERS`, 404 `NO_SUCH_ACCOUNT`, 403 `NOT_AUTHORIZED` for an
  account without admin on the namespace.
- `GET /api/v0/repositories/{namespace}/{name}`: 200, or 404 `NO_SUCH_REPOSITORY` (also to an
  account that may not see it).
- `GET .../teamAccess` (`pageStart`, `pageSize`, default 10), `PUT .../teamAccess/{team}` with
  `{"accessLevel": "read-only" | "read-write" | "admin"}` (200 with the grant), `DELETE
  .../teamAccess/{team}` (204, also for a team without access): for an account with admin on
  the repository; 400 for a repository a user owns (teams belong to organisations), 404
  `NO_SUCH_TEAM` for a team not in the repository's organisation.
- Errors as DTR writes them: `{"errors": [{"code": ..., "message": ..., "detail": ...}]}`;
  401 `NOT_AUTHENTICATED` without valid HTTP Basic credentials (a password or an access token).

It stands in for UCP's account API too (same accounts, one server): `POST /auth/login` with
`{"username", "password"}` answers `{"auth_token"}` (401 otherwise), and `GET
/accounts/{user}/publicKeys` (`start`, `limit`, default 10) answers `{"accountPublicKeys":
[{"id", "accountID", "publicKey", "label", "certificates"}], "nextPageStart"}` to a signed-in
account (`Authorization: Bearer <auth_token>`), 404 `NO_SUCH_ACCOUNT` for an unknown user.

Where the reference is silent the stand-in says so in a comment. Every request it answers is
recorded (method, path, query, JSON body, account), so tests assert on exactly what DTR would
have received; `fail_with` answers everything with one status instead (an outage, say).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from stack.processes import LOOPBACK

ACCESS_LEVELS = ("read-only", "read-write", "admin")
DEFAULT_PAGE_SIZE = 10


@dataclass
class Account:
    name: str
    secrets: set[str]  # the password and any access tokens: DTR takes either in Basic auth
    system_admin: bool = False


@dataclass
class Organisation:
    name: str
    teams: dict[str, str] = field(default_factory=dict)  # name -> id
    # Accounts with admin on the whole namespace: they create repositories and grant access.
    namespace_admins: set[str] = field(default_factory=set)


@dataclass
class StoredRepository:
    id: str
    namespace: str
    name: str
    visibility: str
    short_description: str = ""
    long_description: str = ""
    team_access: dict[str, str] = field(default_factory=dict)  # team name -> level
    admins: set[str] = field(default_factory=set)  # accounts with admin on this repository


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    account: str | None
    status: int


class DtrError(Exception):
    def __init__(self, status: int, code: str, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail


class DtrStandIn:
    """The registry's accounts, organisations and repositories, and the HTTP server on them."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.organisations: dict[str, Organisation] = {}
        self.repositories: dict[tuple[str, str], StoredRepository] = {}
        self.recorded: list[Recorded] = []
        self.fail_with: int | None = None
        # UCP: each account's client-bundle public keys, and the session tokens handed out.
        self.public_keys: dict[str, list[dict[str, Any]]] = {}
        self.sessions: dict[str, str] = {}
        self._lock = threading.Lock()
        self._ids = 0
        self.url = ""

    # -- setting the registry up, as its administrators would --------------------------------------

    def account_add(self, name: str, secret: str, *, system_admin: bool = False) -> None:
        self.accounts[name] = Account(name, {secret}, system_admin)

    def organisation_add(
        self, name: str, *, teams: tuple[str, ...] = (), admins: tuple[str, ...] = ()
    ) -> None:
        organisation = self.organisations.setdefault(name, Organisation(name))
        for team in teams:
            organisation.teams.setdefault(team, self._next_id())
        organisation.namespace_admins.update(admins)

    def repository_add(self, namespace: str, name: str, *, admins: tuple[str, ...] = ()) -> None:
        self.repositories[(namespace, name)] = StoredRepository(
            self._next_id(), namespace, name, "private", admins=set(admins)
        )

    def public_key_add(self, account: str, public_key_pem: str, *, label: str = "") -> None:
        """A client bundle the user made in UCP: UCP keeps its public key (the id is a hash of
        the key, as UCP's reference says)."""
        key_id = hashlib.sha256(public_key_pem.encode()).hexdigest()
        self.public_keys.setdefault(account, []).append(
            {
                "id": key_id,
                "accountID": account,
                "publicKey": public_key_pem,
                "label": label,
                "certificates": [],
            }
        )

    def team_access(self, namespace: str, name: str) -> dict[str, str]:
        return dict(self.repositories[(namespace, name)].team_access)

    def _next_id(self) -> str:
        self._ids += 1
        return f"{self._ids:08d}"

    # -- answering -------------------------------------------------------------------------------

    def answer(
        self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes
    ) -> tuple[int, Any]:
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        segments = [unquote(part) for part in parts.path.strip("/").split("/")]
        body: Any = None
        with self._lock:
            account = self._authenticated(headers.get("Authorization", ""))
            try:
                if raw_body:
                    try:
                        body = json.loads(raw_body)
                    except ValueError:
                        raise DtrError(400, "INVALID_JSON", "Unable to parse JSON") from None
                if self.fail_with is not None:
                    status, payload = self.fail_with, {"errors": []}
                elif method == "POST" and parts.path == "/auth/login":
                    status, payload = self._log_in(body)
                elif account is None:
                    raise DtrError(401, "NOT_AUTHENTICATED", "The client is not authenticated.")
                else:
                    status, payload = self._route(method, segments, query, body, account)
            except DtrError as error:
                status = error.status
                entry = {"code": error.code, "message": error.message, "detail": error.detail}
                payload = {"errors": [entry]}
            self.recorded.append(
                Recorded(
                    method,
                    parts.path,
                    query,
                    body,
                    account.name if account else None,
                    status,
                )
            )
            return status, payload

    def _authenticated(self, header: str) -> Account | None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() == "bearer":
            return self.accounts.get(self.sessions.get(encoded, ""))
        if scheme.lower() != "basic":
            return None
        try:
            name, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        account = self.accounts.get(name)
        return account if account is not None and secret in account.secrets else None

    def _route(
        self,
        method: str,
        segments: list[str],
        query: dict[str, list[str]],
        body: Any,
        account: Account,
    ) -> tuple[int, Any]:
        if len(segments) == 3 and segments[0] == "accounts" and segments[2] == "publicKeys":
            if method != "GET":
                raise DtrError(405, "NOT_ALLOWED", "Method not allowed.")
            return 200, self._public_keys_page(segments[1], query)
        if segments[:3] != ["api", "v0", "repositories"]:
            raise DtrError(404, "NOT_FOUND", "Not found.")
        rest = segments[3:]
        if len(rest) == 1 and method == "POST":
            return self._repository_create(rest[0], body, account)
        if len(rest) == 2 and method == "GET":
            return 200, self._describe(self._visible(rest[0], rest[1], account))
        if len(rest) == 3 and rest[2] == "teamAccess" and method == "GET":
            repository = self._administered(rest[0], rest[1], account)
            return 200, self._team_access_page(repository, query)
        if len(rest) == 4 and rest[2] == "teamAccess" and method in ("PUT", "DELETE"):
            repository = self._administered(rest[0], rest[1], account)
            if method == "PUT":
                return self._team_access_set(repository, rest[3], body)
            return self._team_access_remove(repository, rest[3])
        raise DtrError(405, "NOT_ALLOWED", "Method not allowed.")

    def _log_in(self, body: Any) -> tuple[int, Any]:
        credentials = body if isinstance(body, dict) else {}
        account = self.accounts.get(str(credentials.get("username", "")))
        if account is None or credentials.get("password") not in account.secrets:
            raise DtrError(401, "UNAUTHORIZED", "Invalid username or password.")
        token = secrets.token_urlsafe(24)
        self.sessions[token] = account.name
        return 200, {"auth_token": token}

    def _public_keys_page(self, user: str, query: dict[str, list[str]]) -> dict[str, Any]:
        if user not in self.accounts:
            raise DtrError(404, "NO_SUCH_ACCOUNT", "An account with the given name does not exist.")
        try:
            limit = int(query.get("limit", [str(DEFAULT_PAGE_SIZE)])[0])
        except ValueError:
            raise DtrError(400, "INVALID_PARAMETERS", "Invalid parameters.", "limit") from None
        start = query.get("start", [""])[0]
        listed = sorted(
            (key for key in self.public_keys.get(user, []) if key["id"] >= start),
            key=lambda key: key["id"],
        )
        page, rest = listed[: max(limit, 1)], listed[max(limit, 1) :]
        return {"accountPublicKeys": page, "nextPageStart": rest[0]["id"] if rest else ""}

    def _repository_create(self, namespace: str, body: Any, account: Account) -> tuple[int, Any]:
        organisation = self.organisations.get(namespace)
        if organisation is None and namespace not in self.accounts:
            raise DtrError(404, "NO_SUCH_ACCOUNT", "An account with the given name does not exist.")
        may = account.system_admin or account.name == namespace
        may = may or (organisation is not None and account.name in organisation.namespace_admins)
        if not may:
            raise DtrError(403, "NOT_AUTHORIZED", "The client is not authorized.")
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            raise DtrError(400, "INVALID_PARAMETERS", "Invalid parameters.", "name is required")
        visibility = body.get("visibility", "public")  # the default is not documented
        if visibility not in ("public", "private"):
            raise DtrError(400, "INVALID_REPOSITORY_VISIBILITY", "Invalid repository visibility.")
        if (namespace, body["name"]) in self.repositories:
            raise DtrError(
                400, "REPOSITORY_EXISTS", "A repository with the same name already exists."
            )
        repository = StoredRepository(
            self._next_id(),
            namespace,
            body["name"],
            visibility,
            str(body.get("shortDescription", "")),
            str(body.get("longDescription", "")),
        )
        self.repositories[(namespace, repository.name)] = repository
        return 201, self._describe(repository)

    def _visible(self, namespace: str, name: str, account: Account) -> StoredRepository:
        repository = self.repositories.get((namespace, name))
        if repository is None or not self._may_see(repository, account):
            raise DtrError(
                404, "NO_SUCH_REPOSITORY", "A repository with the given name does not exist."
            )
        return repository

    def _administered(self, namespace: str, name: str, account: Account) -> StoredRepository:
        repository = self._visible(namespace, name, account)
        if not self._is_admin(repository, account):
            raise DtrError(403, "NOT_AUTHORIZED", "The client is not authorized.")
        if repository.namespace not in self.organisations:
            # The reference documents the 400 but names no code for it.
            raise DtrError(
                400, "INVALID_PARAMETERS", "The repository is not owned by an organization."
            )
        return repository

    def _may_see(self, repository: StoredRepository, account: Account) -> bool:
        return repository.visibility == "public" or self._is_admin(repository, account)

    def _is_admin(self, repository: StoredRepository, account: Account) -> bool:
        organisation = self.organisations.get(repository.namespace)
        return (
            account.system_admin
            or account.name == repository.namespace
            or account.name in repository.admins
            or (organisation is not None and account.name in organisation.namespace_admins)
        )

    def _team_access_page(
        self, repository: StoredRepository, query: dict[str, list[str]]
    ) -> dict[str, Any]:
        # DTR 2.7 pages with pageStart and pageSize (default 10); what pageStart holds is not
        # documented: here a team ID, the page starting at it (inclusive), in ID order.
        try:
            size = int(query.get("pageSize", [str(DEFAULT_PAGE_SIZE)])[0])
        except ValueError:
            raise DtrError(400, "INVALID_PARAMETERS", "Invalid parameters.", "pageSize") from None
        start = query.get("pageStart", [""])[0]
        organisation = self.organisations[repository.namespace]
        grants = sorted(
            (organisation.teams[team], team, level)
            for team, level in repository.team_access.items()
        )
        page = [grant for grant in grants if grant[0] >= start][: max(size, 1)]
        return {
            "repository": self._describe(repository),
            "teamAccessList": [
                {"accessLevel": level, "team": self._team(organisation, team)}
                for _, team, level in page
            ],
        }

    def _team_access_set(
        self, repository: StoredRepository, team: str, body: Any
    ) -> tuple[int, Any]:
        organisation = self.organisations[repository.namespace]
        if team not in organisation.teams:
            raise DtrError(
                404,
                "NO_SUCH_TEAM",
                "A team with the given name does not exist in the organization.",
                f'Team name: "{team}".',
            )
        level = body.get("accessLevel") if isinstance(body, dict) else None
        if level not in ACCESS_LEVELS:
            raise DtrError(400, "INVALID_PARAMETERS", "Invalid parameters.", "accessLevel")
        repository.team_access[team] = level
        return 200, {
            "accessLevel": level,
            "team": self._team(organisation, team),
            "repository": self._describe(repository),
        }

    def _team_access_remove(self, repository: StoredRepository, team: str) -> tuple[int, Any]:
        if team not in self.organisations[repository.namespace].teams:
            raise DtrError(
                404,
                "NO_SUCH_TEAM",
                "A team with the given name does not exist in the organization.",
                f'Team name: "{team}".',
            )
        repository.team_access.pop(team, None)
        return 204, None

    def _team(self, organisation: Organisation, team: str) -> dict[str, str]:
        return {
            "id": organisation.teams[team],
            "orgID": organisation.name,
            "name": team,
            "description": "",
        }

    def _describe(self, repository: StoredRepository) -> dict[str, Any]:
        return {
            "id": repository.id,
            "namespace": repository.namespace,
            "namespaceType": "organization"
            if repository.namespace in self.organisations
            else "user",
            "name": repository.name,
            "shortDescription": repository.short_description,
            "longDescription": repository.long_description,
            "visibility": repository.visibility,
            "scanOnPush": False,
            "immutableTags": False,
            "enableManifestLists": False,
            "pulls": 0,
            "pushes": 0,
            "tagLimit": 0,
        }


@contextmanager
def dtr_standin_service(standin: DtrStandIn, *, port: int = 0) -> Iterator[DtrStandIn]:
    """Serve `standin` over plain HTTP on loopback until the block ends; sets its `url`."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, payload = standin.answer(self.command, self.path, self.headers, raw)
            body = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="DTR"')
            if body:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    standin.url = f"http://{LOOPBACK}:{server.server_address[1]}"
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()


# -- `make run`'s DTR ------------------------------------------------------------------------------

DEMO_ACCOUNT = "svc-portal"


def demo_registry(token: str) -> DtrStandIn:
    """`make run`'s DTR: the organisation dev (teams it-ops, qa and dev) owning dev/nginx, and
    the portal's account, with admin on the dev namespace, signing in with `token`."""
    registry = DtrStandIn()
    registry.account_add(DEMO_ACCOUNT, token)
    registry.organisation_add("dev", teams=("it-ops", "qa", "dev"), admins=(DEMO_ACCOUNT,))
    registry.repository_add("dev", "nginx")
    return registry


def main() -> None:
    """python -m stack.dtr_standin --port P --token-file F: serve the demo registry until
    stopped; the token is read from a file so that it never shows in a process list."""
    import argparse
    import signal
    from pathlib import Path

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-file", type=Path, required=True)
    arguments = parser.parse_args()
    token = arguments.token_file.read_text().strip()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with dtr_standin_service(demo_registry(token), port=arguments.port) as running:
        print(f"DTR stand-in at {running.url}", flush=True)
        with suppress(KeyboardInterrupt):
            stopped.wait()


if __name__ == "__main__":
    main()

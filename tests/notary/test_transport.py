"""How the transport classifies what a server (or something in front of it) answers.

A small HTTP server in this process misbehaves on purpose; what notary-server itself answers
is covered against the real server in test_client.py.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from delegations.notary import (
    InvalidMetadata,
    PermanentNotaryError,
    TransientNotaryError,
    Transport,
)
from delegations.notary.auth import Credentials, TokenCache
from delegations.notary.errors import (
    AuthenticationRequired,
    InvalidTokenResponse,
    ServerUnreachable,
    UnexpectedResponse,
)

BEHAVIOURS = {}


class Misbehaving(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        BEHAVIOURS[urlsplit(self.path).path.rsplit("/", 1)[-1]](self)

    def do_POST(self) -> None:
        BEHAVIOURS["POST"](self)

    def log_message(self, *args: object) -> None:
        pass


def truncated_body(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b'{"signed":')  # and the connection closes


def status(code: int):
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(code)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


def redirect(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(302)
    handler.send_header("Location", "/elsewhere")
    handler.send_header("Content-Length", "0")
    handler.end_headers()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (truncated_body, ServerUnreachable),
        (status(429), TransientNotaryError),
        (status(408), TransientNotaryError),
        (status(503), TransientNotaryError),
        (status(418), UnexpectedResponse),
        (status(401), PermanentNotaryError),
    ],
    ids=["truncated", "429", "408", "503", "418", "401"],
)
def test_reads_fail_with_the_right_kind_of_error(server, behaviour, expected):
    BEHAVIOURS["root.json"] = behaviour
    with pytest.raises(expected):
        Transport(server, "dtr.example.org/a/b", timeout=5).get("root.json")


def test_publish_is_never_redirected_into_a_get(server):
    BEHAVIOURS["POST"] = redirect
    BEHAVIOURS["elsewhere"] = status(200)
    with pytest.raises(UnexpectedResponse):
        Transport(server, "dtr.example.org/a/b", timeout=5).publish({"targets": b"{}"})


def test_a_read_follows_a_redirect(server):
    BEHAVIOURS["root.json"] = redirect
    BEHAVIOURS["elsewhere"] = lambda handler: send(handler, 200, b"moved here")
    assert Transport(server, "dtr.example.org/a/b", timeout=5).get("root.json") == b"moved here"


def test_publish_to_a_wrong_url_is_permanent(server):
    BEHAVIOURS["POST"] = status(404)
    with pytest.raises(PermanentNotaryError):
        Transport(server, "dtr.example.org/a/b", timeout=5).publish({"targets": b"{}"})


# -- authentication: a server and token service in one, whose tokens can be revoked ---------------

GUN = "dtr.example.org/a/b"
ACCOUNT = Credentials("svc-portal", "generated-in-the-test")


def send(handler: BaseHTTPRequestHandler, code: int, body: bytes = b"", **headers: str) -> None:
    handler.send_response(code)
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class TokenAuth:
    """Answers 401 with a Bearer challenge to any request without one of its valid tokens."""

    def __init__(self) -> None:
        self.valid: set[str] = set()
        self.token_queries: list[dict[str, list[str]]] = []
        self.challenged = 0
        self.realm_host = "127.0.0.1"
        self.scope = f"repository:{GUN}:pull"

    def protected(self, body: bytes) -> Callable[[BaseHTTPRequestHandler], None]:
        def answer(handler: BaseHTTPRequestHandler) -> None:
            sent = handler.headers.get("Authorization", "")
            if sent.removeprefix("Bearer ") in self.valid:
                send(handler, 200, body)
                return
            self.challenged += 1
            realm = f"http://{self.realm_host}:{handler.server.server_address[1]}/token"
            challenge = f'Bearer realm="{realm}",service="dtr",scope="{self.scope}"'
            if sent:
                challenge += ',error="invalid_token"'
            send(handler, 401, b'{"errors":[]}', WWW_Authenticate=challenge)

        return answer

    def token(self, handler: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlsplit(handler.path).query)
        self.token_queries.append(query)
        expected = base64.b64encode(f"{ACCOUNT.username}:{ACCOUNT.password}".encode()).decode()
        if handler.headers.get("Authorization") != f"Basic {expected}":
            send(handler, 401)
            return
        token = f"token-{len(self.token_queries)}"
        self.valid.add(token)
        send(handler, 200, json.dumps({"token": token, "expires_in": 300}).encode())


@pytest.fixture
def token_auth() -> TokenAuth:
    auth = TokenAuth()
    BEHAVIOURS["token"] = auth.token
    BEHAVIOURS["root.json"] = auth.protected(b'{"signed": {}}')
    return auth


def transport(server: str, credentials: Credentials | None = ACCOUNT) -> Transport:
    return Transport(server, GUN, timeout=5, credentials=credentials, tokens=TokenCache())


def test_a_revoked_token_is_replaced_once_and_the_request_repeated(server, token_auth, caplog):
    caplog.set_level(logging.DEBUG)
    reader = transport(server)
    assert reader.get("root.json") == b'{"signed": {}}'
    assert token_auth.token_queries == [
        {"account": [ACCOUNT.username], "scope": [f"repository:{GUN}:pull"], "service": ["dtr"]}
    ]
    reader.get("root.json")
    assert (len(token_auth.token_queries), token_auth.challenged) == (1, 1)

    token_auth.valid.clear()
    assert reader.get("root.json") == b'{"signed": {}}'
    assert (len(token_auth.token_queries), token_auth.challenged) == (2, 2)
    assert "token-1" not in caplog.text
    assert ACCOUNT.password not in caplog.text


def test_a_size_limited_stream_still_applies_to_the_repeated_request(server, token_auth):
    BEHAVIOURS["root.json"] = token_auth.protected(b"x" * 5000)
    reader = transport(server)
    with pytest.raises(InvalidMetadata):
        reader.get("root.json", limit=1000)
    assert transport(server).get("root.json", limit=5000) == b"x" * 5000


def test_refused_credentials_at_the_token_service_are_permanent(server, token_auth):
    with pytest.raises(AuthenticationRequired, match="refused the credentials") as raised:
        transport(server, Credentials(ACCOUNT.username, "wrong-password")).get("root.json")
    assert "wrong-password" not in str(raised.value)


@pytest.mark.parametrize(
    "body",
    [
        b'{"token": 42}',
        b'{"token": "abc\\r\\nX-Injected: 1"}',  # would split the header, and be quoted
        b"[" * 100_000 + b"]" * 100_000,
        b'{"token": "abc", "expires_in": "soon"}',
        b'{"token": "abc", "issued_at": "9999-12-31T23:59:59-23:59"}',
    ],
)
def test_a_token_response_without_a_usable_token_is_permanent(server, token_auth, body):
    BEHAVIOURS["token"] = lambda handler: send(handler, 200, body)
    with pytest.raises(InvalidTokenResponse) as raised:
        transport(server).get("root.json")
    assert "abc" not in str(raised.value)


def test_an_absurd_token_lifetime_is_capped_not_an_error(server, token_auth):
    def long_lived(handler: BaseHTTPRequestHandler) -> None:
        token_auth.valid.add("forever")
        send(handler, 200, json.dumps({"token": "forever", "expires_in": 10**14}).encode())

    BEHAVIOURS["token"] = long_lived
    assert transport(server).get("root.json") == b'{"signed": {}}'


@pytest.mark.parametrize(
    ("realm_host", "scope", "problem"),
    [
        ("127.0.0.2", f"repository:{GUN}:pull", "is not on 127.0.0.1"),
        ("127.0.0.1", "repository:dtr.example.org/other/repo:push,pull", "not this repository's"),
        ("127.0.0.1", f"repository:{GUN}:pull registry:catalog:*", "not this repository's"),
    ],
)
def test_credentials_go_only_to_the_servers_host_for_this_repository(
    server, token_auth, realm_host, scope, problem
):
    token_auth.realm_host, token_auth.scope = realm_host, scope
    with pytest.raises(AuthenticationRequired, match=problem):
        transport(server).get("root.json")
    assert token_auth.token_queries == []


def test_a_basic_challenge_gets_the_credentials_and_then_gets_them_up_front(server):
    expected = base64.b64encode(f"{ACCOUNT.username}:{ACCOUNT.password}".encode()).decode()
    challenged = []

    def basic_only(handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("Authorization") == f"Basic {expected}":
            send(handler, 200, b"{}")
        else:
            challenged.append(handler.path)
            send(handler, 401, WWW_Authenticate='Basic realm="notary"')

    BEHAVIOURS["root.json"] = basic_only
    reader = transport(server)
    assert reader.get("root.json") == b"{}"
    assert reader.get("root.json") == b"{}"
    assert len(challenged) == 1
    with pytest.raises(AuthenticationRequired, match="PORTAL_NOTARY_USERNAME"):
        transport(server, credentials=None).get("root.json")


def test_the_proxy_the_environment_names_is_used_unless_no_proxy_excludes_the_host(
    server, monkeypatch
):
    seen: list[str] = []

    def through_proxy(handler: BaseHTTPRequestHandler) -> None:
        seen.append(handler.path)
        send(handler, 200, b"{}")

    BEHAVIOURS["root.json"] = through_proxy
    for name in ("http_proxy", "no_proxy", "NO_PROXY"):  # lower case would win
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server)
    # A name that resolves nowhere: only the proxy can answer for it.
    behind = "http://notary.invalid:4443"
    assert Transport(behind, GUN, timeout=5).get("root.json") == b"{}"
    assert seen == [f"{behind}/v2/{GUN}/_trust/tuf/root.json"]

    monkeypatch.setenv("NO_PROXY", "notary.invalid")
    with pytest.raises(ServerUnreachable, match=re.escape(f"cannot reach {behind}")):
        Transport(behind, GUN, timeout=5).get("root.json")
    assert len(seen) == 1

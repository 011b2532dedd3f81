"""How the transport classifies what a server (or something in front of it) answers.

A small HTTP server in this process misbehaves on purpose; what notary-server itself answers
is covered against the real server in test_client.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from delegations.notary import PermanentNotaryError, TransientNotaryError, Transport
from delegations.notary.errors import ServerUnreachable, UnexpectedResponse

BEHAVIOURS = {}


class Misbehaving(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        BEHAVIOURS[self.path.rsplit("/", 1)[-1]](self)

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


def test_publish_to_a_wrong_url_is_permanent(server):
    BEHAVIOURS["POST"] = status(404)
    with pytest.raises(PermanentNotaryError):
        Transport(server, "dtr.example.org/a/b", timeout=5).publish({"targets": b"{}"})

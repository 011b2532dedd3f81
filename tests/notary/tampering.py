"""A reverse proxy in front of notary-server that can change what clients get: a malicious or
broken server, or someone in the middle, as far as the client can tell."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from stack.processes import LOOPBACK

# (path, body) -> the body to serve instead, or None to serve the server's answer.
Tamper = Callable[[str, bytes], bytes | None]


class TamperingProxy:
    def __init__(self, upstream_url: str) -> None:
        self.upstream = urlsplit(upstream_url)
        self.tamper: Tamper = lambda path, body: None
        self.posts = 0
        # A status to answer every request with instead of forwarding it (an outage, or a
        # proxy that lost the upload), or None.
        self.refuse_with: int | None = None
        self.seen: dict[str, bytes] = {}  # the last genuine body per path, for replays
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if proxy.refuse_with is not None:
                    self.answer(proxy.refuse_with, "text/plain", b"unavailable")
                    return
                status, content_type, body = proxy.forward("GET", self.path, b"", {})
                if status == 200:
                    proxy.seen.setdefault(self.path, body)
                    replaced = proxy.tamper(self.path, body)
                    body = body if replaced is None else replaced
                self.answer(status, content_type, body)

            def do_POST(self) -> None:
                proxy.posts += 1
                length = int(self.headers.get("Content-Length", "0"))
                if proxy.refuse_with is not None:
                    self.rfile.read(length)
                    self.answer(proxy.refuse_with, "text/plain", b"unavailable")
                    return
                headers = {"Content-Type": self.headers.get("Content-Type", "")}
                status, content_type, body = proxy.forward(
                    "POST", self.path, self.rfile.read(length), headers
                )
                self.answer(status, content_type, body)

            def answer(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def forward(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, bytes]:
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheader("Content-Type", ""), response.read()
        finally:
            connection.close()

    def path_of(self, gun: str, file: str) -> str:
        return f"/v2/{gun}/_trust/tuf/{file}"

    def __enter__(self) -> TamperingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def stop(self) -> None:
        """Stop listening: clients meet a refused connection, as with a stopped server."""
        self.__exit__()

    def start_again(self) -> None:
        """Listen again on the same port."""
        handler = self.server.RequestHandlerClass
        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(self.server.server_address, handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()


def flip_byte_inside(body: bytes, marker: bytes) -> bytes:
    """Change one character of the value after `marker`, keeping the JSON well formed."""
    at = body.index(marker) + len(marker) + 5
    replacement = b"B" if body[at : at + 1] != b"B" else b"C"
    return body[:at] + replacement + body[at + 1 :]

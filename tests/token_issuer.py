"""A stand-in for DTR's token service, for notary-server's `auth: {type: token}` (protocol §8).

It checks HTTP Basic credentials against accounts made at run time and signs ES256 JWTs with a
key made at run time; notary-server trusts the self-signed certificate written to
`bundle_path` and finds the key by its libtrust fingerprint in `kid`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from delegations.notary.auth import Credentials
from stack.processes import LOOPBACK
from tests.pki import make_ca

# notary-server accepts tokens up to this long past their `exp` (§8.2).
SERVER_LEEWAY_SECONDS = 60


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """sha256 of the DER SubjectPublicKeyInfo, first 30 bytes, base32, in 12 groups of 4."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(spki).digest()[:30]).decode("ascii").rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


@dataclass
class Account:
    password: str
    actions: frozenset[str]


class TokenIssuer:
    """Threaded HTTP token service on a free loopback port.

    What tests turn: `expires_in` (what the answer claims), `stale_tokens` (how many of the next
    tokens are signed already past the server's leeway, while claiming a normal lifetime),
    `anonymous_actions` (None refuses anonymous requests), `fail_with` (a status to answer).
    `token_requests` counts every request for a token.
    """

    def __init__(self, directory: Path, *, service: str, issuer: str = "portal test issuer"):
        self.service = service
        self.issuer = issuer
        signer = make_ca("test token signer")
        self._key = signer.key
        self.key_id = libtrust_key_id(signer.key.public_key())
        directory.mkdir(parents=True, exist_ok=True)
        self.bundle_path = directory / "token-signer.pem"
        self.bundle_path.write_bytes(signer.cert_pem)
        self.accounts: dict[str, Account] = {}
        self.anonymous_actions: frozenset[str] | None = frozenset({"pull"})
        self.expires_in = 300
        self.stale_tokens = 0
        self.fail_with: int | None = None
        self.token_requests = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((LOOPBACK, 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def realm(self) -> str:
        return f"http://{LOOPBACK}:{self._httpd.server_address[1]}/token"

    def auth_config(self) -> dict:
        """notary-server's `auth` section trusting this issuer."""
        return {
            "type": "token",
            "options": {
                "realm": self.realm,
                "service": self.service,
                "issuer": self.issuer,
                "rootcertbundle": str(self.bundle_path),
            },
        }

    def add_account(self, *actions: str) -> Credentials:
        """A new account allowed `actions` on every repository, with a fresh random password."""
        credentials = Credentials(f"svc-{secrets.token_hex(4)}", secrets.token_urlsafe(24))
        self.accounts[credentials.username] = Account(credentials.password, frozenset(actions))
        return credentials

    def reset(self) -> None:
        with self._lock:
            self.anonymous_actions = frozenset({"pull"})
            self.expires_in = 300
            self.stale_tokens = 0
            self.fail_with = None
            self.token_requests = 0

    def start(self) -> TokenIssuer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> TokenIssuer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- issuing -------------------------------------------------------------------------------

    def answer(self, query: dict[str, list[str]], authorization: str) -> tuple[int, dict]:
        """(status, JSON body) for one token request."""
        with self._lock:
            self.token_requests += 1
            if self.fail_with is not None:
                return self.fail_with, {"errors": [{"code": "UNAVAILABLE"}]}
            subject, allowed = self._authenticate(authorization)
            if allowed is None:
                return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}
            stale = self.stale_tokens > 0
            self.stale_tokens -= stale
            expires_in = self.expires_in
        if query.get("service", [""])[0] != self.service:
            return 400, {"errors": [{"code": "UNSUPPORTED", "message": "unknown service"}]}
        access = [
            self._grant(scope, allowed)
            for value in query.get("scope", [])
            for scope in value.split()
        ]
        token = self._sign(subject, [grant for grant in access if grant], expires_in, stale)
        issued_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return 200, {"token": token, "expires_in": expires_in, "issued_at": issued_at}

    def _authenticate(self, authorization: str) -> tuple[str, frozenset[str] | None]:
        if not authorization:
            return "", self.anonymous_actions
        scheme, _, encoded = authorization.partition(" ")
        try:
            username, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return "", None
        account = self.accounts.get(username)
        if scheme.lower() != "basic" or account is None:
            return username, None
        if not secrets.compare_digest(account.password, password):
            return username, None
        return username, account.actions

    @staticmethod
    def _grant(scope: str, allowed: frozenset[str]) -> dict | None:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        granted = sorted(set(actions.split(",")) & allowed)
        if kind != "repository" or not name or not granted:
            return None
        return {"type": kind, "name": name, "actions": granted}

    def _sign(self, subject: str, access: list[dict], expires_in: int, stale: bool) -> str:
        now = int(time.time())
        expires = now - 2 * SERVER_LEEWAY_SECONDS if stale else now + expires_in
        header = {"alg": "ES256", "typ": "JWT", "kid": self.key_id}
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": expires,
            "nbf": min(now, expires) - 1,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        signing_input = ".".join(
            b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        r, s = decode_dss_signature(
            self._key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        )
        return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/token":
                    status, body = 404, {"errors": [{"code": "NOT_FOUND"}]}
                else:
                    query = parse_qs(parts.query)
                    status, body = issuer.answer(query, self.headers.get("Authorization", ""))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass  # quiet: the test output is where failures are read

        return Handler

"""Who the portal is to a Notary server: service-account credentials, challenges, tokens.

DTR (and notary-server with `auth.type = token`) answers 401 with a `WWW-Authenticate: Bearer
realm=…,service=…,scope=…` challenge; the client gets a short-lived token for that scope from the
realm and repeats the request with it (protocol note §8). This module holds the parts without
HTTP: parsing challenges and token responses, and the cache that lets a stream of operations
reuse one token per scope. `transport.py` does the requests.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .errors import InvalidTokenResponse

# The Go client's floor for `expires_in`, and its default when the field is missing.
MINIMUM_TOKEN_LIFETIME = timedelta(seconds=60)
# A token is renewed this long before it expires, so it does not expire on the way.
RENEW_BEFORE_EXPIRY = timedelta(seconds=10)

_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # an RFC 7230 token
_TOKEN = re.compile(_TCHARS)
_PARAM = re.compile(
    rf'(?P<name>{_TCHARS})[ \t]*=[ \t]*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<token>{_TCHARS}))'
)
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*(?=[ \t]*(?:,|$))")
_ESCAPED = re.compile(r"\\(.)")


@dataclass(frozen=True)
class Credentials:
    """The service account the portal signs in to DTR's token service with."""

    username: str
    password: str = field(repr=False)


class MalformedChallenge(ValueError):
    """A `WWW-Authenticate` header that does not follow RFC 7235."""


@dataclass(frozen=True)
class Challenge:
    """One challenge of a `WWW-Authenticate` header; scheme and parameter names lower-cased."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def error(self) -> str:
        return self.params.get("error", "")


def parse_challenges(header: str) -> list[Challenge]:
    """Every challenge in a header (several challenges, or several headers joined by commas).

    Commas separate both challenges and parameters, so a comma only ends a challenge when what
    follows is a scheme rather than `name=value`; inside a quoted value it is just a character.
    """
    challenges: list[Challenge] = []
    position = _skip(header, 0, " \t,")
    while position < len(header):
        scheme = _TOKEN.match(header, position)
        if scheme is None:
            raise MalformedChallenge(f"expected an authentication scheme at {header[position:]!r}")
        params: dict[str, str] = {}
        position = _skip(header, scheme.end(), " \t")
        if (token68 := _TOKEN68.match(header, position)) is not None:
            position = token68.end()  # a bare credential hint (`Negotiate abc==`): unused here
        while (param := _PARAM.match(header, position)) is not None:
            quoted = param.group("quoted")
            value = param.group("token") if quoted is None else _ESCAPED.sub(r"\1", quoted)
            params[param.group("name").lower()] = value
            position = _skip(header, param.end(), " \t")
            if position >= len(header) or header[position] != ",":
                break
            following = _skip(header, position, " \t,")
            if not _PARAM.match(header, following):
                break  # the comma ends this challenge
            position = following
        position = _skip(header, position, " \t")
        if position < len(header) and header[position] != ",":
            raise MalformedChallenge(f"cannot parse {header[position:]!r}")
        challenges.append(Challenge(scheme.group().lower(), params))
        position = _skip(header, position, " \t,")
    return challenges


def _skip(text: str, position: int, characters: str) -> int:
    while position < len(text) and text[position] in characters:
        position += 1
    return position


@dataclass(frozen=True)
class TokenScope:
    """What a token is for: the realm that issues it, the service and the scope it names."""

    realm: str
    service: str
    scope: str

    @classmethod
    def from_challenge(cls, challenge: Challenge) -> TokenScope:
        realm = challenge.params.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise MalformedChallenge("the Bearer challenge names no http(s) realm")
        return cls(realm, challenge.params.get("service", ""), challenge.params.get("scope", ""))


def requested_actions(challenge: Challenge) -> list[str]:
    """["push", "pull"] of `scope="repository:<gun>:push,pull"`: what the server asked for."""
    return [
        action
        for scope in challenge.params.get("scope", "").split()
        if ":" in scope
        for action in scope.rsplit(":", 1)[1].split(",")
        if action
    ]


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    expires_at: datetime

    def usable(self, now: datetime) -> bool:
        return now < self.expires_at - RENEW_BEFORE_EXPIRY


def token_from_response(body: bytes, *, realm: str, now: datetime) -> Token:
    """The token in a token service's answer, with when to stop using it.

    The body may hold the token, so no message repeats it.
    """
    malformed = InvalidTokenResponse(
        f"the token service at {realm} answered with something that is not a token (expected "
        "JSON with `token` or `access_token`, and optionally `expires_in` and `issued_at`)"
    )
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise malformed from None
    if not isinstance(data, dict):
        raise malformed
    # When both are present, the OAuth 2 name wins.
    value = data.get("access_token") or data.get("token")
    expires_in = data.get("expires_in", 0)
    # A token goes into a header: anything but RFC 6750's token characters could split it, and
    # the error that follows would quote the header, token and all.
    if not isinstance(value, str) or not _BEARER_TOKEN.fullmatch(value):
        raise malformed
    if not _is_int(expires_in):
        raise malformed
    lifetime = timedelta(seconds=min(max(expires_in, 0), MAXIMUM_TOKEN_SECONDS))
    lifetime = max(lifetime, MINIMUM_TOKEN_LIFETIME)
    issued_at = now
    if data.get("issued_at") is not None:
        try:
            issued_at = datetime.fromisoformat(data["issued_at"])
            if issued_at.tzinfo is not None:
                issued_at.astimezone(UTC)  # an offset at the edge of time does not convert
        except (TypeError, ValueError, OverflowError):
            raise malformed from None
        if issued_at.tzinfo is None:
            issued_at = issued_at.replace(tzinfo=UTC)
        # A token service clock ahead of ours must not stretch the token's life here.
        issued_at = min(issued_at, now)
    return Token(value, issued_at + lifetime)


_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# Longer-lived tokens are used for a day at most; a token service's typo should not make a
# refused token stick.
MAXIMUM_TOKEN_SECONDS = 24 * 60 * 60


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def utc_now() -> datetime:
    return datetime.now(UTC)


# The requests that share a challenge: notary asks for `pull` on metadata reads, `push,pull` on
# reads of the server's keys and on publish (§6.1), so those are the classes worth telling apart.
RequestClass = tuple[str, str, str, str]


class TokenCache:
    """Tokens per account and scope, and the challenge each class of request met last.

    Transports are made per operation (`trust.client_for`), so the cache outlives them: one
    module-level instance is shared by every transport of the process unless a test passes its
    own. Knowing the challenge of a request class lets a transport send the right token up front
    instead of paying a 401 round trip first.
    """

    def __init__(self, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[tuple[Credentials | None, TokenScope], Token] = {}
        self._challenges: dict[RequestClass, Challenge] = {}

    def token(self, credentials: Credentials | None, scope: TokenScope) -> Token | None:
        with self._lock:
            token = self._tokens.get((credentials, scope))
        return token if token is not None and token.usable(self.clock()) else None

    def store(self, credentials: Credentials | None, scope: TokenScope, token: Token) -> None:
        now = self.clock()
        with self._lock:
            for key in [key for key, held in self._tokens.items() if not held.usable(now)]:
                del self._tokens[key]
            self._tokens[(credentials, scope)] = token

    def drop(self, credentials: Credentials | None, scope: TokenScope, token: Token) -> None:
        """Forget a token the server refused, unless another thread has replaced it already."""
        with self._lock:
            if self._tokens.get((credentials, scope)) == token:
                del self._tokens[(credentials, scope)]

    def challenge(self, request_class: RequestClass) -> Challenge | None:
        with self._lock:
            return self._challenges.get(request_class)

    def remember(self, request_class: RequestClass, challenge: Challenge) -> None:
        with self._lock:
            self._challenges[request_class] = challenge

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._challenges.clear()


shared_tokens = TokenCache()

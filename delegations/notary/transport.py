"""HTTP to one repository's trust data on a Notary server, with errors mapped to ours.

Everything `requests` can raise stays in this module (style habit 5). Requests answer the
server's authentication challenge (DTR token auth, protocol note §8) with the portal's service
account; the parts without HTTP are in `auth.py`.
"""

from __future__ import annotations

import base64
import contextlib
import logging
from dataclasses import dataclass, field
from typing import TypedDict, Unpack
from urllib.parse import quote, urlsplit

import requests

from .auth import (
    Challenge,
    Credentials,
    MalformedChallenge,
    Token,
    TokenCache,
    TokenScope,
    parse_challenges,
    requested_actions,
    shared_tokens,
    token_from_response,
)
from .errors import (
    AccessDenied,
    AuthenticationRequired,
    InvalidMetadata,
    MetadataNotFound,
    NotaryError,
    ServerUnreachable,
    TokenServiceUnavailable,
    UnexpectedResponse,
)
from .responses import (
    MAX_ERROR_BYTES,
    TRY_LATER,
    TooLarge,
    connection_error,
    raise_for_status,
    read_capped,
)

logger = logging.getLogger(__name__)


class _SendOptions(TypedDict, total=False):
    """What a request may add to the method, URL and authorization."""

    stream: bool
    allow_redirects: bool
    files: list[tuple[str, tuple[str, bytes, str]]]


# The Go client caps the timestamp at 1 MiB; other files can be large with many targets.
MAX_METADATA_BYTES = 100 * 1024 * 1024
# A token is a few KiB; anything far bigger is not a token service talking.
MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class _Authorization:
    """What a request carries: Basic credentials, or a token and the scope it was issued for."""

    header: str = field(repr=False)
    scope: TokenScope | None = None
    token: Token | None = None
    fetched_now: bool = False


class Transport:
    def __init__(
        self,
        server_url: str,
        gun: str,
        *,
        timeout: float = 10.0,
        verify: bool | str = True,
        session: requests.Session | None = None,
        credentials: Credentials | None = None,
        tokens: TokenCache | None = None,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.gun = gun
        self.timeout = timeout
        self.verify = verify
        self.credentials = credentials
        self.tokens = shared_tokens if tokens is None else tokens
        self.base_url = f"{self.server_url}/v2/{quote(gun, safe='/')}/_trust/tuf/"
        self.session = session or requests.Session()
        # requests reads proxy settings from the environment on every request, a seventh of a
        # delegation's time; read them once for this server instead.
        self.session.proxies.update(requests.utils.get_environ_proxies(self.server_url))
        self.session.trust_env = False

    def get(self, path: str, *, limit: int = MAX_METADATA_BYTES) -> bytes:
        """GET a file under the repository's trust URL; MetadataNotFound on 404."""
        response = self._request("GET", path, f"GET {path}", stream=True)
        with response:
            if response.status_code == 404:
                raise MetadataNotFound(f"{self.gun}: {path} does not exist on the server")
            raise_for_status(self.gun, response, f"GET {path}")
            try:
                return read_capped(response, limit)
            except TooLarge:
                raise InvalidMetadata(f"{path} is larger than {limit} bytes") from None
            except requests.RequestException as error:
                # The body streams after the status line, so it can break on its own.
                raise ServerUnreachable(
                    f"reading {path} from {self.server_url} failed: {error}"
                ) from None

    def publish(self, files: dict[str, bytes]) -> None:
        """POST role files in one atomic update, as the Go client lays out the multipart body."""
        parts = [
            ("files", (role, data, "application/octet-stream")) for role, data in files.items()
        ]
        # A redirect would turn the POST into a GET and lose the upload.
        response = self._request(
            "POST", "", "publish", files=parts, allow_redirects=False, stream=True
        )
        with response:
            raise_for_status(self.gun, response, "publish")
            # Read the (empty) answer, so the connection goes back to the pool for the read-back.
            with contextlib.suppress(TooLarge, requests.RequestException):
                read_capped(response, MAX_ERROR_BYTES)

    # -- authentication ------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, action: str, **options: Unpack[_SendOptions]
    ) -> requests.Response:
        """Send a request, answering the server's challenge; a 401 never comes back from here.

        A token the server refuses is dropped and a new one fetched, once per request: a cached
        token may have expired early in the server's eyes, and a fresh one may have been too old
        on arrival. Refused again, the answer is the server's last word.
        """
        kind = "key" if path.endswith(".key") else "metadata"
        request_class = (self.server_url, self.gun, method, kind)
        known = self.tokens.challenge(request_class)
        authorization = self._authorization(known, action) if known else None
        renewed = False
        while True:
            response = self._send(method, self.base_url + path, authorization, **options)
            if response.status_code != 401:
                return response
            response.close()
            challenge = self._challenge_of(response, action)
            self.tokens.remember(request_class, challenge)
            if authorization is None:
                authorization = self._authorization(challenge, action)
                continue
            sent_basic = authorization.token is None
            final = (
                renewed
                or (sent_basic and challenge.scheme == "basic")
                or (authorization.fetched_now and challenge.error != "invalid_token")
            )
            if final:
                raise self._refusal(challenge, action)
            if authorization.token is not None and authorization.scope is not None:
                self.tokens.drop(self.credentials, authorization.scope, authorization.token)
            authorization = self._authorization(challenge, action, renew=True)
            renewed = True

    def _authorization(
        self, challenge: Challenge, action: str, *, renew: bool = False
    ) -> _Authorization:
        if challenge.scheme == "basic":
            if self.credentials is None:
                raise AuthenticationRequired(self._no_credentials(action))
            return _Authorization(_basic(self.credentials))
        try:
            scope = TokenScope.from_challenge(challenge)
        except MalformedChallenge as error:
            raise AuthenticationRequired(
                f"{action} on {self.gun}: {self.server_url} asks for a token but {error}"
            ) from None
        self._require_trustworthy(scope, action)
        token = None if renew else self.tokens.token(self.credentials, scope)
        fetched_now = token is None
        if token is None:
            token = self._fetch_token(scope, action)
            self.tokens.store(self.credentials, scope, token)
        return _Authorization(f"Bearer {token.value}", scope, token, fetched_now)

    def _require_trustworthy(self, scope: TokenScope, action: str) -> None:
        """Send the service account's password only where DTR's own token service would be,
        and ask only for this repository: the challenge comes from the server, and a wrong or
        hostile one must not collect the password or tokens for other repositories."""
        server, realm = urlsplit(self.server_url), urlsplit(scope.realm)
        plain_server = server.scheme == "http"  # a loopback test server, say
        if realm.scheme != "https" and not plain_server:
            problem = f"the token service {scope.realm} is not https"
        elif realm.hostname != server.hostname:
            problem = f"the token service {scope.realm} is not on {server.hostname}"
        elif not all(item.startswith(f"repository:{self.gun}:") for item in scope.scope.split()):
            problem = f"the token scope {scope.scope!r} is not this repository's"
        else:
            return
        raise AuthenticationRequired(
            f"{action} on {self.gun}: {problem}; the portal does not send its credentials there"
        )

    def _fetch_token(self, scope: TokenScope, action: str) -> Token:
        """GET <realm>?account=&scope=&service= as docker/distribution's clients do (§8.3)."""
        params = [("account", self.credentials.username)] if self.credentials else []
        params += [("scope", item) for item in scope.scope.split()]
        if scope.service:
            params.append(("service", scope.service))
        credentials = self.credentials
        headers = {"Authorization": _basic(credentials)} if credentials else None
        where = f"the token service at {scope.realm}"
        try:
            response = self.session.get(
                scope.realm,
                params=params,
                headers=headers,
                timeout=self.timeout,
                verify=self.verify,
                proxies=requests.utils.get_environ_proxies(scope.realm),
                stream=True,
            )
        except (requests.RequestException, OSError) as error:
            raise connection_error(
                error,
                scope.realm,
                TokenServiceUnavailable,
                verify=self.verify,
                timeout=self.timeout,
            ) from None
        with response:
            status = response.status_code
            if status in (401, 403):
                if credentials is None:
                    raise AuthenticationRequired(self._no_credentials(action))
                raise AuthenticationRequired(
                    f"{where} refused the credentials of the Notary service account "
                    f"{credentials.username!r} ({status}); check PORTAL_NOTARY_USERNAME and "
                    "PORTAL_NOTARY_PASSWORD"
                )
            if status >= 500 or status in TRY_LATER:
                raise TokenServiceUnavailable(f"{where} answered {status}; try later")
            if status != 200:
                raise UnexpectedResponse(
                    f"{where} answered {status}; check the realm the Notary server names"
                )
            try:
                body = read_capped(response, MAX_TOKEN_RESPONSE_BYTES)
            except TooLarge:
                body = b""  # reported as not a token below
            except requests.RequestException as error:
                raise TokenServiceUnavailable(f"reading from {where} failed: {error}") from None
        token = token_from_response(body, realm=scope.realm, now=self.tokens.clock())
        logger.debug("fetched a token for %s from %s", scope.scope or "no scope", scope.realm)
        return token

    def _challenge_of(self, response: requests.Response, action: str) -> Challenge:
        """The challenge to answer: Bearer (what DTR and notary-server send), else Basic."""
        header = response.headers.get("WWW-Authenticate", "")
        try:
            challenges = parse_challenges(header)
        except MalformedChallenge as error:
            raise AuthenticationRequired(
                f"{action} on {self.gun}: {self.server_url} sent a malformed authentication "
                f"challenge ({error})"
            ) from None
        for scheme in ("bearer", "basic"):
            for challenge in challenges:
                if challenge.scheme == scheme:
                    return challenge
        if self.credentials is None:
            raise AuthenticationRequired(self._no_credentials(action))
        offered = ", ".join(challenge.scheme for challenge in challenges) or "no challenge"
        raise AuthenticationRequired(
            f"{action} on {self.gun}: {self.server_url} answered 401 with {offered}; the portal "
            "answers Bearer (token) and Basic challenges only"
        )

    def _refusal(self, challenge: Challenge, action: str) -> NotaryError:
        """The error for a server that refused what we sent in answer to its challenge."""
        if self.credentials is None:
            return AuthenticationRequired(self._no_credentials(action))
        account = f"the Notary service account {self.credentials.username!r}"
        if challenge.scheme == "basic":
            return AuthenticationRequired(
                f"{self.server_url} refused the credentials of {account}; check "
                "PORTAL_NOTARY_USERNAME and PORTAL_NOTARY_PASSWORD"
            )
        if challenge.error == "insufficient_scope":
            # Sorted: notary-server lists the actions in no fixed order.
            actions = " and ".join(sorted(set(requested_actions(challenge)))) or "the"
            return AccessDenied(
                f"{account} lacks {actions} permission on the repository {self.gun}, which "
                f"{action} needs; grant it to the account in DTR"
            )
        return AuthenticationRequired(
            f"{self.server_url} refused the token {account} got for {action} on {self.gun} "
            f"({challenge.error or 'no reason given'}); check that the Notary server trusts its "
            "token service"
        )

    def _no_credentials(self, action: str) -> str:
        return (
            f"{action} on {self.gun} at {self.server_url} requires authentication and no Notary "
            "service account is configured; set PORTAL_NOTARY_USERNAME and PORTAL_NOTARY_PASSWORD"
        )

    # -- HTTP ----------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        authorization: _Authorization | None,
        **options: Unpack[_SendOptions],
    ) -> requests.Response:
        headers = {"Authorization": authorization.header} if authorization else None
        try:
            return self.session.request(
                method, url, headers=headers, timeout=self.timeout, verify=self.verify, **options
            )
        except (requests.RequestException, OSError) as error:
            raise connection_error(
                error,
                self.server_url,
                ServerUnreachable,
                verify=self.verify,
                timeout=self.timeout,
            ) from None


def _basic(credentials: Credentials) -> str:
    # UTF-8, as Go's clients send it; requests' own Basic auth would refuse non-Latin-1.
    pair = f"{credentials.username}:{credentials.password}".encode()
    return f"Basic {base64.b64encode(pair).decode('ascii')}"

"""HTTP to one repository's trust data on a Notary server, with errors mapped to ours.

Everything urllib3 can raise stays in this module and `responses` (style habit 5). Requests
answer the server's authentication challenge (DTR token auth, protocol note §8) with the portal's
service account; the parts without HTTP are in `auth.py`, the connection pools in `pools.py`.
"""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode, urlsplit

import urllib3
from urllib3 import BaseHTTPResponse
from urllib3.exceptions import HTTPError, MaxRetryError

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
from .pools import UnusableBundle, pool_for
from .responses import (
    MAX_ERROR_BYTES,
    TRY_LATER,
    TooLarge,
    connection_error,
    raise_for_status,
    read_capped,
)

logger = logging.getLogger(__name__)


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
        pool: urllib3.PoolManager | None = None,
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
        # Made at the first request unless a caller brings one, so that a CA bundle that cannot
        # be loaded is reported as every request's error. The token service gets its own (its
        # host may go through another proxy).
        self._pool = pool
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)

    def get(self, path: str, *, limit: int = MAX_METADATA_BYTES) -> bytes:
        """GET a file under the repository's trust URL; MetadataNotFound on 404."""
        with self._request("GET", path, f"GET {path}") as response:
            if response.status == 404:
                raise MetadataNotFound(f"{self.gun}: {path} does not exist on the server")
            raise_for_status(self.gun, response, f"GET {path}")
            try:
                return read_capped(response, limit)
            except TooLarge:
                raise InvalidMetadata(f"{path} is larger than {limit} bytes") from None
            except HTTPError as error:
                # The body streams after the status line, so it can break on its own.
                raise ServerUnreachable(
                    f"reading {path} from {self.server_url} failed: {error}"
                ) from None

    def publish(self, files: dict[str, bytes]) -> None:
        """POST role files in one atomic update, as the Go client lays out the multipart body."""
        parts = [
            ("files", (role, data, "application/octet-stream")) for role, data in files.items()
        ]
        body, content_type = urllib3.encode_multipart_formdata(parts)
        with self._request("POST", "", "publish", body=body, content_type=content_type) as response:
            raise_for_status(self.gun, response, "publish")
            # Read the (empty) answer, so the connection goes back to the pool for the read-back.
            with contextlib.suppress(TooLarge, HTTPError):
                read_capped(response, MAX_ERROR_BYTES)

    # -- authentication ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _request(
        self,
        method: str,
        path: str,
        action: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> Iterator[BaseHTTPResponse]:
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
            headers = {"Content-Type": content_type} if content_type else {}
            if authorization:
                headers["Authorization"] = authorization.header
            response = self._send(method, self.base_url + path, headers, body)
            if response.status != 401:
                with _finished(response):
                    yield response
                return
            with _finished(response):
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
        headers = {"Authorization": _basic(credentials)} if credentials else {}
        where = f"the token service at {scope.realm}"
        separator = "&" if urlsplit(scope.realm).query else "?"
        url = f"{scope.realm}{separator}{urlencode(params)}" if params else scope.realm
        response = self._send("GET", url, headers, None, unavailable=TokenServiceUnavailable)
        with _finished(response):
            status = response.status
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
            except HTTPError as error:
                raise TokenServiceUnavailable(f"reading from {where} failed: {error}") from None
        token = token_from_response(body, realm=scope.realm, now=self.tokens.clock())
        logger.debug("fetched a token for %s from %s", scope.scope or "no scope", scope.realm)
        return token

    def _challenge_of(self, response: BaseHTTPResponse, action: str) -> Challenge:
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
        headers: dict[str, str],
        body: bytes | None,
        *,
        unavailable: type[NotaryError] = ServerUnreachable,
    ) -> BaseHTTPResponse:
        """One request, its body left to stream; connection trouble becomes `unavailable`,
        saying which server (the token service's realm, or the Notary server) could not be
        reached."""
        try:
            if self._pool is not None and unavailable is ServerUnreachable:
                pool = self._pool
            else:
                pool = pool_for(url, self.verify)
                if unavailable is ServerUnreachable:
                    # Kept for the transport's next requests (the proxy lookup alone reads
                    # the whole environment).
                    self._pool = pool
            return pool.request(
                method,
                url,
                body=body,
                headers=headers,
                timeout=self._timeout,
                preload_content=False,
                # A redirect would turn the POST into a GET and lose the upload; a GET follows
                # a few, as Go's client does.
                retries=_GET_RETRIES if method == "GET" else False,
                redirect=method == "GET",
            )
        except MaxRetryError as error:
            where = self.server_url if unavailable is ServerUnreachable else url.split("?")[0]
            raise connection_error(
                error.reason or error, where, unavailable, verify=self.verify, timeout=self.timeout
            ) from None
        except (HTTPError, UnusableBundle, OSError) as error:
            where = self.server_url if unavailable is ServerUnreachable else url.split("?")[0]
            raise connection_error(
                error, where, unavailable, verify=self.verify, timeout=self.timeout
            ) from None


# No retry of its own (the worker decides what is retried), and at most ten redirects, the
# last of which is then answered as it is (an unexpected status). `total=False` would follow
# none: urllib3 counts a redirect against the total too. Errors other than connecting and
# reading arrive wrapped in MaxRetryError, unwrapped in `_send`.
_GET_RETRIES = urllib3.Retry(
    total=None, connect=False, read=False, other=0, status=0, redirect=10, raise_on_redirect=False
)


@contextlib.contextmanager
def _finished(response: BaseHTTPResponse) -> Iterator[BaseHTTPResponse]:
    """The response, and afterwards its connection back in the pool, open for the next request
    when what is left of the body is a short answer nobody read (a 401's or 404's), closed when
    a body broke off or ran past its limit."""
    try:
        yield response
    except BaseException:
        if response.status == 200:
            response.close()
        raise
    finally:
        if not response.closed:
            try:
                read_capped(response, MAX_ERROR_BYTES)
            except (TooLarge, HTTPError, OSError):
                response.close()
        response.release_conn()


def _basic(credentials: Credentials) -> str:
    # UTF-8, as Go's clients send it; requests' own Basic auth would refuse non-Latin-1.
    pair = f"{credentials.username}:{credentials.password}".encode()
    return f"Basic {base64.b64encode(pair).decode('ascii')}"

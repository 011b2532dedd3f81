"""DTR-style token authentication: challenge parsing on its own, then the client against a real
notary-server that wants tokens from the test token service (`tests/token_issuer.py`)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import urllib3

from delegations.notary import (
    RELEASES,
    AddKey,
    NotaryClient,
    PermanentNotaryError,
    PublicKey,
    RepositoryNotInitialised,
    SigningKey,
    TransientNotaryError,
    Transport,
    team_role_name,
)
from delegations.notary.auth import (
    Challenge,
    Credentials,
    MalformedChallenge,
    Token,
    TokenCache,
    TokenScope,
    parse_challenges,
    token_from_response,
)
from delegations.notary.errors import (
    AccessDenied,
    AuthenticationRequired,
    InvalidTokenResponse,
    TokenServiceUnavailable,
)
from stack.processes import LOOPBACK, free_port, notary_service
from tests.conftest import NotaryCLI
from tests.factories import make_bundle
from tests.token_issuer import TokenIssuer, libtrust_key_id

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REALM = "https://dtr.example.org/auth/token"


def now() -> datetime:
    return datetime.now(UTC)


# -- challenges, token responses, the cache (no servers) ------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            # verbatim from notary-server (protocol note §8.1)
            'Bearer realm="http://127.0.0.1:4453/auth",service="notary-test",'
            'scope="repository:example.com/org/app:push,pull"',
            [("bearer", {"realm": "http://127.0.0.1:4453/auth", "service": "notary-test",
                         "scope": "repository:example.com/org/app:push,pull"})],
        ),
        (
            'Bearer realm="https://a/t",error="insufficient_scope",scope="repository:x:push,pull"',
            [("bearer", {"realm": "https://a/t", "error": "insufficient_scope",
                         "scope": "repository:x:push,pull"})],
        ),
        (
            'Bearer realm="https://a/t", service="dtr", Basic realm="Notary, the registry"',
            [("bearer", {"realm": "https://a/t", "service": "dtr"}),
             ("basic", {"realm": "Notary, the registry"})],
        ),
        (
            'BASIC Realm = "say \\"hi\\"" ,charset=UTF-8',
            [("basic", {"realm": 'say "hi"', "charset": "UTF-8"})],
        ),
        ("Negotiate abc/+==, Basic", [("negotiate", {}), ("basic", {})]),
        ("Basic, Bearer realm=dtr", [("basic", {}), ("bearer", {"realm": "dtr"})]),
        ("", []),
    ],
    ids=["notary", "error", "two-challenges", "escapes-and-case", "token68", "bare", "empty"],
)  # fmt: skip
def test_challenges_are_parsed(header, expected):
    parsed = [(challenge.scheme, dict(challenge.params)) for challenge in parse_challenges(header)]
    assert parsed == expected


@pytest.mark.parametrize(
    "header",
    ['Bearer realm="unterminated', 'Bearer realm="a" service="b"', '="x"', "Bearer realm=a b"],
)
def test_malformed_challenges_are_refused(header):
    with pytest.raises(MalformedChallenge):
        parse_challenges(header)


def test_a_bearer_challenge_needs_an_http_realm():
    with pytest.raises(MalformedChallenge):
        TokenScope.from_challenge(Challenge("bearer", {"realm": "file:///etc/passwd"}))


@pytest.mark.parametrize(
    ("body", "expires_at"),
    [
        ({"token": "T", "expires_in": 300}, NOW + timedelta(seconds=300)),
        ({"access_token": "T"}, NOW + timedelta(seconds=60)),
        ({"token": "X", "access_token": "T", "expires_in": 5}, NOW + timedelta(seconds=60)),
        (
            {"token": "T", "expires_in": 600, "issued_at": "2026-03-01T11:58:00.123456789Z"},
            datetime(2026, 3, 1, 12, 8, 0, 123456, tzinfo=UTC),
        ),
        # a token service clock ahead of ours does not lengthen the token's life
        (
            {"token": "T", "expires_in": 60, "issued_at": "2026-03-01T13:00:00Z"},
            NOW + timedelta(seconds=60),
        ),
    ],
    ids=["token", "access-token-default-lifetime", "access-token-wins-floor", "issued-at", "ahead"],
)
def test_token_responses_are_read_like_the_go_client(body, expires_at):
    token = token_from_response(json.dumps(body).encode(), realm=REALM, now=NOW)
    assert token == Token("T", expires_at)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>login</html>",
        b'["secret-token"]',
        b'{"token": ""}',
        b'{"token": "secret-token", "expires_in": "300"}',
        b'{"token": "secret-token", "issued_at": "yesterday"}',
    ],
)
def test_malformed_token_responses_are_permanent_and_do_not_repeat_the_body(body):
    with pytest.raises(InvalidTokenResponse) as raised:
        token_from_response(body, realm=REALM, now=NOW)
    assert "secret-token" not in str(raised.value)
    assert REALM in str(raised.value)


def test_credentials_and_tokens_never_show_their_secret():
    credentials = Credentials("svc-portal", "hunter2-secret")
    assert "hunter2" not in repr(credentials)
    assert "hunter2" not in str(credentials)
    assert "svc-portal" in repr(credentials)
    assert "abc.def" not in repr(Token("abc.def", NOW))


def test_the_cache_renews_a_token_shortly_before_it_expires():
    clock = [NOW]
    cache = TokenCache(clock=lambda: clock[0])
    scope = TokenScope(REALM, "dtr", "repository:a/b:pull")
    account = Credentials("svc", "pw")
    cache.store(account, scope, Token("T", NOW + timedelta(seconds=60)))
    assert cache.token(account, scope) == Token("T", NOW + timedelta(seconds=60))
    assert cache.token(Credentials("svc", "other"), scope) is None
    assert cache.token(account, TokenScope(REALM, "dtr", "repository:a/b:push,pull")) is None
    clock[0] = NOW + timedelta(seconds=55)
    assert cache.token(account, scope) is None


def test_libtrust_key_ids_have_twelve_groups_of_four():
    issuer_key_id = libtrust_key_id(make_bundle("x").certificate.public_key())
    groups = issuer_key_id.split(":")
    assert len(groups) == 12
    # Base32 without padding: a group may be all digits ("2345"), which isupper() calls false.
    base32 = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert all(len(group) == 4 and set(group) <= base32 for group in groups)


# -- against notary-server with token auth --------------------------------------------------------


@dataclass
class TokenRepo:
    """A repository initialised on the token-auth server by a push-and-pull account."""

    url: str
    gun: str
    owner: Credentials
    targets_key: SigningKey
    tokens: TokenCache

    def client(self, credentials: Credentials | None, **kwargs: object) -> NotaryClient:
        tokens = kwargs.pop("tokens", None) or TokenCache()
        return NotaryClient(
            Transport(self.url, self.gun, credentials=credentials, tokens=tokens, **kwargs)
        )

    def delegate(self, client: NotaryClient, team: str = "qa"):
        return client.publish_change(
            AddKey(
                PublicKey.from_certificate(make_bundle(team).certificate),
                (RELEASES, team_role_name(team)),
            ),
            targets_key=self.targets_key,
            now=now(),
        )


def new_gun() -> str:
    return f"dtr.example.org/t{uuid.uuid4().hex[:10]}/nginx"


@pytest.fixture
def token_repo(token_notary_url: str, token_issuer: TokenIssuer) -> TokenRepo:
    owner = token_issuer.add_account("push", "pull")
    gun, tokens = new_gun(), TokenCache()
    repo = TokenRepo(token_notary_url, gun, owner, SigningKey.generate(), tokens)
    repo.client(owner, tokens=tokens).initialise(
        root_key=SigningKey.generate_root(gun, now=now()), targets_key=repo.targets_key, now=now()
    )
    token_issuer.reset()
    return repo


def cli_for(url: str, credentials: Credentials, home: Path) -> NotaryCLI:
    auth = f"{credentials.username}:{credentials.password}".encode()
    return NotaryCLI(url, home, env={"NOTARY_AUTH": base64.b64encode(auth).decode("ascii")})


def test_delegations_are_published_through_token_auth(token_repo, token_issuer, tmp_path):
    client = token_repo.client(token_repo.owner)
    bundle = make_bundle("bob")
    result = client.publish_change(
        AddKey(PublicKey.from_certificate(bundle.certificate), (RELEASES, team_role_name("qa"))),
        targets_key=token_repo.targets_key,
        now=now(),
    )
    assert result.changed

    canonical_id = PublicKey.from_certificate(bundle.certificate).canonical_id
    before = token_issuer.token_requests
    listed = cli_for(token_repo.url, token_repo.owner, tmp_path).delegations(token_repo.gun)
    assert token_issuer.token_requests > before  # the CLI got through the same token auth
    assert {role: entry["keys"] for role, entry in listed.items()} == {
        RELEASES: [canonical_id],
        team_role_name("qa"): [canonical_id],
    }


def test_a_wrong_password_is_refused_permanently_and_nothing_is_published(token_repo):
    wrong = Credentials(token_repo.owner.username, "not-the-password")
    with pytest.raises(AuthenticationRequired) as raised:
        token_repo.delegate(token_repo.client(wrong))
    message = str(raised.value)
    assert isinstance(raised.value, PermanentNotaryError)
    assert "refused the credentials" in message
    assert token_repo.owner.username in message
    assert "not-the-password" not in message
    assert token_repo.owner.password not in message

    state = token_repo.client(token_repo.owner).fetch(now=now())
    assert state.targets.signed.version == 1
    assert not state.targets.signed.delegations.roles


def test_a_pull_only_account_reads_but_cannot_publish(token_repo, token_issuer):
    reader = token_issuer.add_account("pull")
    client = token_repo.client(reader)
    assert client.fetch(now=now()).targets.signed.version == 1

    with pytest.raises(AccessDenied) as raised:
        token_repo.delegate(client)
    assert isinstance(raised.value, PermanentNotaryError)
    assert "lacks pull and push permission" in str(raised.value)
    assert token_repo.gun in str(raised.value)
    assert token_repo.client(token_repo.owner).fetch(now=now()).targets.signed.version == 1


def test_without_credentials_reads_are_anonymous_and_writes_ask_for_a_service_account(
    token_repo, token_issuer
):
    anonymous = token_repo.client(None)
    assert anonymous.fetch(now=now()).targets.signed.version == 1
    with pytest.raises(AuthenticationRequired, match="PORTAL_NOTARY_USERNAME"):
        token_repo.delegate(anonymous)

    token_issuer.anonymous_actions = None
    with pytest.raises(AuthenticationRequired, match="PORTAL_NOTARY_PASSWORD"):
        token_repo.client(None).fetch(now=now())


def test_tokens_are_cached_so_a_stream_of_operations_skips_401s_and_token_requests(
    token_repo, token_issuer
):
    challenged: list[str] = []

    class Watched(urllib3.PoolManager):
        def urlopen(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            response = super().urlopen(method, url, *args, **kwargs)
            if response.status == 401:
                challenged.append(url)
            return response

    pool = Watched()
    tokens = TokenCache()

    def operate() -> None:
        # A transport per operation, as the portal makes them; the cache outlives them.
        client = token_repo.client(token_repo.owner, tokens=tokens, pool=pool)
        token_repo.delegate(client, team=f"team{uuid.uuid4().hex[:6]}")
        client.fetch(now=now())

    operate()
    assert token_issuer.token_requests == 2  # pull, then push,pull for the publish
    warm_up = len(challenged)
    for _ in range(4):
        operate()
    assert token_issuer.token_requests == 2
    assert len(challenged) == warm_up
    roles = token_repo.client(token_repo.owner).fetch(now=now()).targets.signed.delegations.roles
    assert len(roles) == 1 + 5


def test_a_short_expires_in_is_raised_to_a_minute(token_repo, token_issuer):
    token_issuer.expires_in = 5
    client = token_repo.client(token_repo.owner)
    client.fetch(now=now())
    client.fetch(now=now())
    assert token_issuer.token_requests == 1


def test_a_token_the_server_rejects_as_expired_is_renewed_once(token_repo, token_issuer):
    # The first token claims a normal expires_in but is already past the server's leeway.
    token_issuer.stale_tokens = 1
    tokens = TokenCache()
    client = token_repo.client(token_repo.owner, tokens=tokens)
    assert client.fetch(now=now()).targets.signed.version == 1
    assert token_issuer.token_requests == 2

    client.fetch(now=now())
    assert token_issuer.token_requests == 2  # the renewed token is the one cached

    token_issuer.stale_tokens = 2  # stale again after renewal: the server's answer stands
    with pytest.raises(AuthenticationRequired, match="invalid_token"):
        token_repo.client(token_repo.owner).fetch(now=now())


def test_a_failing_token_service_is_transient(token_repo, token_issuer):
    token_issuer.fail_with = 503
    with pytest.raises(TokenServiceUnavailable) as raised:
        token_repo.client(token_repo.owner).fetch(now=now())
    assert isinstance(raised.value, TransientNotaryError)


@pytest.fixture
def unreachable_realm_notary_url(service_dir: Path, token_issuer: TokenIssuer) -> Iterator[str]:
    """A notary-server whose token service is not listening."""
    auth = token_issuer.auth_config()
    auth["options"]["realm"] = f"http://{LOOPBACK}:{free_port()}/token"
    port = free_port()
    with notary_service(port=port, data_dir=service_dir / "notary-no-realm", auth=auth):
        yield f"http://{LOOPBACK}:{port}"


def test_an_unreachable_token_service_is_transient(unreachable_realm_notary_url, token_issuer):
    credentials = token_issuer.add_account("push", "pull")
    transport = Transport(
        unreachable_realm_notary_url, new_gun(), credentials=credentials, tokens=TokenCache()
    )
    with pytest.raises(TransientNotaryError, match="cannot reach"):
        NotaryClient(transport).fetch(now=now())


def test_an_uninitialised_repository_still_reads_as_not_found_after_authentication(
    token_notary_url, token_issuer
):
    credentials = token_issuer.add_account("push", "pull")
    client = NotaryClient(
        Transport(token_notary_url, new_gun(), credentials=credentials, tokens=TokenCache())
    )
    with pytest.raises(RepositoryNotInitialised):
        client.fetch(now=now())

"""The DTR client against the stand-in of DTR's API (stack/dtr_standin.py): what DTR receives,
byte for byte in JSON, and how each of its refusals comes back."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest
import urllib3

from delegations import dtr
from delegations.dtr import AccessLevel, DtrClient
from stack.dtr_standin import DtrStandIn, dtr_standin_service
from stack.processes import free_port

SERVICE = "svc-portal"
TOKEN = secrets.token_urlsafe(16)  # the service account's access token, made at run time


@pytest.fixture
def standin() -> Iterator[DtrStandIn]:
    registry = DtrStandIn()
    registry.account_add(SERVICE, TOKEN)
    registry.account_add("bob", "bob-password")
    registry.organisation_add("dev", teams=("qa", "ops", "web"), admins=(SERVICE,))
    registry.repository_add("dev", "nginx")
    registry.repository_add("bob", "scratch", admins=(SERVICE,))
    with dtr_standin_service(registry) as running:
        yield running


def client_of(standin: DtrStandIn, *, token: str | None = None) -> DtrClient:
    return DtrClient(
        standin.url,
        username=SERVICE,
        token=token or TOKEN,
        timeout=5,
    )


def sent(standin: DtrStandIn) -> list[tuple[str, str, object]]:
    return [(call.method, call.path, call.body) for call in standin.recorded]


def test_a_team_gets_read_write_once_and_the_second_time_nothing_is_written(standin):
    client = client_of(standin)
    change = client.team_access_ensure("dev", "nginx", "qa", at_least=AccessLevel.READ_WRITE)
    assert (change.before, change.after, change.changed) == (None, AccessLevel.READ_WRITE, True)
    assert standin.team_access("dev", "nginx") == {"qa": "read-write"}
    assert sent(standin) == [
        ("GET", "/api/v0/repositories/dev/nginx/teamAccess", None),
        ("PUT", "/api/v0/repositories/dev/nginx/teamAccess/qa", {"accessLevel": "read-write"}),
    ]
    assert standin.recorded[0].query == {"pageSize": ["100"]}
    assert {call.account for call in standin.recorded} == {SERVICE}

    again = client.team_access_ensure("dev", "nginx", "qa", at_least=AccessLevel.READ_WRITE)
    assert not again.changed
    # A page with a grant is followed by one from its last team, which brings nothing new.
    assert [call.method for call in standin.recorded] == ["GET", "PUT", "GET", "GET"]


def test_an_admin_grant_is_never_lowered_and_read_only_is_raised(standin):
    client = client_of(standin)
    client.team_access_ensure("dev", "nginx", "ops", at_least=AccessLevel.ADMIN)
    client.team_access_ensure("dev", "nginx", "web", at_least=AccessLevel.READ_ONLY)

    kept = client.team_access_ensure("dev", "nginx", "ops", at_least=AccessLevel.READ_WRITE)
    raised = client.team_access_ensure("dev", "nginx", "web", at_least=AccessLevel.READ_WRITE)

    assert (kept.before, kept.changed) == (AccessLevel.ADMIN, False)
    assert (raised.before, raised.after) == (AccessLevel.READ_ONLY, AccessLevel.READ_WRITE)
    assert standin.team_access("dev", "nginx") == {"ops": "admin", "web": "read-write"}


def test_every_page_of_grants_is_read(standin, monkeypatch):
    teams = tuple(f"team{number:02d}" for number in range(25))
    standin.organisation_add("dev", teams=teams)
    for team in teams:
        standin.repositories[("dev", "nginx")].team_access[team] = "read-only"
    monkeypatch.setattr(dtr.client, "PAGE_SIZE", 10)

    levels = client_of(standin).team_access("dev", "nginx")

    assert sorted(levels) == list(teams)
    assert len(standin.recorded) == 4  # 10, 10 (one seen), 7 (one seen), 1 (seen): the end


def test_removing_access_is_quiet_for_a_team_without_any(standin):
    client = client_of(standin)
    client.team_access_ensure("dev", "nginx", "qa", at_least=AccessLevel.READ_WRITE)
    client.team_access_remove("dev", "nginx", "qa")
    client.team_access_remove("dev", "nginx", "qa")
    assert standin.team_access("dev", "nginx") == {}
    assert [call.status for call in standin.recorded[-2:]] == [204, 204]


def test_what_dtr_refuses_comes_back_as_a_permanent_error_saying_why(standin):
    client = client_of(standin)
    with pytest.raises(dtr.DtrRejected, match="not owned by an organization"):
        client.team_access_ensure("bob", "scratch", "qa", at_least=AccessLevel.READ_WRITE)
    with pytest.raises(dtr.DtrNotFound, match=r'NO_SUCH_TEAM.*Team name: "testers"') as raised:
        client.team_access_ensure("dev", "nginx", "testers", at_least=AccessLevel.READ_WRITE)
    assert raised.value.code == "NO_SUCH_TEAM"
    with pytest.raises(dtr.DtrNotFound, match="NO_SUCH_REPOSITORY"):
        client.team_access("dev", "redis")

    # Without admin, DTR hides a private repository and refuses a public one.
    standin.organisations["dev"].namespace_admins.clear()
    with pytest.raises(dtr.DtrNotFound, match="NO_SUCH_REPOSITORY"):
        client.team_access("dev", "nginx")
    standin.repositories[("dev", "nginx")].visibility = "public"
    with pytest.raises(dtr.DtrAccessDenied, match="lacks the rights") as denied:
        client.team_access("dev", "nginx")
    assert not denied.value.transient


def test_refused_credentials_name_the_settings_and_never_the_token(standin):
    wrong = "wrong-" + secrets.token_urlsafe(8)
    with pytest.raises(dtr.DtrAuthenticationFailed, match="PORTAL_DTR_TOKEN") as raised:
        client_of(standin, token=wrong).team_access("dev", "nginx")
    assert wrong not in raised.value.message
    assert standin.recorded[-1].account is None


def test_an_outage_is_transient(standin):
    standin.fail_with = 503
    with pytest.raises(dtr.DtrUnreachable, match="503") as raised:
        client_of(standin).team_access("dev", "nginx")
    assert raised.value.transient
    closed = DtrClient(f"http://127.0.0.1:{free_port()}", username=SERVICE, token="t", timeout=2)
    with pytest.raises(dtr.DtrUnreachable, match="cannot reach"):
        closed.repository_get("dev", "nginx")


def test_a_repository_is_created_private_unless_asked_otherwise(standin):
    client = client_of(standin)
    assert client.repository_get("dev", "redis") is None

    created = client.repository_create("dev", "redis", description="The cache")

    assert (created["namespace"], created["name"], created["visibility"]) == (
        "dev",
        "redis",
        "private",
    )
    assert created["namespaceType"] == "organization"
    assert standin.recorded[-1].body == {
        "name": "redis",
        "shortDescription": "The cache",
        "longDescription": "",
        "visibility": "private",
        "scanOnPush": False,
        "immutableTags": False,
        "enableManifestLists": False,
        "tagLimit": 0,
    }
    assert client.repository_get("dev", "redis")["id"] == created["id"]
    with pytest.raises(dtr.DtrRejected, match="REPOSITORY_EXISTS") as exists:
        client.repository_create("dev", "redis")
    assert exists.value.code == "REPOSITORY_EXISTS"
    with pytest.raises(dtr.DtrNotFound, match="NO_SUCH_ACCOUNT"):
        client.repository_create("nobody", "redis")


def test_the_standin_refuses_bodies_dtr_refuses(standin):
    # What the client never sends, sent by hand: the stand-in's own refusals.
    http = urllib3.PoolManager()
    headers = urllib3.make_headers(basic_auth=f"{SERVICE}:{TOKEN}")
    url = f"{standin.url}/api/v0/repositories/dev/nginx/teamAccess/qa"
    for body, code in ((b"{not json", "INVALID_JSON"), (b'{"accessLevel": "owner"}', None)):
        answer = http.request("PUT", url, body=body, headers=headers)
        assert answer.status == 400
        assert json.loads(answer.data)["errors"][0]["code"] == (code or "INVALID_PARAMETERS")
    assert standin.team_access("dev", "nginx") == {}

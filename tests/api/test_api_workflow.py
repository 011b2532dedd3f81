"""The whole workflow through the API only, over HTTP against the live test server, with a real
rqworker and notary-server: token, challenge, submit, approve, Delegated, the notary CLI sees
the key in both roles, revoke, and the key is gone."""

from __future__ import annotations

import base64
import time

import pytest
import requests
from django.core.management import call_command

from tests.factories import make_bundle, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

ROLES = ("targets/releases", "targets/qa")


def token_for(username: str, capsys) -> str:
    call_command("api_token_create", username, "--name", "pipeline", "--expires-days", "1")
    return capsys.readouterr().out.strip()


class Api:
    def __init__(self, base: str, token: str) -> None:
        self.base = base.rstrip("/") + "/api/v1"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params: object) -> dict:
        answer = self.session.get(self.base + path, params=params, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def post(self, path: str, body: object = None, *, expect: int = 200) -> dict:
        answer = self.session.post(self.base + path, json=body or {}, timeout=30)
        assert answer.status_code == expect, answer.text
        return answer.json()

    def wait_for(self, path: str, status: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            body = self.get(path)
            if body["status"] == status or time.monotonic() > deadline:
                assert body["status"] == status, body
                return body
            time.sleep(0.2)


def test_request_approve_delegate_and_revoke_through_the_api(
    live_server, rq_worker, repository, notary_cli, capsys
):
    make_user("alice", teams=("it-ops",), owns=(repository.owners_group,))
    make_user("bob", teams=("qa",))
    bob = Api(live_server.url, token_for("bob", capsys))
    alice = Api(live_server.url, token_for("alice", capsys))
    bundle = make_bundle("bob")

    challenge = bob.post("/challenges/", expect=201)
    assert challenge["openssl_command"].startswith("printf")
    signature = base64.b64encode(bundle.sign(challenge["challenge"].encode("ascii"))).decode()
    submitted = bob.post(
        "/requests/",
        {
            "repository": repository.gun,
            "team": "qa",
            "certificate": bundle.cert_pem.decode(),
            "reason": "The qa pipeline signs release images",
            "challenge": challenge["challenge"],
            "signature": signature,
        },
        expect=201,
    )
    assert submitted["status"] == "pending"
    request_path = f"/requests/{submitted['id']}/"

    queue = alice.get("/queue/")
    assert [row["id"] for row in queue["results"]] == [submitted["id"]]
    dry_run = alice.get(f"{request_path}dry-run/")
    assert dry_run["error"] == ""
    assert {change["role"] for change in dry_run["changes"]} == set(ROLES)
    alice.post(f"{request_path}approve/", {"comment": "Go ahead"})

    delegated = bob.wait_for(request_path, "delegated")
    key = delegated["canonical_key_id"]
    assert delegated["signing_steps"]
    listed = notary_cli.delegations(repository.gun)
    assert [listed[role]["keys"] for role in ROLES] == [[key], [key]]

    delegation_id = delegated["delegation"]["id"]
    delegations = alice.get(f"/repositories/{repository.pk}/delegations/")
    assert [row["id"] for row in delegations["results"]] == [delegation_id]
    preview = alice.get(f"/delegations/{delegation_id}/revocation-preview/")
    assert preview["error"] == ""
    revoked = alice.post(f"/delegations/{delegation_id}/revoke/", {"comment": "Left the project"})
    assert revoked["ending"] == "revoked"

    bob.wait_for(request_path, "revoked")
    listed = notary_cli.delegations(repository.gun)
    assert all(key not in listed.get(role, {}).get("keys", []) for role in ROLES)
    events = alice.get("/audit/", request=submitted["id"])
    actions = {event["action"] for event in events["results"]}
    assert {
        "request.submitted",
        "request.approved",
        "request.delegated",
        "request.revoked",
    } <= actions
    assert {
        event["actor"] for event in events["results"] if event["action"] == "request.approved"
    } == {"alice"}

"""The API keeps the pages' rules: owners only, no self-approval, tokens that expire and can be
revoked; and every error is JSON with a stable code, a message and the field, never HTML."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from delegations import services
from delegations.models import ApiToken, AuditEvent, DelegationRequest, RequestStatus
from tests.factories import make_bundle, make_user, submit_request

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def api(user, **token_options) -> Client:
    """A client calling the API with a fresh token of `user`."""
    _, secret = services.api_token_create(
        user=user, name="tests", expires_days=token_options.get("expires_days")
    )
    return Client(headers={"Authorization": f"Bearer {secret}"})


def url(name: str, *args: int) -> str:
    return reverse(f"delegations:api_{name}", args=args)


def assert_error(response, status: int, code: str, *, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code
    assert body["message"]
    assert body["field"] == field
    return body


def test_without_a_token_or_with_a_bad_one_the_answer_is_401(repository):
    assert_error(Client().get(url("request_list")), 401, "not_authenticated")
    bad = Client(headers={"Authorization": "Bearer dpt_not-a-real-token"})
    assert_error(bad.get(url("request_list")), 401, "authentication_failed")
    assert bad.get(url("request_list"))["WWW-Authenticate"] == 'Bearer realm="api"'


def test_an_expired_or_revoked_token_gets_401(repository, people):
    bob = people["bob"]
    token, secret = services.api_token_create(user=bob, name="ci", expires_days=1)
    client = Client(headers={"Authorization": f"Bearer {secret}"})
    assert client.get(url("request_list")).status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None

    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(client.get(url("request_list")), 401, "authentication_failed")

    token, secret = services.api_token_create(user=bob, name="ci 2", expires_days=None)
    client = Client(headers={"Authorization": f"Bearer {secret}"})
    services.api_token_revoke(token_id=token.pk, acting_user=bob)
    assert_error(client.get(url("request_list")), 401, "authentication_failed")

    token, secret = services.api_token_create(user=bob, name="ci 3", expires_days=None)
    bob.is_active = False
    bob.save()
    assert_error(
        Client(headers={"Authorization": f"Bearer {secret}"}).get(url("request_list")),
        401,
        "authentication_failed",
    )


def test_only_a_hash_of_the_secret_is_stored(repository, people):
    token, secret = services.api_token_create(user=people["bob"], name="ci", expires_days=30)
    stored = ApiToken.objects.get(pk=token.pk)
    assert secret not in (stored.secret_hash, stored.prefix, stored.name)
    assert secret.startswith(stored.prefix)
    created = AuditEvent.objects.get(action="api_token.created")
    assert secret not in str(created.details)


def test_non_owners_get_403_or_404_from_every_owner_endpoint(repository, people, stranger):
    request = submit_request(repository, people["bob"])
    delegation_request = submit_request(repository, people["dave"], team="dev")
    services.request_approve(request_id=delegation_request.pk, acting_user=people["alice"])
    services.request_apply(request_id=delegation_request.pk)
    delegation = DelegationRequest.objects.get(pk=delegation_request.pk).delegation
    for outsider in (people["bob"], stranger):
        client = api(outsider)
        answers = [
            client.get(url("request_dry_run", request.pk)),
            client.post(url("request_approve", request.pk), {}, content_type="application/json"),
            client.post(
                url("request_reject", request.pk),
                {"comment": "no"},
                content_type="application/json",
            ),
            client.get(url("repository_delegations", repository.pk)),
            client.get(url("revocation_preview", delegation.pk)),
            client.post(
                url("delegation_revoke", delegation.pk),
                {"comment": "x"},
                content_type="application/json",
            ),
        ]
        for answer in answers:
            assert answer.status_code in (403, 404), (answer.request["PATH_INFO"], answer.content)
            assert answer.json()["code"] in (
                "not_allowed",
                "not_an_owner",
                "self_approval",
                "not_found",
            )
    bulk = {"request_ids": [request.pk], "verdict": "approve"}
    # Someone who owns nothing has no queue at all...
    bob = api(people["bob"])
    assert_error(bob.get(url("queue")), 403, "not_allowed")
    assert_error(
        bob.post(url("requests_decide"), bulk, content_type="application/json"), 403, "not_allowed"
    )
    # ...and an owner of another repository sees nothing of this one and decides none of it.
    other = api(stranger)
    assert other.get(url("queue")).json()["count"] == 0
    (outcome,) = other.post(url("requests_decide"), bulk, content_type="application/json").json()
    assert outcome["status"] is None
    assert outcome["error"]
    assert DelegationRequest.objects.get(pk=request.pk).status == RequestStatus.PENDING
    delegation.refresh_from_db()
    assert delegation.is_active
    assert not delegation.ending


def test_a_member_cannot_approve_their_own_request_through_the_api_either(repository, people):
    # olga owns the repository and is in qa: she may ask, but another owner must decide.
    request = submit_request(repository, people["olga"])
    answer = api(people["olga"]).post(
        url("request_approve", request.pk), {"comment": "mine"}, content_type="application/json"
    )
    assert_error(answer, 403, "self_approval")
    assert DelegationRequest.objects.get(pk=request.pk).status == RequestStatus.PENDING


def test_bad_input_is_a_400_with_the_field_and_nothing_is_stored(repository, people):
    bob = api(people["bob"])
    bundle = make_bundle("bob")
    challenge = bob.post(url("challenge_create")).json()["challenge"]
    good = {
        "repository": repository.gun,
        "team": "qa",
        "certificate": bundle.cert_pem.decode(),
        "reason": "releases",
        "challenge": challenge,
        "signature": base64.b64encode(bundle.sign(challenge.encode())).decode(),
    }
    for change, field, code in (
        ({"repository": "nowhere/x/y"}, "repository", "invalid_input"),
        ({"repository": "no-slashes"}, "repository", "invalid_input"),
        ({"team": "dev"}, "team", "not_allowed"),
        ({"certificate": "not a certificate"}, "certificate", "invalid_input"),
        ({"certificate": bundle.key_pem.decode()}, "certificate", "invalid_input"),
        ({"reason": bundle.key_pem.decode()}, "reason", "invalid_input"),
        ({"reason": ""}, "reason", "invalid_input"),
        (
            {"signature": base64.b64encode(b"x" * 64).decode()},
            "possession_signature",
            "invalid_input",
        ),
        ({"team": None}, "team", "invalid_input"),
    ):
        answer = bob.post(url("request_list"), {**good, **change}, content_type="application/json")
        body = assert_error(answer, 400 if code == "invalid_input" else 403, code, field=field)
        assert "PRIVATE KEY" not in body["message"]
    assert_error(
        bob.post(url("request_list"), "{not json", content_type="application/json"),
        400,
        "parse_error",
    )
    assert_error(
        bob.post(url("request_list"), "<a/>", content_type="text/xml"),
        415,
        "unsupported_media_type",
    )
    assert_error(bob.get(url("request_detail", 999999)), 404, "not_found")
    assert_error(bob.delete(url("request_list")), 405, "method_not_allowed")
    assert not DelegationRequest.objects.exists()

    created = bob.post(url("request_list"), good, content_type="application/json")
    assert created.status_code == 201, created.content
    assert created["Location"] == url("request_detail", created.json()["id"])
    again = bob.post(url("request_list"), good, content_type="application/json")
    assert again.status_code in (400, 409)  # the challenge is single-use, the request a duplicate
    assert DelegationRequest.objects.count() == 1


def test_a_stale_decision_is_a_409(repository, people):
    request = submit_request(repository, people["bob"])
    services.request_reject(request_id=request.pk, acting_user=people["olga"], comment="no")
    answer = api(people["alice"]).post(
        url("request_approve", request.pk), {}, content_type="application/json"
    )
    assert_error(answer, 409, "illegal_transition")


def test_members_see_their_requests_and_owners_their_queue(repository, people):
    mine = submit_request(repository, people["bob"])
    listed = api(people["bob"]).get(url("request_list")).json()
    assert listed["count"] == 1
    assert listed["results"][0]["id"] == mine.pk
    assert listed["results"][0]["signing_steps"] == []
    queue = api(people["alice"]).get(url("queue"), {"team": "qa"}).json()
    assert [row["id"] for row in queue["results"]] == [mine.pk]
    assert api(people["alice"]).get(url("queue"), {"team": "dev"}).json()["count"] == 0
    assert api(people["alice"]).get(url("queue"), {"repository": "x"}).json()["count"] == 0
    repositories = api(people["alice"]).get(url("repository_list")).json()["results"]
    assert [(r["gun"], r["owned"]) for r in repositories] == [(repository.gun, True)]


def test_the_token_page_shows_a_new_token_once_and_revokes(client, repository, people):
    bob = make_user("bobby", teams=("qa",))
    client.force_login(bob)
    page = client.post(reverse("delegations:token_list"), {"name": "pipeline", "expires_days": 30})
    secret = page.context["secret"]
    assert secret.startswith("dpt_")
    assert secret in page.content.decode()
    assert page["Cache-Control"] == "no-store"
    again = client.get(reverse("delegations:token_list")).content.decode()
    assert secret not in again
    assert "pipeline" in again
    token = ApiToken.objects.get(user=bob)
    client.post(reverse("delegations:token_revoke", args=[token.pk]))
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert_error(
        Client(headers={"Authorization": f"Bearer {secret}"}).get(url("request_list")),
        401,
        "authentication_failed",
    )
    # Another person's token cannot be revoked from here.
    other, _ = services.api_token_create(user=people["bob"], name="theirs", expires_days=None)
    client.post(reverse("delegations:token_revoke", args=[other.pk]))
    assert ApiToken.objects.get(pk=other.pk).revoked_at is None

"""With PORTAL_UCP_URL, a request's certificate must carry one of the requester's client-bundle
keys as UCP lists them (the stand-in of UCP's account API, stack/dtr_standin.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from django.urls import reverse

from delegations import dtr
from delegations.exceptions import InvalidInput, ServiceUnavailable
from delegations.models import DelegationRequest
from stack.dtr_standin import DtrStandIn, dtr_standin_service
from tests.factories import PASSWORD, make_bundle, signed_form_data, submit_request

SERVICE = "svc-portal"
SERVICE_PASSWORD = secrets.token_urlsafe(16)  # made at run time


def public_pem(bundle) -> str:
    return (
        bundle.certificate.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture
def ucp() -> Iterator[DtrStandIn]:
    registry = DtrStandIn()
    registry.account_add(SERVICE, SERVICE_PASSWORD)
    registry.account_add("bob", "bob-password")
    with dtr_standin_service(registry) as running:
        yield running


@pytest.fixture
def ucp_configured(ucp, settings) -> DtrStandIn:
    settings.PORTAL_UCP_URL = ucp.url
    settings.PORTAL_UCP_USERNAME, settings.PORTAL_UCP_PASSWORD = SERVICE, SERVICE_PASSWORD
    return ucp


def client_of(ucp: DtrStandIn, password: str = SERVICE_PASSWORD) -> dtr.UcpClient:
    return dtr.UcpClient(ucp.url, username=SERVICE, password=password, timeout=5)


def test_every_page_of_keys_is_read_after_signing_in_once(ucp, monkeypatch):
    bundles = [make_bundle("bob") for _ in range(12)]
    for number, bundle in enumerate(bundles):
        ucp.public_key_add("bob", public_pem(bundle), label=f"laptop {number}")
    monkeypatch.setattr(dtr.ucp, "PAGE_SIZE", 5)
    client = client_of(ucp)

    keys = client.bundle_keys("bob")

    expected = {
        bundle.certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for bundle in bundles
    }
    assert set(keys) == expected
    assert len(keys) == 12
    assert [call.path for call in ucp.recorded].count("/auth/login") == 1
    assert [call.query.get("limit") for call in ucp.recorded[1:]] == [["5"]] * 3


def test_an_expired_session_is_renewed_once_and_refused_credentials_say_which(ucp):
    client = client_of(ucp)
    client.bundle_keys("bob")
    ucp.sessions.clear()  # UCP forgot the session
    assert client.bundle_keys("bob") == []
    assert [call.path for call in ucp.recorded].count("/auth/login") == 2

    with pytest.raises(dtr.DtrAuthenticationFailed, match="PORTAL_UCP_PASSWORD"):
        client_of(ucp, password="not-" + SERVICE_PASSWORD).bundle_keys("bob")
    with pytest.raises(dtr.DtrNotFound, match="NO_SUCH_ACCOUNT"):
        client.bundle_keys("nobody")


@pytest.mark.django_db
def test_a_certificate_of_a_bundle_ucp_lists_is_accepted(ucp_configured, repository, people):
    bundle = make_bundle("bob")
    ucp_configured.public_key_add("bob", public_pem(bundle))
    assert submit_request(repository, people["bob"], bundle=bundle).status == "pending"


@pytest.mark.django_db
def test_a_key_ucp_does_not_list_is_refused_saying_so_and_nothing_is_kept(
    ucp_configured, repository, people, client
):
    ucp_configured.public_key_add("bob", public_pem(make_bundle("bob")))  # another bundle
    with pytest.raises(InvalidInput, match="UCP does not list this certificate's key") as raised:
        submit_request(repository, people["bob"])
    assert raised.value.field == "certificate"

    client.login(username="bob", password=PASSWORD)
    page = client.post(
        reverse("delegations:request_create"),
        signed_form_data(client, repository, make_bundle("bob")),
    )
    assert page.status_code == 400  # the form again, with the reason
    assert "UCP does not list this certificate&#x27;s key" in page.content.decode()
    assert not DelegationRequest.objects.exists()


@pytest.mark.django_db
def test_with_ucp_down_nothing_is_saved_and_the_member_is_told_to_try_again(
    ucp_configured, repository, people
):
    ucp_configured.fail_with = 503
    with pytest.raises(ServiceUnavailable, match="try again in a minute"):
        submit_request(repository, people["bob"])
    assert not DelegationRequest.objects.exists()


@pytest.mark.django_db
def test_with_the_portals_ucp_account_refused_the_member_is_not_told_to_retry(
    ucp_configured, repository, people, settings
):
    settings.PORTAL_UCP_PASSWORD = "not-" + SERVICE_PASSWORD
    with pytest.raises(ServiceUnavailable, match="until the portal's administrators fix it"):
        submit_request(repository, people["bob"])
    assert not DelegationRequest.objects.exists()

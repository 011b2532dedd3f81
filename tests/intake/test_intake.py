"""Whose certificate it is: the UCP CA chain, the subject, proof of possession, no duplicates."""

from __future__ import annotations

import base64
import html
import re
import subprocess
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from delegations import selectors, services
from delegations.checks import ucp_ca_bundle_readable
from delegations.demo.bundles import ClientCA
from delegations.exceptions import InvalidInput
from delegations.intake.possession import PossessionProof, challenge_issue, openssl_command
from delegations.models import AuditEvent, Delegation, DelegationRequest, RequestStatus
from tests.factories import make_bundle, make_user, submission, submit_request

pytestmark = pytest.mark.django_db


def refusal(repository, requester, bundle=None, **changes) -> InvalidInput:
    """The error `request_submit` raises for a submission with `changes`; nothing is stored."""
    before = (DelegationRequest.objects.count(), AuditEvent.objects.count())
    with pytest.raises(InvalidInput) as raised:
        services.request_submit(**{**submission(repository, requester, bundle=bundle), **changes})
    assert (DelegationRequest.objects.count(), AuditEvent.objects.count()) == before
    return raised.value


def submit(repository, requester, bundle, **changes):
    return services.request_submit(
        **{**submission(repository, requester, bundle=bundle), **changes}
    )


def mark_delegated(request: DelegationRequest) -> Delegation:
    """What the worker records once a request's key is in both roles (no Notary needed here)."""
    DelegationRequest.objects.filter(pk=request.pk).update(status=RequestStatus.DELEGATED)
    delegation = Delegation.of_request(request, since=timezone.now())
    delegation.save()
    return delegation


@pytest.fixture
def people(people):
    """The suite's people, with bob in a second team (dev) and carol in qa."""
    people["bob"].groups.add(Group.objects.get_or_create(name="team:dev")[0])
    return {**people, "carol": make_user("carol", teams=("qa",))}


@pytest.fixture
def ucp_ca(settings, tmp_path) -> ClientCA:
    """A configured UCP client CA bundle (PORTAL_UCP_CA_BUNDLE), as at a real site."""
    ca = ClientCA.create(now=timezone.now())
    path = tmp_path / "ucp-ca.pem"
    path.write_bytes(ca.certificate.public_bytes(Encoding.PEM))
    settings.PORTAL_UCP_CA_BUNDLE = str(path)
    return ca


# -- identity --------------------------------------------------------------------------------------


def test_a_certificate_of_another_user_is_refused(repository, people):
    carols = make_bundle("carol")
    error = refusal(repository, people["bob"], carols)
    assert error.field == "certificate"
    assert "belongs to CN=carol, but you are signed in as bob" in error.message


def test_the_subject_matches_case_insensitively(repository, people):
    assert submit(repository, people["bob"], make_bundle("Bob")).status == RequestStatus.PENDING


def test_a_certificate_with_two_common_names_is_refused(repository, people):
    two_names = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "bob"),
            x509.NameAttribute(NameOID.COMMON_NAME, "alice"),
        ]
    )
    bundle = make_bundle(subject=two_names)
    error = refusal(repository, people["bob"], bundle)
    assert "has 2 CN values" in error.message


def test_the_subject_attribute_is_configurable(repository, people, settings):
    settings.PORTAL_CERTIFICATE_SUBJECT_ATTRIBUTE = "emailAddress"
    error = refusal(repository, people["bob"])
    assert "has no emailAddress values" in error.message


def test_a_certificate_from_the_configured_ucp_ca_is_accepted(repository, people, ucp_ca):
    request = submit(repository, people["bob"], make_bundle("bob", ca=ucp_ca))
    assert request.status == RequestStatus.PENDING


def test_a_certificate_from_another_ca_is_refused(repository, people, ucp_ca):
    other = make_bundle("bob", ca=ClientCA.create(now=timezone.now(), common_name="Elsewhere CA"))
    error = refusal(repository, people["bob"], other)
    assert error.field == "certificate"
    assert "issued by CN=Elsewhere CA, not by your UCP's client CA (CN=UCP Client Root CA)" in (
        error.message
    )


def test_a_forged_issuer_with_the_ucp_ca_name_is_refused(repository, people, ucp_ca):
    # Same subject name as the real CA, a different key: only the signature tells them apart.
    impostor = ClientCA.create(now=timezone.now(), common_name="UCP Client Root CA")
    forged = make_bundle("bob", ca=impostor)
    error = refusal(repository, people["bob"], forged)
    assert "does not verify against it" in error.message


# -- proof of possession ---------------------------------------------------------------------------


def test_a_signature_by_a_different_key_is_refused(repository, people):
    bundle, other = make_bundle("bob"), make_bundle("bob")
    proof = other.prove(people["bob"])
    error = refusal(
        repository,
        people["bob"],
        bundle,
        proof=proof,
    )
    assert error.field == "possession_signature"
    assert "not made with the private key of this certificate" in error.message


def test_a_challenge_is_used_once(repository, people):
    bob = people["bob"]
    challenge = challenge_issue(bob, now=timezone.now())
    first = make_bundle("bob")
    submit(repository, bob, first, proof=first.prove(bob, challenge=challenge))
    second = make_bundle("bob")
    with pytest.raises(InvalidInput) as raised:
        submit(repository, bob, second, team="dev", proof=second.prove(bob, challenge=challenge))
    assert "already used" in raised.value.message
    assert DelegationRequest.objects.count() == 1


def test_a_stale_challenge_is_refused(repository, people, settings):
    settings.PORTAL_POSSESSION_CHALLENGE_SECONDS = 600
    bob, bundle = people["bob"], make_bundle("bob")
    stale = bundle.prove(bob, now=timezone.now() - timedelta(seconds=601))
    error = refusal(repository, bob, bundle, proof=stale)
    assert "challenge has expired or is not valid" in error.message
    fresh = bundle.prove(bob, now=timezone.now() - timedelta(seconds=590))
    assert submit(repository, bob, bundle, proof=fresh).possession_nonce


def test_a_tampered_challenge_is_refused(repository, people):
    bob, bundle = people["bob"], make_bundle("bob")
    challenge = challenge_issue(bob, now=timezone.now())
    tampered = challenge.replace(f".{bob.pk}.", f".{bob.pk + 1}.", 1)
    proof = bundle.prove(bob, challenge=tampered)
    error = refusal(repository, bob, bundle, proof=proof)
    assert "challenge has expired or is not valid" in error.message


def test_a_challenge_of_another_user_is_refused(repository, people):
    bob, carol = people["bob"], people["carol"]
    bundle = make_bundle("bob")
    proof = bundle.prove(bob, challenge=challenge_issue(carol, now=timezone.now()))
    error = refusal(repository, bob, bundle, proof=proof)
    assert "challenge has expired or is not valid" in error.message


@pytest.mark.parametrize("signature", ["", "   ", "not base64!", "QUJD" * 1000])
def test_a_missing_or_malformed_signature_says_what_to_paste(repository, people, signature):
    proof = PossessionProof(
        challenge=challenge_issue(people["bob"], now=timezone.now()), signature=signature
    )
    error = refusal(repository, people["bob"], proof=proof)
    assert error.field == "possession_signature"


def test_webcrypto_raw_and_openssl_der_ecdsa_signatures_are_both_accepted(repository, people):
    bob = people["bob"]
    raw_bundle = make_bundle("bob", curve=ec.SECP384R1())
    challenge = challenge_issue(bob, now=timezone.now())
    r, s = decode_dss_signature(raw_bundle.sign(challenge.encode()))
    raw = base64.b64encode(r.to_bytes(48, "big") + s.to_bytes(48, "big")).decode()
    assert submit(repository, bob, raw_bundle, proof=PossessionProof(challenge, raw)).pk

    der_bundle = make_bundle("bob")
    der = der_bundle.prove(bob)
    # `openssl base64` without -A wraps its output; the line breaks do not matter.
    wrapped = "\n".join(der.signature[i : i + 20] for i in range(0, len(der.signature), 20))
    proof = PossessionProof(der.challenge, wrapped + "\n")
    assert submit(repository, bob, der_bundle, team="dev", proof=proof).pk


def test_rsa_keys_prove_with_pkcs1_signatures(repository, people):
    bundle = make_bundle("bob", key="rsa")
    assert submit(repository, people["bob"], bundle).possession_nonce


def test_the_openssl_command_on_the_page_makes_an_accepted_signature(repository, people, tmp_path):
    bob = people["bob"]
    bundle = make_bundle("bob")
    (tmp_path / "key.pem").write_bytes(bundle.key_pem)
    challenge = challenge_issue(bob, now=timezone.now())
    printed = subprocess.run(
        ["bash", "-c", openssl_command(challenge)],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    request = submit(repository, bob, bundle, proof=PossessionProof(challenge, printed))
    assert request.possession_nonce


def test_without_the_requirement_no_signature_is_needed_but_a_wrong_one_still_fails(
    repository, people, settings
):
    settings.PORTAL_REQUIRE_PROOF_OF_POSSESSION = False
    bob = people["bob"]
    request = submit(repository, bob, make_bundle("bob"), proof=None)
    assert request.possession_nonce is None
    other = make_bundle("bob")
    with pytest.raises(InvalidInput):
        submit(repository, bob, make_bundle("bob"), team="dev", proof=other.prove(bob))


# -- duplicates ------------------------------------------------------------------------------------


def test_a_second_request_for_the_same_repository_and_team_links_to_the_first(repository, people):
    first = submit_request(repository, people["bob"])
    error = refusal(repository, people["bob"])
    assert f"request #{first.pk} is pending" in error.message
    assert error.link == (f"/requests/{first.pk}/", f"Open request #{first.pk}")


def test_a_key_already_delegated_is_refused(repository, people):
    bundle = make_bundle("bob")
    first = submit(repository, people["bob"], bundle)
    mark_delegated(first)
    again = make_bundle("bob", same_key_as=bundle)
    error = refusal(repository, people["bob"], again, team="dev")
    assert "already delegated on" in error.message
    assert error.link is not None


def test_someone_elses_key_in_an_open_request_is_refused_without_a_link(repository, people):
    bundle = make_bundle("bob")
    submit(repository, people["bob"], bundle)
    copy = make_bundle("carol", same_key_as=bundle)
    error = refusal(repository, people["carol"], copy)
    assert "for another member" in error.message
    assert error.link is None


def test_a_race_past_the_duplicate_check_is_caught_by_the_database(repository, people, monkeypatch):
    first = submit_request(repository, people["bob"])
    real = selectors.conflicting_request
    calls = []

    def blind_once(**kwargs):
        calls.append(kwargs)
        return None if len(calls) == 1 else real(**kwargs)

    monkeypatch.setattr(selectors, "conflicting_request", blind_once)
    error = refusal(repository, people["bob"])
    assert f"request #{first.pk}" in error.message
    assert len(calls) == 2


# -- the form ----------------------------------------------------------------------------------


def challenge_on(page: str) -> str:
    return html.unescape(re.search(r'name="challenge" value="([^"]+)"', page).group(1))


def post_form(client, repository, bundle, *, challenge: str, signature: str | None = None, **extra):
    if signature is None:
        signature = base64.b64encode(bundle.sign(challenge.encode())).decode()
    data = {
        "repository": repository.pk,
        "team": "qa",
        "reason": "qa releases",
        "certificate": SimpleUploadedFile("cert.pem", bundle.cert_pem),
        "challenge": challenge,
        "possession_signature": signature,
        **extra,
    }
    return client.post(reverse("delegations:request_create"), data)


def test_the_form_shows_the_openssl_command_for_its_challenge(client, repository, people):
    client.force_login(people["bob"])
    page = client.get(reverse("delegations:request_create")).content.decode()
    challenge = challenge_on(page)
    assert html.escape(openssl_command(challenge)) in page
    assert ">Signature</label>" in page


def test_a_signature_survives_an_unrelated_error_but_not_a_refused_signature(
    client, repository, people
):
    client.force_login(people["bob"])
    bundle = make_bundle("bob")
    challenge = challenge_on(client.get(reverse("delegations:request_create")).content.decode())
    no_reason = post_form(client, repository, bundle, challenge=challenge, reason="")
    assert no_reason.status_code == 400
    assert challenge_on(no_reason.content.decode()) == challenge

    wrong = post_form(client, repository, bundle, challenge=challenge, signature="QUJD")
    assert wrong.status_code == 400
    assert challenge_on(wrong.content.decode()) != challenge

    assert post_form(client, repository, bundle, challenge=challenge).status_code == 302


def test_a_duplicate_request_links_to_the_pending_one(client, repository, people):
    first = submit_request(repository, people["bob"])
    client.force_login(people["bob"])
    challenge = challenge_on(client.get(reverse("delegations:request_create")).content.decode())
    response = post_form(client, repository, make_bundle("bob"), challenge=challenge)
    assert response.status_code == 400
    link = f'href="/requests/{first.pk}/"'
    assert link in response.content.decode()


def test_a_certificate_expiring_within_six_months_is_accepted_with_a_warning(
    client, repository, people
):
    client.force_login(people["bob"])
    bundle = make_bundle("bob", not_after=timezone.now() + timedelta(days=90))
    challenge = challenge_on(client.get(reverse("delegations:request_create")).content.decode())
    response = post_form(client, repository, bundle, challenge=challenge)
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "This certificate expires on" in page
    assert "expires in" in page


def test_an_unreadable_ucp_ca_bundle_is_reported_at_start_up(settings, tmp_path):
    settings.PORTAL_UCP_CA_BUNDLE = str(tmp_path / "missing.pem")
    assert [error.id for error in ucp_ca_bundle_readable(None)] == ["delegations.E001"]
    (tmp_path / "missing.pem").write_text("not a certificate")
    assert "holds no PEM certificate" in ucp_ca_bundle_readable(None)[0].msg


# -- review findings ---------------------------------------------------------------------------


def test_a_private_key_pasted_as_signature_or_reason_is_refused_and_not_echoed(
    client, repository, people
):
    client.force_login(people["bob"])
    bundle = make_bundle("bob")
    challenge = challenge_on(client.get(reverse("delegations:request_create")).content.decode())
    for field in ("possession_signature", "reason"):
        response = post_form(
            client, repository, bundle, challenge=challenge, **{field: bundle.key_pem.decode()}
        )
        assert response.status_code == 400
        page = response.content.decode()
        assert "This file contains a private key" in page or "private key" in page
        assert "PRIVATE KEY" not in page
        assert bundle.key_pem.decode().splitlines()[1] not in page
    assert not DelegationRequest.objects.exists()


def test_a_server_certificate_is_not_a_client_bundle(repository, people):
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    bundle = make_bundle("bob")
    server_only = (
        x509.CertificateBuilder()
        .subject_name(bundle.certificate.subject)
        .issuer_name(bundle.certificate.issuer)
        .public_key(bundle.certificate.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(bundle.certificate.not_valid_before_utc)
        .not_valid_after(bundle.certificate.not_valid_after_utc)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(bundle.ca.key, hashes.SHA256())
    )
    bundle.cert_pem = server_only.public_bytes(Encoding.PEM)
    error = refusal(repository, people["bob"], bundle)
    assert "not for client authentication" in error.message


def test_unicode_case_folding_does_not_match_names(repository, db):
    # "baß" folds to "bass" under casefold(); they are two accounts, not one.
    sharp_s = make_user("baß", teams=("qa",))
    error = refusal(repository, sharp_s, make_bundle("bass"))
    assert "belongs to CN=bass" in error.message


def test_an_expired_ucp_ca_is_reported_as_the_administrators_problem(
    repository, people, settings, tmp_path
):
    now = timezone.now()
    old_ca = ClientCA.create(now=now - timedelta(days=6 * 365))
    path = tmp_path / "old-ca.pem"
    path.write_bytes(old_ca.certificate.public_bytes(Encoding.PEM))
    settings.PORTAL_UCP_CA_BUNDLE = str(path)
    error = refusal(repository, people["bob"], make_bundle("bob", ca=old_ca))
    assert "copy of the UCP client CA has expired" in error.message


def test_a_challenge_from_a_clock_slightly_ahead_is_accepted(repository, people):
    bob, bundle = people["bob"], make_bundle("bob")
    ahead = bundle.prove(bob, now=timezone.now() + timedelta(seconds=30))
    assert submit(repository, bob, bundle, proof=ahead).possession_nonce


def test_a_challenge_about_to_expire_is_replaced_when_the_form_comes_back(
    client, repository, people, settings
):
    settings.PORTAL_POSSESSION_CHALLENGE_SECONDS = 600
    client.force_login(people["bob"])
    bundle = make_bundle("bob")
    nearly_stale = challenge_issue(people["bob"], now=timezone.now() - timedelta(seconds=500))
    response = post_form(client, repository, bundle, challenge=nearly_stale, reason="")
    assert response.status_code == 400
    assert challenge_on(response.content.decode()) != nearly_stale


def test_a_new_key_after_a_delegation_is_allowed_and_an_ended_delegation_frees_its_key(
    repository, people
):
    bundle = make_bundle("bob")
    first = submit(repository, people["bob"], bundle)
    delegation = mark_delegated(first)
    renewed = submit(repository, people["bob"], make_bundle("bob"))
    assert renewed.status == RequestStatus.PENDING
    Delegation.objects.filter(pk=delegation.pk).update(ended_at=timezone.now())
    again = make_bundle("bob", same_key_as=bundle)
    assert submit(repository, people["bob"], again, team="dev").status == RequestStatus.PENDING


def test_a_version_byte_out_of_range_is_a_form_error_not_a_crash(client, repository, people):
    der = bytearray(make_bundle("bob").certificate.public_bytes(Encoding.DER))
    version = der.index(b"\xa0\x03\x02\x01\x02") + 4  # [0] EXPLICIT INTEGER 2 (v3)
    der[version] = 0x37
    client.force_login(people["bob"])
    data = {
        "repository": repository.pk,
        "team": "qa",
        "reason": "r",
        "certificate": SimpleUploadedFile("cert.der", bytes(der)),
    }
    response = client.post(reverse("delegations:request_create"), data)
    assert response.status_code == 400
    assert "This is not a certificate" in response.content.decode()


def test_the_page_tells_the_browser_what_the_subject_must_say(client, people, repository, settings):
    client.force_login(people["bob"])
    page = client.get(reverse("delegations:request_create")).content.decode()
    assert 'data-subject-expected="bob"' in page
    settings.PORTAL_CERTIFICATE_SUBJECT_ATTRIBUTE = "emailAddress"
    page = client.get(reverse("delegations:request_create")).content.decode()
    assert 'data-subject-expected="bob@example.org"' in page
    assert 'data-subject-attribute="emailAddress"' in page

"""The forms as a new user meets them, in headless Chromium (issue 17, items 1 and 5): a request
with a last day, the lone repository and team chosen already, a form error that keeps the
dropped certificate with its signature, the request page that updates only its status part,
and the audit log that shows each event's facts once with the details on demand."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from django.utils import timezone
from playwright.sync_api import expect

from delegations import services
from delegations.models import Delegation, DelegationRequest, RequestStatus
from tests.factories import make_bundle, make_user, submit_request
from tests.test_browser import log_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def test_a_request_with_a_date_survives_a_form_error_with_its_certificate(
    browser, live_server, repository, tmp_path
):
    services.repository_update(
        repository_id=repository.pk,
        notary_url=repository.notary_url,
        owners_group=repository.owners_group,
        lifetime_days=(90, 30),
    )
    make_user("bob", teams=("qa",))
    bundle = make_bundle("bob")
    (tmp_path / "ucp-bundle-bob.zip").write_bytes(bundle.zip())
    today = timezone.localdate()

    bob = log_in(browser, live_server.url, "bob")
    bob.goto("/requests/new/")
    # One repository and one team to choose from: chosen already, with the repository's date.
    expect(bob.get_by_label("Repository")).to_have_value(str(repository.pk))
    expect(bob.get_by_label("Team")).to_have_value("qa")
    expect(bob.get_by_label("Until")).to_have_value((today + timedelta(days=30)).isoformat())

    bob.get_by_label("Certificate").set_input_files(tmp_path / "ucp-bundle-bob.zip")
    expect(bob.get_by_label("Signature")).not_to_have_value("")
    bob.get_by_role("button", name="Request delegation").click()  # no reason given

    expect(bob.get_by_text("This field is required.")).to_be_visible()
    kept = bob.locator(".kept-certificate")
    expect(kept).to_contain_text("CN=bob")
    expect(bob.get_by_label("Signature")).not_to_have_value("")  # it goes with the certificate
    bob.get_by_label("Reason").fill("I publish the qa release images")
    bob.get_by_label("Until").fill((today + timedelta(days=60)).isoformat())
    bob.get_by_role("button", name="Request delegation").click()

    expect(bob.locator(".status")).to_have_text("Pending")
    request = DelegationRequest.objects.get()
    assert request.until == today + timedelta(days=60)
    assert request.certificate_sha256 == bundle.certificate.fingerprint(hashes.SHA256()).hex()
    assert request.possession_proven


def test_a_date_past_the_repositorys_longest_is_refused_on_the_page(
    browser, live_server, repository, tmp_path
):
    services.repository_update(
        repository_id=repository.pk,
        notary_url=repository.notary_url,
        owners_group=repository.owners_group,
        lifetime_days=(90, None),
    )
    make_user("bob", teams=("qa",))
    (tmp_path / "bundle.zip").write_bytes(make_bundle("bob").zip())

    bob = log_in(browser, live_server.url, "bob")
    bob.goto("/requests/new/")
    bob.get_by_label("Certificate").set_input_files(tmp_path / "bundle.zip")
    expect(bob.get_by_label("Signature")).not_to_have_value("")
    bob.get_by_label("Reason").fill("releases")
    bob.get_by_label("Until").fill((timezone.localdate() + timedelta(days=91)).isoformat())
    bob.get_by_role("button", name="Request delegation").click()

    expect(bob.get_by_role("alert")).to_contain_text("last at most 90 days")
    assert not DelegationRequest.objects.exists()


def test_the_request_page_updates_its_status_part_and_then_stops(
    browser, live_server, repository, people, run_jobs
):
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=people["alice"])

    bob = log_in(browser, live_server.url, "bob")
    bob.goto(f"/requests/{request.pk}/")
    expect(bob.locator(".status")).to_have_text("Approved")
    # Whatever the reader has done on the page stays: nothing reloads the whole page.
    bob.evaluate("window.notReloaded = true")
    fetched: list[str] = []
    bob.on("request", lambda sent: fetched.append(sent.url))

    run_jobs()  # the worker publishes

    expect(bob.locator(".status")).to_have_text("Delegated", timeout=15_000)
    expect(bob.get_by_role("heading", name="You can sign now")).to_be_visible()
    assert bob.evaluate("window.notReloaded") is True
    assert DelegationRequest.objects.get(pk=request.pk).status == RequestStatus.DELEGATED
    done = len(fetched)
    bob.wait_for_timeout(4_000)  # longer than the refresh interval
    assert len(fetched) == done  # done: it stopped asking


def test_the_audit_log_shows_each_events_facts_once_and_the_key_on_demand(
    browser, live_server, repository, people
):
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=people["alice"], comment="go ahead")

    alice = log_in(browser, live_server.url, "alice")
    alice.goto("/audit/")
    approved = alice.locator("tr", has=alice.get_by_text("request.approved", exact=True))
    expect(approved).to_contain_text("pending → approved")
    expect(approved).to_contain_text("go ahead")
    key_id = approved.get_by_text(request.canonical_key_id)
    expect(key_id).to_be_hidden()
    approved.get_by_text("Details").click()
    expect(key_id).to_be_visible()


def test_an_owner_finishes_an_access_review_on_its_page(
    browser, live_server, repository, people, run_jobs
):
    services.repository_update(
        repository_id=repository.pk,
        notary_url=repository.notary_url,
        owners_group=repository.owners_group,
        review_settings=(90, 14, "keep"),
    )
    carol = make_user("carol", teams=("qa",))
    for member in (people["bob"], carol):
        request = submit_request(repository, member)
        services.request_approve(request_id=request.pk, acting_user=people["olga"])
    run_jobs()
    services.reviews_run(now=timezone.now())

    alice = log_in(browser, live_server.url, "alice")
    alice.get_by_role("navigation", name="Main").get_by_role("link", name="Reviews").click()
    alice.get_by_role("link", name=re.compile(r"^#\d+$")).click()
    expect(alice.get_by_role("heading", name=re.compile("Access review"))).to_be_visible()

    bob_row = alice.locator("tr", has=alice.get_by_role("cell", name="bob", exact=True))
    bob_row.get_by_label("Comment").fill("ships the qa images")
    bob_row.get_by_role("button", name="Keep").click()
    expect(alice.get_by_role("status").first).to_contain_text("kept")
    carol_row = alice.locator("tr", has=alice.get_by_role("cell", name="carol", exact=True))
    carol_row.get_by_role("button", name="Revoke").click()  # no reason: refused, page says why
    expect(alice.locator(".message.error")).to_contain_text("Say why")
    carol_row.get_by_label("Comment").fill("moved to the platform team")
    carol_row.get_by_role("button", name="Revoke").click()

    expect(alice.get_by_text(re.compile(r"^Closed "))).to_be_visible()
    expect(bob_row).to_contain_text("Kept by alice")
    expect(carol_row).to_contain_text("Revoked by alice")
    assert Delegation.objects.get(member=carol).ending == "revoked"  # the worker takes it out


def test_the_until_field_follows_the_repository_chosen(browser, live_server, repository):
    other = services.repository_register(
        dtr_host="dtr.example.org",
        namespace=f"{repository.namespace}x",
        name="redis",
        notary_url=repository.notary_url,
        owners_group="owners:other/redis",
    )
    other = services.repository_initialise_trust(repository_id=other.pk)
    services.repository_update(
        repository_id=other.pk,
        notary_url=other.notary_url,
        owners_group=other.owners_group,
        lifetime_days=(60, 20),
    )
    make_user("bob", teams=("qa",))
    today = timezone.localdate()

    bob = log_in(browser, live_server.url, "bob")
    bob.goto("/requests/new/")
    until = bob.get_by_label("Until")
    expect(until).to_have_value("")  # two repositories: nothing chosen yet
    bob.get_by_label("Repository").select_option(str(other.pk))
    expect(until).to_have_value((today + timedelta(days=20)).isoformat())
    expect(until).to_have_attribute("max", (today + timedelta(days=60)).isoformat())
    bob.get_by_label("Repository").select_option(str(repository.pk))
    expect(until).to_have_value("")  # no limit there: as long as the certificate
    until.fill((today + timedelta(days=45)).isoformat())
    bob.get_by_label("Repository").select_option(str(other.pk))
    expect(until).to_have_value((today + timedelta(days=45)).isoformat())  # the member's own

"""The main flow in a real browser (headless Chromium), driven by the pages' stable labels."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from delegations.notary import PublicKey
from tests.factories import PASSWORD, make_bundle, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def nav(page: Page):
    return page.get_by_role("navigation", name="Main")


def log_in(browser: Browser, base_url: str, username: str) -> Page:
    page = browser.new_context(base_url=base_url).new_page()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(nav(page).get_by_role("link", name="My requests")).to_be_visible()
    return page


def test_request_approve_and_sign_in_the_browser(
    browser, live_server, rq_worker, repository, notary_cli, tmp_path
):
    make_user("alice", teams=("it-ops",), owns=(repository.owners_group,))
    make_user("bob", teams=("qa",))
    bundle = make_bundle("bob")
    (tmp_path / "ucp-bundle-bob.zip").write_bytes(bundle.zip())

    bob = log_in(browser, live_server.url, "bob")
    expect(nav(bob).get_by_role("link", name="Approvals")).to_have_count(0)
    nav(bob).get_by_role("link", name="Request delegation").click()
    bob.get_by_label("Repository").select_option(label=repository.gun)
    bob.get_by_label("Team").select_option("qa")
    # The bundle as UCP downloads it: the page reads it, signs the challenge and sends cert.pem.
    bob.get_by_label("Certificate").set_input_files(tmp_path / "ucp-bundle-bob.zip")
    expect(bob.get_by_label("Signature")).not_to_have_value("")
    bob.get_by_label("Reason").fill("I publish the qa release images")
    bob.get_by_role("button", name="Request delegation").click()
    expect(bob.locator(".status")).to_have_text("Pending")
    request_url = bob.url

    alice = log_in(browser, live_server.url, "alice")
    nav(alice).get_by_role("link", name=re.compile(r"^Approvals")).click()
    expect(alice.get_by_role("heading", name=re.compile(r"bob → .*nginx"))).to_be_visible()
    alice.get_by_label("Comment").fill("Go ahead")
    alice.get_by_role("button", name="Approve").click()
    expect(alice.get_by_role("status").first).to_contain_text("approved")

    # The request page refreshes itself while the worker applies the delegation.
    bob.goto(request_url)
    expect(bob.locator(".status")).to_have_text("Delegated", timeout=30_000)
    canonical = PublicKey.from_certificate(bundle.certificate).canonical_id
    expect(bob.get_by_text(canonical)).to_be_visible()
    expect(bob.get_by_role("heading", name="You can sign now")).to_be_visible()
    assert notary_cli.delegations(repository.gun)["targets/qa"]["keys"] == [canonical]

"""The browser tests run under the portal's Content-Security-Policy (see the `browser` fixture):
the watcher sees a violation when there is one, and the API's reference page, whose assets
come from the sidecar package, loads without any."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.factories import make_user
from tests.test_browser import log_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def test_an_inline_script_is_refused_and_the_watcher_sees_it(browser, live_server):
    make_user("bob", teams=("qa",))
    page = log_in(browser, live_server.url, "bob")
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.injected = true'; document.body.appendChild(s); }"
    )
    assert page.evaluate("() => window.injected === undefined")
    page.wait_for_timeout(200)
    assert any("script-src" in text for text in browser.violations)
    browser.violations.clear()  # this one was made on purpose


def test_the_api_reference_page_loads_under_the_policy(browser, live_server):
    make_user("bob", teams=("qa",))
    page = log_in(browser, live_server.url, "bob")
    page.goto("/api/v1/docs/")
    expect(page.get_by_role("heading", name="Delegation portal API")).to_be_visible(timeout=20_000)
    expect(page.get_by_text("/api/v1/requests/", exact=True).first).to_be_visible()

"""An owner sets up a repository in a real browser and a member of qa ends up able to sign and
push (issue 15's browser test): register dev/redis (created in the DTR stand-in), initialise
its trust (the worker, a real rqworker), take the root key offline, and after a request is
approved the stand-in shows qa with read-write on dev/redis and the request page says so."""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
from playwright.sync_api import Page, expect

from delegations import services
from delegations.models import KeyRole, Repository
from tests.conftest import DTR_SERVICE_ACCOUNT, DTR_SERVICE_TOKEN
from tests.factories import make_bundle, make_user
from tests.test_browser import log_in, nav

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

PASSPHRASE = "offline root key passphrase"


@pytest.fixture
def worker_env(worker_env, dtr):
    """The worker grants DTR access as the service account."""
    return {
        **worker_env,
        "PORTAL_DTR_USERNAME": DTR_SERVICE_ACCOUNT,
        "PORTAL_DTR_TOKEN": DTR_SERVICE_TOKEN,
    }


def reload_until(page: Page, text: str | re.Pattern[str], *, timeout: float = 30) -> None:
    """Reload until the worker's result shows (pages that do not refresh themselves)."""
    deadline = time.monotonic() + timeout
    while True:
        if page.get_by_text(text).count():
            return
        if time.monotonic() > deadline:
            expect(page.get_by_text(text)).to_be_visible()  # fails with Playwright's report
        time.sleep(0.3)
        page.reload()


def test_an_owner_sets_up_dev_redis_and_a_member_can_sign_and_push(
    browser, live_server, rq_worker, dtr, notary_url, notary_cli, tmp_path
):
    # The notary-server lives for the whole session: a DTR host of its own keeps dev/redis new.
    dtr_host = f"dtr{uuid.uuid4().hex[:6]}.example.org"
    gun = f"{dtr_host}/dev/redis"
    services.repository_register(
        dtr_host=dtr_host,
        namespace="dev",
        name="nginx",
        notary_url=notary_url,
        dtr_url=dtr.url,
        owners_group="owners:dev/nginx",
    )  # an administrator's: registrars add repositories on a DTR the portal knows
    make_user("rita", teams=("it-ops",), owns=("registrars", "owners:dev/redis"))
    make_user("bob", teams=("qa",))
    bundle = make_bundle("bob")
    (tmp_path / "ucp-bundle-bob.zip").write_bytes(bundle.zip())

    # Register, creating the repository in DTR.
    rita = log_in(browser, live_server.url, "rita")
    nav(rita).get_by_role("link", name="Repositories").click()
    rita.get_by_role("link", name="Register a repository").click()
    rita.get_by_label("DTR host").fill(dtr_host)
    rita.get_by_label("Namespace").fill("dev")
    rita.get_by_label("Name:", exact=True).fill("redis")
    rita.get_by_label("Notary server").fill(notary_url)
    rita.get_by_label("Owners group").fill("owners:dev/redis")
    rita.get_by_label("Create it in DTR").check()
    rita.get_by_role("button", name="Register").click()
    expect(rita.get_by_role("heading", name=gun)).to_be_visible()
    assert dtr.repositories[("dev", "redis")].visibility == "private"

    # Initialise its trust: the worker makes the keys and publishes.
    rita.get_by_role("button", name="Initialise trust").click()
    # The key ID shows once the keys are made; this section once their publish is recorded.
    reload_until(rita, "Take the root key offline")
    repository = Repository.objects.get(dtr_host=dtr_host, namespace="dev", name="redis")
    root = repository.keys.get(role=KeyRole.ROOT)
    targets = repository.keys.get(role=KeyRole.TARGETS)
    expect(rita.locator("code.key-id")).to_have_text(root.canonical_key_id)
    # The notary CLI reads and verifies the new trust data; its root.json names the keys.
    notary_cli.run("list", gun)
    cached = notary_cli.home / "owner" / "tuf" / gun / "metadata" / "root.json"
    roles = json.loads(cached.read_text())["signed"]["roles"]
    assert roles["root"]["keyids"] == [root.tuf_key_id]
    assert roles["targets"]["keyids"] == [targets.tuf_key_id]

    # Take the root key offline.
    rita.get_by_label("Passphrase:", exact=True).fill(PASSPHRASE)
    rita.get_by_label("The passphrase again").fill(PASSPHRASE)
    rita.get_by_role("button", name="Prepare the root key file").click()
    reload_until(rita, "Download the root key file")
    with rita.expect_download() as downloading:
        rita.get_by_role("link", name="Download the root key file").click()
    key_file = tmp_path / downloading.value.suggested_filename
    downloading.value.save_as(key_file)
    rita.reload()
    rita.get_by_label("I stored the key file and its passphrase").check()
    rita.get_by_role("button", name="Delete the portal's root key").click()
    expect(rita.get_by_role("status").first).to_contain_text("no longer holds the root key")
    notary_cli.env["NOTARY_ROOT_PASSPHRASE"] = PASSPHRASE
    notary_cli.run("key", "import", str(key_file))
    assert root.canonical_key_id in notary_cli.run("key", "list").stdout
    assert not repository.keys.filter(role=KeyRole.ROOT).exists()

    # A member of qa asks, the owner approves, the worker delegates and grants push access.
    bob = log_in(browser, live_server.url, "bob")
    nav(bob).get_by_role("link", name="Request delegation").click()
    bob.get_by_label("Repository").select_option(label=gun)
    bob.get_by_label("Team").select_option("qa")
    bob.get_by_label("Certificate").set_input_files(tmp_path / "ucp-bundle-bob.zip")
    expect(bob.get_by_label("Signature")).not_to_have_value("")
    bob.get_by_label("Reason").fill("I publish the redis images")
    bob.get_by_role("button", name="Request delegation").click()
    expect(bob.locator(".status")).to_have_text("Pending")
    request_url = bob.url

    nav(rita).get_by_role("link", name=re.compile(r"^Approvals")).click()
    rita.get_by_role("button", name="Approve").click()
    expect(rita.get_by_role("status").first).to_contain_text("approved")

    bob.goto(request_url)
    expect(bob.locator(".status")).to_have_text("Delegated", timeout=30_000)
    reload_until(bob, "Team qa can push to dev/redis (read-write in DTR).")
    assert dtr.team_access("dev", "redis") == {"qa": "read-write"}
    keys = notary_cli.delegations(gun)
    assert len(keys["targets/releases"]["keys"]) == len(keys["targets/qa"]["keys"]) == 1

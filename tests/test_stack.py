"""`make run` as a newcomer uses it: the whole stack from its embedded defaults, over HTTP."""

from __future__ import annotations

import html
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import requests

from stack.processes import free_port, port_is_open
from tests.conftest import BASE_DIR, wait_for

pytestmark = pytest.mark.services


class Browser:
    """A logged-in HTTP session that fills in Django forms with their CSRF token."""

    def __init__(self, base_url: str, username: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.post("/accounts/login/", {"username": username, "password": "demo"})

    def get(self, path: str) -> str:
        response = self.session.get(self.base_url + path, timeout=10)
        response.raise_for_status()
        return response.text

    def post(
        self,
        path: str,
        data: dict,
        files: dict | None = None,
        page: str | None = None,
        keep_page: bool = False,
    ):
        if not keep_page:  # a form already fetched keeps its challenge
            self.get(page or path)
        data = {**data, "csrfmiddlewaretoken": self.session.cookies["csrftoken"]}
        response = self.session.post(
            self.base_url + path,
            data=data,
            files=files,
            headers={"Referer": self.base_url + (page or path)},
            timeout=30,
        )
        response.raise_for_status()
        return response


@pytest.fixture
def stack(tmp_path):
    ports = {name: free_port() for name in ("http", "redis", "notary", "dtr")}
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PORTAL_") and key != "DJANGO_SETTINGS_MODULE"
    }
    env.update(
        PORTAL_DATA_DIR=str(tmp_path / "var"),
        PORTAL_HTTP_PORT=str(ports["http"]),
        PORTAL_REDIS_PORT=str(ports["redis"]),
        PORTAL_NOTARY_PORT=str(ports["notary"]),
        PORTAL_DTR_PORT=str(ports["dtr"]),
    )
    output = (tmp_path / "stack.out").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "stack"],
        cwd=BASE_DIR,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{ports['http']}"
    try:
        wait_for(
            lambda: (
                "Press Ctrl-C" in (tmp_path / "stack.out").read_text() or process.poll() is not None
            ),
            what="the stack to start",
            timeout=120,
        )
        assert process.poll() is None, (tmp_path / "stack.out").read_text()
        yield base_url, process, ports, tmp_path / "stack.out"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(30)
        output.close()


def test_make_run_serves_the_demo_and_stops_cleanly_on_ctrl_c(stack):
    base_url, process, ports, output = stack
    facts = output.read_text()
    dtr_url = f"http://127.0.0.1:{ports['dtr']}"
    for fact in (base_url, "dtr.example.org/dev/nginx", dtr_url, "alice", "bob", "carol", "demo"):
        assert fact in facts

    login = requests.get(base_url + "/accounts/login/", timeout=10)
    assert login.status_code == 200
    assert ">Username</label>" in login.text

    bundles = output.parent / "var" / "demo-bundles"
    assert str(bundles) in facts
    with zipfile.ZipFile(bundles / "ucp-bundle-bob.zip") as bundle:
        assert sorted(bundle.namelist()) == ["ca.pem", "cert.pem", "cert.pub", "env.sh", "key.pem"]
        cert_pem, key_pem = bundle.read("cert.pem"), bundle.read("key.pem")

    bob, alice = Browser(base_url, "bob"), Browser(base_url, "alice")
    form = bob.get("/requests/new/")
    repository_id = re.search(r'<option value="(\d+)"[^>]*>dtr.example.org/dev/nginx', form).group(
        1
    )
    # The JavaScript-free way: the page's openssl command, run in the bundle's folder.
    command = html.unescape(re.search(r"<code[^>]*>(printf .*?)</code>", form, re.S).group(1))
    (output.parent / "key.pem").write_bytes(key_pem)
    signature = subprocess.run(
        ["bash", "-c", command], cwd=output.parent, check=True, capture_output=True, text=True
    ).stdout
    challenge = html.unescape(re.search(r'name="challenge" value="([^"]+)"', form).group(1))
    created = bob.post(
        "/requests/new/",
        {
            "repository": repository_id,
            "team": "qa",
            "reason": "try the portal",
            "challenge": challenge,
            "possession_signature": signature,
        },
        files={"certificate": ("cert.pem", cert_pem)},
        keep_page=True,
    )
    request_path = re.search(r"/requests/\d+/", created.url).group(0)
    assert "Pending" in created.text

    # The worker dies (SIGKILL): make run restarts it, as compose would, and says so.
    os.kill(_child_running(process.pid, "rqworker"), signal.SIGKILL)
    wait_for(
        lambda: "rqworker stopped (exit status -9); restarting it" in output.read_text(),
        what="make run to restart the worker",
    )

    alice.post(request_path + "approve/", {"comment": "go"}, page=request_path)
    status = re.compile(r'class="status status-(\w+)"')
    wait_for(
        lambda: status.search(alice.get(request_path)).group(1) in ("delegated", "failed"),
        what="the worker to apply the delegation",
    )
    assert "bob can sign now" in alice.get(request_path)
    assert "You can sign now" in bob.get(request_path)
    # The stand-in DTR gave team qa push access after the publish.
    wait_for(
        lambda: "Team qa can push to dev/nginx (read-write in DTR)." in bob.get(request_path),
        what="the worker to give team qa push access in the stand-in DTR",
    )

    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0
    time.sleep(0.2)
    assert not any(port_is_open(port) for port in ports.values())
    stopped = "Stopped: web, rqcron, rqworker, DTR stand-in, notary-server, redis-server."
    assert stopped in output.read_text()


def _child_running(parent: int, command_part: str) -> int:
    """The PID of `parent`'s child process whose command line contains `command_part`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        # The parent PID is the second field after the parenthesised command name.
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and command_part in command:
            return int(entry.name)
    raise AssertionError(f"no child of {parent} runs {command_part}")

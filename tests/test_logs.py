"""Structured logs (issue 16, item 4): JSON lines with a request ID that follows an approval
into its job and its publish. (tests/conftest.py checks every record of the whole session for
secrets.)"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
from django.urls import reverse

from delegations.monitoring.logs import JsonFormatter, RequestIdFilter
from tests.conftest import BASE_DIR
from tests.factories import submit_request

pytestmark = pytest.mark.django_db


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.addFilter(RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected():
    handler = Collected()
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.mark.django_db(transaction=True)
def test_a_request_id_follows_an_approval_into_its_job_and_publish(
    client, repository, people, run_jobs, collected
):
    # Transactional, as in production: the approval's job is queued when its transaction
    # commits, still inside the web request.
    request = submit_request(repository, people["bob"])
    client.force_login(people["alice"])
    answer = client.post(
        reverse("delegations:request_approve", args=[request.pk]),
        {"comment": "ok"},
        headers={"X-Request-ID": "approval-7f3a9c"},
    )
    assert answer["X-Request-ID"] == "approval-7f3a9c"

    run_jobs()

    published = [r for r in collected.records if r.getMessage().startswith("published ")]
    assert len(published) == 1
    assert published[0].request_id == "approval-7f3a9c"
    assert repository.gun in published[0].getMessage()


def test_a_request_gets_an_id_of_its_own_unless_it_brings_a_plain_one(client):
    mine = client.get("/healthz")["X-Request-ID"]
    assert len(mine) == 32
    assert client.get("/healthz")["X-Request-ID"] != mine
    for offered in ("bad id with spaces", "x" * 65, "short", "<script>"):
        answer = client.get("/healthz", headers={"X-Request-ID": offered})
        assert answer["X-Request-ID"] != offered


def test_json_lines_carry_time_level_logger_message_and_request_id():
    record = logging.LogRecord(
        "delegations.x", logging.WARNING, __file__, 1, "hello %s", ("there",), None
    )
    record.request_id = "abc12345"
    record.repository = "dtr.example.org/dev/nginx"
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "WARNING"
    assert line["logger"] == "delegations.x"
    assert line["message"] == "hello there"
    assert line["request_id"] == "abc12345"
    assert line["repository"] == "dtr.example.org/dev/nginx"
    assert line["time"].endswith("+00:00")


def test_portal_log_format_json_makes_every_line_json(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PORTAL_LOG")},
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PORTAL_LOG_FORMAT": "json",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, logging; django.setup(); "
            "logging.getLogger('delegations.probe').warning('one %s', 'line')",
        ],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(text) for text in result.stderr.splitlines() if text.strip()]
    assert (line["logger"], line["message"], line["request_id"]) == (
        "delegations.probe",
        "one line",
        "",
    )


def test_the_session_wide_watch_sees_a_secret_in_any_record():
    from tests.conftest import LEAKS

    marker = "-----BEGIN EC " + "PRIVATE KEY-----"  # spelled apart: no key text in the repository
    logging.getLogger("delegations.probe").warning("looked at %s", marker)
    logging.getLogger("elsewhere").error("token dpt_" + "x" * 30)
    found, LEAKS.found = LEAKS.found, []  # made on purpose; the watch would fail this test
    assert len(found) == 2
    assert "delegations.probe" in found[0]

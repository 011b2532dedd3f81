"""Real services for the tests, on free loopback ports, stopped afterwards.

- `redis_url`: a redis-server of the session; `rq_queue` points django-rq at it, emptied.
- `notary_url`: a notary-server (memory storage) of the session.
- `notary_cli`: the `notary` command line client, the independent checker of what we publish.
- `smtp_server`: an SMTP server (aiosmtpd) that keeps what it receives.
- `rq_worker`: a real `manage.py rqworker` process on the test database, mailing `smtp_server`.
- `browser`: headless Chromium (Debian's), driven by Playwright, per test module.
"""

from __future__ import annotations

import email
import logging
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import django_rq
import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, sync_playwright
from rq import SimpleWorker

from delegations import directory, services
from stack.dtr_standin import DtrStandIn, dtr_standin_service
from stack.processes import LOOPBACK, free_port, notary_service, redis_service
from tests.directory_server import DirectoryServer
from tests.directory_settings import configure_directory
from tests.factories import PASSWORD, make_user

BASE_DIR = Path(__file__).resolve().parent.parent
NOTARY_PASSPHRASE = "test-passphrase"
WAIT_SECONDS = 60


def wait_for(predicate: Callable[[], object], *, what: str, timeout: float = WAIT_SECONDS):
    """Poll until `predicate` returns something true; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def service_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


# -- secrets never logged -------------------------------------------------------------------------


class LeakWatch(logging.Handler):
    """Every log record of the session, in this process and in the processes the tests start
    (their log files), is checked for what must never be logged: private key PEM, the tests'
    passwords, API token secrets, session cookies, bearer tokens. Each test fails that let
    one through (see `no_secret_logged`)."""

    PATTERNS = (
        re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"),
        re.compile(r"\bdpt_[A-Za-z0-9_-]{20,}"),
        re.compile(r"sessionid=[a-z0-9]{20,}"),
        re.compile(r"Bearer [A-Za-z0-9._~+/=-]{16,}"),
    )

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.found: list[str] = []
        self.secrets = [PASSWORD, NOTARY_PASSPHRASE]

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        self.scan(text, where=f"a {record.levelname} record of {record.name}")

    def scan(self, text: str, *, where: str) -> None:
        for secret in self.secrets:
            if secret in text:
                self.found.append(f"{where} holds the test secret {secret!r}")
        for pattern in self.PATTERNS:
            if match := pattern.search(text):
                self.found.append(f"{where} holds {match.group(0)[:40]!r}…")


LEAKS = LeakWatch()
logging.getLogger().addHandler(LEAKS)


@pytest.fixture(autouse=True)
def no_secret_logged() -> Iterator[None]:
    root = logging.getLogger()
    yield
    found, LEAKS.found = LEAKS.found, []
    assert found == [], "secrets reached the logs: " + "; ".join(found)
    if LEAKS not in root.handlers:
        # Something reconfigured logging (a dictConfig replaces the root's handlers): watch on,
        # and say which test it was, since the watch missed what it logged.
        root.addHandler(LEAKS)
        pytest.fail("this test took the secret watch off the root logger", pytrace=False)


# -- redis and the queue --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url(service_dir: Path) -> Iterator[str]:
    port = free_port()
    with redis_service(port=port, data_dir=service_dir / "redis", durable=False):
        yield f"redis://{LOOPBACK}:{port}/0"


@pytest.fixture
def rq_queue(redis_url: str, settings):
    settings.RQ_QUEUES = {"default": {**settings.RQ_QUEUES["default"], "URL": redis_url}}
    queue = django_rq.get_queue("default")
    queue.connection.flushdb()
    yield queue
    queue.connection.flushdb()


@pytest.fixture
def run_jobs(rq_queue) -> Callable[[], None]:
    """Run the queued jobs in this process (a real RQ worker, without forking)."""

    def run() -> None:
        SimpleWorker(
            [rq_queue], connection=rq_queue.connection, serializer=rq_queue.serializer
        ).work(burst=True)

    return run


# -- notary ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def notary_url(service_dir: Path) -> Iterator[str]:
    port = free_port()
    with notary_service(port=port, data_dir=service_dir / "notary"):
        yield f"http://{LOOPBACK}:{port}"


class NotaryCLI:
    """The `notary` command against the test server, one trust directory per person."""

    def __init__(
        self,
        server_url: str,
        home: Path,
        *,
        env: dict[str, str] | None = None,
        options: tuple[str, ...] = (),
    ) -> None:
        self.server_url = server_url
        self.home = home
        self.env = env or {}  # e.g. NOTARY_AUTH for a server with token auth
        self.options = options  # e.g. ("--tlscacert", path) for a server with TLS
        home.mkdir(parents=True, exist_ok=True)

    def run(self, *args: str, person: str = "owner", check: bool = True, input: str | None = None):
        env = {
            **os.environ,
            "NOTARY_ROOT_PASSPHRASE": NOTARY_PASSPHRASE,
            "NOTARY_TARGETS_PASSPHRASE": NOTARY_PASSPHRASE,
            "NOTARY_SNAPSHOT_PASSPHRASE": NOTARY_PASSPHRASE,
            "NOTARY_DELEGATION_PASSPHRASE": NOTARY_PASSPHRASE,
            **self.env,
        }
        home = str(self.home / person)
        command = ["notary", "-d", home, "-s", self.server_url, *self.options, *args]
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=60, input=input
        )
        if check and result.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def delegations(self, gun: str) -> dict[str, dict[str, object]]:
        """`notary delegation list` as {role: {"paths": [..], "keys": [ids], "threshold": str}}.

        The CLI prints a table whose cells can run over several lines (one path or key per
        line) and can be blank, so cells are cut at the header's column positions.
        """
        # Split on newlines only: a path may hold U+2028 or other characters splitlines() breaks on.
        rows = self.run("delegation", "list", gun).stdout.split("\n")
        header = next((i for i, line in enumerate(rows) if line.startswith("ROLE ")), None)
        if header is None:
            return {}
        starts = [rows[header].index(title) for title in ("PATHS", "KEY IDS", "THRESHOLD")]
        roles: dict[str, dict[str, object]] = {}
        current: dict[str, object] = {}
        for line in rows[header + 2 :]:
            if not line.strip(" "):
                continue
            bounds = zip([0, *starts], [*starts, len(line)], strict=True)
            role, paths, key, threshold = (line[a:b].strip(" ") for a, b in bounds)
            if role:
                current = roles[role] = {"paths": [], "keys": [], "threshold": threshold}
            if paths:
                current["paths"].append(paths)
            if key:
                current["keys"].append(key)
        return roles

    def sign(self, gun: str, *, person: str, key_pem: bytes, tag: str, roles: list[str]) -> str:
        """Import a member's key and sign a target into `roles`; returns `notary list` output."""
        key_file = self.home / f"{person}-key.pem"
        key_file.write_bytes(key_pem)
        self.run("key", "import", str(key_file), person=person)
        payload = self.home / f"{person}-{tag}.txt"
        payload.write_text(f"{person} signs {tag}\n")
        role_args = [arg for role in roles for arg in ("--roles", role)]
        self.run("add", "-p", gun, tag, str(payload), *role_args, person=person)
        return self.run("list", gun, person=person).stdout


@pytest.fixture
def notary_cli(notary_url: str, tmp_path: Path) -> NotaryCLI:
    return NotaryCLI(notary_url, tmp_path / "notary-cli")


@pytest.fixture
def repository(db, notary_url: str):
    """A repository registered in the portal with its trust initialised on the test server."""
    namespace = f"team{uuid.uuid4().hex[:8]}"
    registered = services.repository_register(
        dtr_host="dtr.example.org",
        namespace=namespace,
        name="nginx",
        notary_url=notary_url,
        owners_group=f"owners:{namespace}/nginx",
    )
    return services.repository_initialise_trust(repository_id=registered.pk)


@pytest.fixture
def people(repository):
    """alice and olga own the repository; bob is in qa, dave in dev (olga is in qa too)."""
    owners = (repository.owners_group,)
    return {
        "alice": make_user("alice", teams=("it-ops",), owns=owners),
        "olga": make_user("olga", teams=("qa",), owns=owners),
        "bob": make_user("bob", teams=("qa",)),
        "dave": make_user("dave", teams=("dev",)),
    }


@pytest.fixture
def stranger(repository):
    """An owner of another repository, who must see and decide nothing of `repository`."""
    other = services.repository_register(
        dtr_host="dtr.example.org",
        namespace=f"other{uuid.uuid4().hex[:8]}",
        name="app",
        notary_url=repository.notary_url,
        owners_group="owners:other/app",
    )
    return make_user("stranger", owns=(other.owners_group,))


# -- mail -----------------------------------------------------------------------------------------


class SMTPSink:
    """Keeps every message an SMTP client delivers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.lock = threading.Lock()
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.refused: set[str] = set()  # mailboxes answered with 550, as a relay may
        self.deferring = False  # every mailbox answered with 451 (try again later) while set

    async def handle_RCPT(self, server, session, envelope, address, options) -> str:
        if self.deferring:
            return "451 4.3.0 Mail server temporarily rejected message"
        if address in self.refused:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted"

    def messages(self) -> list[tuple[list[str], EmailMessage]]:
        with self.lock:
            return list(self.received)

    def clear(self) -> None:
        with self.lock:
            self.received.clear()
            self.refused.clear()
            self.deferring = False


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SMTPSink]:
    sink = SMTPSink(free_port())
    controller = Controller(sink, hostname=LOOPBACK, port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


# -- the worker -----------------------------------------------------------------------------------


def worker_database_url() -> str:
    """The database the tests run on, as PORTAL_DATABASE_URL for the processes they start."""
    name = connection.settings_dict["NAME"]
    if connection.vendor == "postgresql":
        # The server of PORTAL_DATABASE_URL, with the test database pytest-django created on it.
        server = urlsplit(os.environ["PORTAL_DATABASE_URL"])
        return urlunsplit(server._replace(path=f"/{quote(name, safe='')}"))
    return f"sqlite:///{name}"


@pytest.fixture
def worker_env(transactional_db, rq_queue, redis_url, smtp_server) -> dict[str, str]:
    """The environment of worker processes: the test database, Redis and SMTP server."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PORTAL_DATABASE_URL": worker_database_url(),
        "PORTAL_REDIS_URL": redis_url,
        "PORTAL_SMTP_URL": f"smtp://{LOOPBACK}:{smtp_server.port}",
        # A dead worker's lease runs out, and the cron sweep (when a test starts it) re-queues
        # lost work, in seconds rather than production's 15 and 10.
        "PORTAL_STALLED_AFTER_SECONDS": "8",
        "PORTAL_SWEEP_SECONDS": "2",
    }


def start_process(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "manage.py", *command],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop_process(process: subprocess.Popen, log_path: Path) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
    text = log_path.read_text(errors="replace")
    LEAKS.scan(text, where=f"the log of {log_path.name}")
    print(text[-4000:])  # shown when a test fails


@pytest.fixture
def rq_worker(worker_env, smtp_server, tmp_path) -> Iterator[None]:
    """A real `rqworker` process (with its scheduler, for retries) on the test database."""
    smtp_server.clear()
    log_path = tmp_path / "rqworker.log"
    worker = start_process(["rqworker", "default", "--with-scheduler"], worker_env, log_path)
    try:
        yield
    finally:
        stop_process(worker, log_path)


@pytest.fixture
def start_rq_cron(worker_env, tmp_path) -> Iterator[Callable[[], None]]:
    """Starts RQ's cron scheduler on request; it queues each periodic job once at start."""
    started: list[subprocess.Popen] = []
    log_path = tmp_path / "rqcron.log"

    def start() -> None:
        started.append(start_process(["rqcron", "delegations.cron"], worker_env, log_path))

    try:
        yield start
    finally:
        for process in started:
            stop_process(process, log_path)


# -- DTR (the stand-in) ---------------------------------------------------------------------------

DTR_SERVICE_ACCOUNT = "svc-portal"
DTR_SERVICE_TOKEN = secrets.token_urlsafe(16)  # made at run time


@pytest.fixture
def dtr(settings) -> Iterator[DtrStandIn]:
    """The DTR stand-in with organisation dev (teams qa and dev), administered by the portal's
    service account, which the settings name."""
    registry = DtrStandIn()
    registry.account_add(DTR_SERVICE_ACCOUNT, DTR_SERVICE_TOKEN)
    registry.organisation_add("dev", teams=("qa", "dev"), admins=(DTR_SERVICE_ACCOUNT,))
    with dtr_standin_service(registry) as running:
        settings.PORTAL_DTR_USERNAME = DTR_SERVICE_ACCOUNT
        settings.PORTAL_DTR_TOKEN = DTR_SERVICE_TOKEN
        yield running


# -- browser --------------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
# Without these, Chromium keeps trying to reach Google's services from this closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # meanwhile are still synchronous ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


class CspWatchingBrowser:
    """The browser as tests use it (`new_context`), noting every Content-Security-Policy
    violation Chromium reports on the console of any page of any context."""

    def __init__(self, browser: Browser) -> None:
        self._browser = browser
        self.violations: list[str] = []
        self._contexts: list[BrowserContext] = []

    def new_context(self, **options) -> BrowserContext:
        context = self._browser.new_context(**options)
        context.on("console", self._note)
        self._contexts.append(context)
        return context

    def _note(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.violations.append(message.text)

    def close_contexts(self) -> None:
        for context in self._contexts:
            context.close()


@pytest.fixture
def browser(chromium: Browser) -> Iterator[CspWatchingBrowser]:
    """Every browser test runs under the portal's CSP and fails on any violation of it."""
    watching = CspWatchingBrowser(chromium)
    try:
        yield watching
    finally:
        watching.close_contexts()
    assert watching.violations == [], "the page broke its Content-Security-Policy"


# -- directory (slapd) ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ldap_server(service_dir: Path) -> Iterator[DirectoryServer]:
    """slapd with the demo tree (deploy/ldap/demo.ldif), StartTLS and ldaps, for the session."""
    server = DirectoryServer(service_dir / "slapd")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ldap_tree(ldap_server: DirectoryServer) -> Iterator[DirectoryServer]:
    """`ldap_server` holding exactly the seeded tree, and put back after the test (running again if
    the test stopped it to see the portal cope)."""
    ldap_server.restore()
    yield ldap_server
    ldap_server.restore()


@pytest.fixture
def use_directory(ldap_tree, settings) -> Iterator[Callable[..., None]]:
    """Point the portal at the test directory; call it again with overrides to change a value.
    The tree is back to its seed after the test (`ldap_tree`)."""
    configure = partial(configure_directory, settings, ldap_tree)
    configure()
    yield configure
    directory.forget()

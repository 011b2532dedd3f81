"""What the in-process bench scripts share: the portal's production settings on a temporary
folder, requests served through its WSGI application the way gunicorn serves them, and the
figures they print.

The scripts run as `.venv/bin/python bench/<script>.py` from the repository root; like them, this
module puts the root on sys.path, so it imports as `bench.in_process`.
"""

from __future__ import annotations

import base64
import cProfile
import io
import os
import pstats
import secrets
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from delegations.demo.bundles import ClientCA

HOST = "testserver"


@contextmanager
def portal_environment(work: Path, *, redis_url: str) -> Iterator[ClientCA]:
    """The production settings module on `work / "portal"`, set before Django loads, with a new
    UCP client CA in PORTAL_UCP_CA_BUNDLE; yields the CA. On the way out the database
    connections close, before the caller removes the folder.

    Assigned rather than defaulted, so a PORTAL_* variable of the caller's shell (a Postgres URL,
    an SMTP server) cannot leak into the figures.
    """
    ca = ClientCA.create(now=datetime.now(UTC))
    ca_bundle = work / "ucp-ca.pem"
    ca_bundle.write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
    data_dir = work / "portal"
    os.environ.pop("PORTAL_SMTP_URL", None)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "PORTAL_DEBUG": "0",
            "PORTAL_SECRET_KEY": secrets.token_urlsafe(50),
            "PORTAL_AUDIT_KEY": secrets.token_urlsafe(32),
            "PORTAL_KEY_UNSEALING_KEYS": base64.b64encode(secrets.token_bytes(32)).decode(),
            "PORTAL_DATA_DIR": str(data_dir),
            "PORTAL_DATABASE_URL": f"sqlite:///{data_dir / 'portal.sqlite3'}",
            "PORTAL_ALLOWED_HOSTS": HOST,
            "PORTAL_BASE_URL": f"http://{HOST}",
            "PORTAL_REDIS_URL": redis_url,
            "PORTAL_UCP_CA_BUNDLE": str(ca_bundle),
            "PORTAL_CERTIFICATE_SUBJECT_ATTRIBUTE": "CN",
            "PORTAL_REQUIRE_PROOF_OF_POSSESSION": "1",
            "PORTAL_LOG_LEVEL": "WARNING",
        }
    )
    # WhiteNoise looks for collected static files when the first request builds the middleware.
    (data_dir / "static").mkdir(parents=True, exist_ok=True)
    from django.db import connections

    try:
        yield ca
    finally:
        connections.close_all()


def migrated_application() -> Callable:
    """The WSGI application gunicorn serves (`portal.wsgi`), on a database migrated from scratch.

    Django is imported only now: its settings read what portal_environment() set.
    """
    from django.core.management import call_command

    from portal.wsgi import application

    call_command("migrate", verbosity=0)
    return application


def create_user(username: str, *, groups: list[str]):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(
        username=username, email=f"{username}@example.org", password=None
    )
    user.groups.add(*(Group.objects.get_or_create(name=name)[0] for name in groups))
    return user


def wsgi_environ(
    method: str, path: str, *, query: str = "", body: bytes = b"", headers: dict[str, str]
) -> dict[str, object]:
    """One request as a WSGI server hands it to the application; `headers` as CGI variables
    (HTTP_COOKIE, CONTENT_TYPE...)."""
    return {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": HOST,
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": HOST,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        **headers,
    }


@dataclass
class Served:
    """What the application answered, and how long it took to."""

    status: str  # empty if the application never started a response
    text: str
    seconds: float
    # The process's CPU time: unlike wall time, other load on the machine barely moves it, which
    # tells a slow round on a busy machine from a slow portal.
    cpu: float


def serve(application: Callable, environ: dict[str, object]) -> Served:
    """Serve one request as a WSGI server would; the clock runs only around the application."""
    answer: list[str] = []

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        answer.append(status)

    start, start_cpu = time.perf_counter(), time.process_time()
    response = application(environ, start_response)
    try:
        content = b"".join(response)
    finally:
        response.close()  # request_finished: Django closes the database connection here
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - start_cpu
    status = answer[0] if answer else ""
    return Served(status, content.decode("utf-8", "replace"), elapsed, cpu)


@contextmanager
def counted_queries() -> Iterator[list[tuple[str, float]]]:
    """The statements run meanwhile, each with the seconds it took (fetching included only as
    far as the driver fetches on execute)."""
    from django.db import connection

    statements: list[tuple[str, float]] = []

    def count(execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append((sql, time.perf_counter() - start))

    with connection.execute_wrapper(count):
        yield statements


def profiled(calls: Iterable[Callable[[], object]], *, cumulative: int, tottime: int) -> str:
    """cProfile over the calls alone (whatever builds them is left out): the `cumulative`
    functions with the most cumulative time, then the `tottime` with the most own time."""
    profiler = cProfile.Profile()
    for call in calls:
        profiler.enable()
        call()
        profiler.disable()
    output = io.StringIO()
    stats = pstats.Stats(profiler, stream=output).strip_dirs()
    stats.sort_stats("cumulative").print_stats(cumulative)
    stats.sort_stats("tottime").print_stats(tottime)
    return output.getvalue()


def median_ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def p90_ms(seconds: list[float]) -> float:
    return statistics.quantiles(seconds, n=10, method="inclusive")[-1] * 1000


def run(main: Callable[[], None]) -> None:
    """Run a bench's main(), which cleans up (services, folders) on its way out: a kill stops it
    the way Ctrl-C does, and Ctrl-C ends it quietly."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)

"""`make run`: the portal on its embedded defaults, with every service it needs, on loopback.

Starts redis-server, a notary-server (memory storage) with the demo repository initialised,
a stand-in for DTR's API (stack/dtr_standin.py; DTR cannot run here) holding dev/nginx, the
django-rq worker, RQ's cron scheduler and the web server; creates the demo accounts; prints what
is where; and stops everything in order on Ctrl-C. Ports can be moved with PORTAL_HTTP_PORT,
PORTAL_REDIS_PORT, PORTAL_NOTARY_PORT and PORTAL_DTR_PORT.

With PORTAL_DEMO_DIRECTORY=ldap, people log in from a real directory instead: slapd with the
demo tree (deploy/ldap/demo.ldif) on PORTAL_LDAP_PORT (3389), and the portal pointed at it.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from delegations.demo.bundles import ClientCA
from portal.environment import new_unsealing_key, sealing_key

from .dtr_standin import DEMO_ACCOUNT
from .processes import LOOPBACK, Service, ServiceError, notary_service, redis_service
from .slapd import DEMO_PORT, demo_directory_env, demo_directory_service

BASE_DIR = Path(__file__).resolve().parent.parent


class Stop(Exception):
    """Ctrl-C or SIGTERM: stop the services and leave."""


def _stop(signum: int, frame: object) -> None:
    raise Stop


def main() -> int:
    http_port = int(os.environ.get("PORTAL_HTTP_PORT", "8000"))
    redis_port = int(os.environ.get("PORTAL_REDIS_PORT", "6379"))
    notary_port = int(os.environ.get("PORTAL_NOTARY_PORT", "4443"))
    dtr_port = int(os.environ.get("PORTAL_DTR_PORT", "4480"))
    data_dir = Path(os.environ.get("PORTAL_DATA_DIR", BASE_DIR / "var"))
    notary_url = f"http://{LOOPBACK}:{notary_port}"
    dtr_url = f"http://{LOOPBACK}:{dtr_port}"
    dtr_token_file = _dtr_token_file(data_dir)
    portal_url = f"http://{LOOPBACK}:{http_port}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_DEBUG": os.environ.get("PORTAL_DEBUG", "1"),
        "PORTAL_DATA_DIR": str(data_dir),
        "PORTAL_REDIS_URL": f"redis://{LOOPBACK}:{redis_port}/0",
        "PORTAL_BASE_URL": portal_url,
        "PORTAL_DTR_USERNAME": DEMO_ACCOUNT,
        "PORTAL_DTR_TOKEN": dtr_token_file.read_text().strip(),
        "PYTHONUNBUFFERED": "1",
    }
    if not env.get("PORTAL_KEY_UNSEALING_KEYS"):
        # Only the worker and the operator's commands get it; the web server gets the public
        # half (web_environment).
        unsealing_file = _local_secret(data_dir / "key-unsealing-key", new_unsealing_key)
        env["PORTAL_KEY_UNSEALING_KEYS"] = unsealing_file.read_text().strip()
    # The demo UCP client CA signs the demo bundles; requests must chain to it, as at work. It
    # exists before any manage.py command runs, as their start-up check reads it.
    bundles = data_dir / "demo-bundles"
    ClientCA.load_or_create(bundles / "ca", now=datetime.now(UTC))
    env.setdefault("PORTAL_UCP_CA_BUNDLE", str(bundles / "ca" / "ca.pem"))
    directory_port: int | None = None
    if os.environ.get("PORTAL_DEMO_DIRECTORY") == "ldap":
        directory_port = int(os.environ.get("PORTAL_LDAP_PORT", str(DEMO_PORT)))
        for name, value in demo_directory_env(f"ldap://{LOOPBACK}:{directory_port}").items():
            env.setdefault(name, value)
    manage = [sys.executable, str(BASE_DIR / "manage.py")]
    logs = data_dir / "logs"

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    started: list[Service] = []
    try:
        started.append(redis_service(port=redis_port, data_dir=data_dir / "redis").start())
        started.append(notary_service(port=notary_port, data_dir=data_dir / "notary").start())
        dtr = Service(
            "DTR stand-in",
            [
                sys.executable,
                "-m",
                "stack.dtr_standin",
                "--port",
                str(dtr_port),
                "--token-file",
                str(dtr_token_file),
            ],
            port=dtr_port,
            log_path=logs / "dtr-standin.log",
            cwd=BASE_DIR,
        )
        started.append(dtr.start())
        if directory_port is not None:
            directory = demo_directory_service(port=directory_port, data_dir=data_dir / "slapd")
            started.append(directory.start())
        # keys_rewrap moves keys a data folder from before sealed with a shared key (read from
        # var/key-encryption-key in debug mode) to the sealing key; with none, it changes nothing.
        for step in (
            ["migrate", "--noinput", "-v0"],
            ["collectstatic", "--noinput", "-v0"],
            ["keys_rewrap", "-v0"],
        ):
            subprocess.run([*manage, *step], env=env, cwd=BASE_DIR, check=True)
        worker = Service(
            "rqworker",
            [*manage, "rqworker", "default", "--with-scheduler"],
            port=None,
            log_path=logs / "worker.log",
            env=env,
            cwd=BASE_DIR,
        )
        started.append(worker.start())
        # The worker initialises the demo repository's trust: keys are unsealed only there.
        subprocess.run(
            [
                *manage,
                "demo_setup",
                "--notary-url",
                notary_url,
                "--dtr-url",
                dtr_url,
                "--bundles",
                str(bundles),
            ],
            env=env,
            cwd=BASE_DIR,
            check=True,
        )
        cron = Service(
            "rqcron",
            [*manage, "rqcron", "delegations.cron"],
            port=None,
            log_path=logs / "cron.log",
            env=env,
            cwd=BASE_DIR,
        )
        started.append(cron.start())
        web = Service(
            "web",
            [*manage, "runserver", f"{LOOPBACK}:{http_port}", "--noreload"],
            port=http_port,
            log_path=logs / "web.log",
            env=web_environment(env),
            cwd=BASE_DIR,
        )
        started.append(web.start(timeout=60))
        print_facts(
            portal_url=portal_url,
            notary_url=notary_url,
            dtr_url=dtr_url,
            redis_port=redis_port,
            logs=logs,
            bundles=bundles,
            directory_uri=env["PORTAL_LDAP_URI"] if directory_port is not None else None,
            directory_admin_password_file=data_dir / "slapd" / "admin-password",
        )
        # The worker and the cron scheduler are restarted when they die, as compose's restart
        # policy does (the work they held resumes: see services.publish_lease); the others
        # hold state that a restart would lose (the in-memory Notary), so the stack stops.
        restartable = {worker.name, cron.name}
        while True:
            time.sleep(0.5)
            stopped = next((service for service in started if not service.running), None)
            if stopped is None:
                continue
            if stopped.name not in restartable:
                print(
                    f"\n{stopped.name} stopped unexpectedly; see {stopped.log_path}",
                    file=sys.stderr,
                )
                return 1
            code = stopped.process.returncode if stopped.process else None
            print(
                f"{stopped.name} stopped (exit status {code}); restarting it. "
                f"See {stopped.log_path}",
                file=sys.stderr,
                flush=True,
            )
            stopped.start()
    except Stop:
        print("\nStopping…")
        return 0
    except (ServiceError, subprocess.CalledProcessError) as error:
        print(f"Could not start the portal: {error}", file=sys.stderr)
        if "already in use" in str(error):
            print(
                "Move our ports with PORTAL_HTTP_PORT, PORTAL_REDIS_PORT, PORTAL_NOTARY_PORT, "
                "PORTAL_DTR_PORT or PORTAL_LDAP_PORT, e.g. PORTAL_REDIS_PORT=6380 make run",
                file=sys.stderr,
            )
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for service in reversed(started):
            service.stop()
        if started:
            print("Stopped: " + ", ".join(service.name for service in reversed(started)) + ".")


def _dtr_token_file(data_dir: Path) -> Path:
    """The stand-in DTR account's access token, made once at run time (owner-only file)."""
    return _local_secret(data_dir / "dtr-token", lambda: secrets.token_urlsafe(24))


def _local_secret(path: Path, generate: Callable[[], str]) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(generate())
    return path


def web_environment(env: dict[str, str]) -> dict[str, str]:
    """The web server's environment: it seals keys (an owner's import) but cannot open one, so it
    gets the public sealing key and no unsealing key (delegations.keystore)."""
    unsealing = [key for key in env.get("PORTAL_KEY_UNSEALING_KEYS", "").split(",") if key]
    web = {
        name: value
        for name, value in env.items()
        if name not in ("PORTAL_KEY_UNSEALING_KEYS", "PORTAL_KEY_ENCRYPTION_KEYS")
    }
    if unsealing and not web.get("PORTAL_KEY_SEALING_KEY"):
        web["PORTAL_KEY_SEALING_KEY"] = sealing_key("", unsealing=unsealing)
    return web


def print_facts(
    *,
    portal_url: str,
    notary_url: str,
    dtr_url: str,
    redis_port: int,
    logs: Path,
    bundles: Path,
    directory_uri: str | None = None,
    directory_admin_password_file: Path | None = None,
) -> None:
    directory = erin = ""
    if directory_uri is not None:
        directory = (
            f"  Directory       {directory_uri}  (slapd, deploy/ldap/demo.ldif)\n"
            f"                  admin cn=admin,dc=example,dc=org, password in "
            f"{directory_admin_password_file}\n"
        )
        erin = "\n    erin    team dev, disabled in the directory: cannot log in"
    print(
        f"""
The delegation portal is running.

  Portal          {portal_url}/
  Notary server   {notary_url}  (memory storage; dtr.example.org/dev/nginx is initialised)
  DTR (stand-in)  {dtr_url}  (DTR's API only: dev/nginx; delegated teams get read-write)
  Redis           redis://{LOOPBACK}:{redis_port}/0, with the django-rq worker and cron
{directory}  Mail            printed in {logs / "worker.log"}
  Logs            {logs}

  Accounts (password: demo)
    alice   team it-ops, owner of dev/nginx: approves requests
    bob     team qa
    carol   team qa
    dave    team dev{erin}

  Client bundles  {bundles}/ucp-bundle-<account>.zip
                  drop yours on the Request delegation form (its key.pem never leaves the browser)

Press Ctrl-C to stop everything.
""",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())

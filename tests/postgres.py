"""A throwaway PostgreSQL cluster for one test run, on a free loopback port.

`tests/settings.py` starts it when `PORTAL_TEST_DATABASE=postgres`, before Django reads
`DATABASES`; it stops at exit and its folder goes with it. Durability is switched off: nothing in
it outlives the run.

initdb and postgres refuse to run as root, so as root (CI containers) the cluster belongs to the
`postgres` system user that Debian's `postgresql` package creates.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from stack.processes import LOOPBACK, ServiceError, free_port

SUPERUSER = "postgres"
# Debian installs each major version's programs side by side, off PATH.
DEBIAN_BINARIES = Path("/usr/lib/postgresql")
SETTINGS = {
    "listen_addresses": LOOPBACK,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",  # test threads, live servers and workers each hold one
}


def binaries() -> Path:
    """The folder of initdb and pg_ctl: the newest Debian version, else the ones on PATH."""
    versions = [path for path in DEBIAN_BINARIES.glob("*/bin") if (path / "initdb").exists()]
    if versions:
        return max(versions, key=lambda path: int(re.sub(r"\D", "", path.parent.name) or 0))
    initdb = shutil.which("initdb")
    if initdb is None:
        raise ServiceError("initdb is not installed; `make deps` installs it (Debian postgresql)")
    return Path(initdb).parent


def _owner() -> dict[str, object]:
    """subprocess arguments that run PostgreSQL's programs as someone other than root."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise ServiceError(
            f"as root, PostgreSQL runs as the {SUPERUSER!r} user, which does not exist; "
            "`make deps` installs Debian's postgresql package, which creates it"
        ) from None
    return {"user": SUPERUSER, "group": SUPERUSER, "extra_groups": []}


def _run(command: list[str], *, log: Path) -> None:
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=60, cwd="/", **_owner()
    )
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        raise ServiceError(f"{command[0]} failed with status {result.returncode}; see {log}")


def start_cluster(*, database: str = "portal") -> str:
    """Start a cluster, stopped and removed at exit; returns its `postgres://` URL.

    The test runner creates `test_<database>` itself, so nothing is created here.
    """
    bin_dir = binaries()
    folder = Path(tempfile.mkdtemp(prefix="portal-postgres-"))
    owner = _owner()
    if owner:
        shutil.chown(folder, user=SUPERUSER, group=SUPERUSER)
    data = folder / "data"
    log = folder / "postgres.log"
    log.touch()
    if owner:
        shutil.chown(log, user=SUPERUSER, group=SUPERUSER)
    atexit.register(_remove, bin_dir=bin_dir, folder=folder, data=data, starter=os.getpid())

    # Trust on loopback only: the server listens on 127.0.0.1 and a socket in its own folder.
    _run(
        [
            str(bin_dir / "initdb"),
            "--pgdata", str(data),
            "--username", SUPERUSER,
            "--auth", "trust",
            "--encoding", "UTF8",
            "--locale", "C.UTF-8",
            "--no-sync",
        ],
        log=log,
    )  # fmt: skip
    options = " ".join(f"-c {name}={value}" for name, value in SETTINGS.items())
    # A free port can be taken between the probe and the bind; another one is tried then.
    for _attempt in range(3):
        port = free_port()
        try:
            _run(
                [
                    str(bin_dir / "pg_ctl"),
                    "start",
                    "--pgdata", str(data),
                    "--log", str(log),
                    "--wait",
                    "--timeout", "30",
                    "--options", f"{options} -p {port} -k {folder}",
                ],
                log=log,
            )  # fmt: skip
        except ServiceError:
            continue
        return f"postgres://{SUPERUSER}@{LOOPBACK}:{port}/{database}"
    raise ServiceError(f"PostgreSQL would not start; see {log}")


def _remove(*, bin_dir: Path, folder: Path, data: Path, starter: int) -> None:
    if os.getpid() != starter:  # a forked child exiting leaves the cluster to its parent
        return
    if (data / "postmaster.pid").exists():
        subprocess.run(
            [str(bin_dir / "pg_ctl"), "stop", "--pgdata", str(data), "--mode", "fast", "--wait"],
            capture_output=True,
            timeout=60,
            cwd="/",
            **_owner(),
        )
    shutil.rmtree(folder, ignore_errors=True)

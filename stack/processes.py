"""Starting and stopping the real services the portal talks to, on loopback.

Used by `make run` (fixed ports) and by the test suite (free ports). Each service is a child
process with its output in a log file, stopped with SIGTERM (then SIGKILL) on the way out.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"
# How long a service without a port must stay up to count as started.
_SETTLE_SECONDS = 1.5


class ServiceError(RuntimeError):
    """A service would not start; the message says which and where its log is."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def port_is_open(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((host, port)) == 0


def require_program(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ServiceError(f"{name} is not installed; `make deps` installs it (Debian package)")
    return path


class Service:
    """A child process, ready when its loopback port opens (or, without a port, when it has
    stayed up for a moment)."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        port: int | None,
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.port = port
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.process: subprocess.Popen | None = None

    def start(self, *, timeout: float = 20.0) -> Service:
        if self.port is not None and port_is_open(self.port):
            raise ServiceError(f"{self.name}: port {self.port} on {LOOPBACK} is already in use")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
            # Its own process group, so Ctrl-C in a terminal reaches only the supervisor, which
            # then stops each service in order.
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        if self.port is None:
            time.sleep(_SETTLE_SECONDS)
            if self.process.poll() is not None:
                raise ServiceError(f"{self.name} exited at start; see {self.log_path}")
            return self
        while not port_is_open(self.port):
            if self.process.poll() is not None:
                raise ServiceError(
                    f"{self.name} exited with status {self.process.returncode}; see {self.log_path}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceError(
                    f"{self.name} did not open port {self.port}; see {self.log_path}"
                )
            time.sleep(0.05)
        return self

    def stop(self, *, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def redis_service(*, port: int, data_dir: Path, durable: bool = True) -> Service:
    """redis-server on loopback; `durable` keeps an append-only file so queued jobs survive."""
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        require_program("redis-server"),
        "--bind", LOOPBACK,
        "--port", str(port),
        "--dir", str(data_dir),
        "--save", "",
        "--appendonly", "yes" if durable else "no",
        "--protected-mode", "yes",
    ]  # fmt: skip
    return Service("redis-server", command, port=port, log_path=data_dir / "redis.log")


def notary_server_config(
    *,
    port: int,
    auth: dict | None = None,
    tls_cert_file: Path | None = None,
    tls_key_file: Path | None = None,
) -> dict:
    """notary-server with memory storage and its local signer (ED25519 timestamp/snapshot keys).

    Plain HTTP unless given a certificate and its key; `auth` is notary-server's auth section.
    """
    if (tls_cert_file is None) != (tls_key_file is None):
        raise ValueError("notary-server needs both a TLS certificate and its key, or neither")
    server: dict = {"http_addr": f"{LOOPBACK}:{port}"}
    if tls_cert_file is not None and tls_key_file is not None:
        server.update(tls_cert_file=str(tls_cert_file), tls_key_file=str(tls_key_file))
    config: dict = {
        "server": server,
        "trust_service": {"type": "local", "hostname": "", "port": "", "key_algorithm": "ecdsa"},
        "logging": {"level": "info"},
        "storage": {"backend": "memory"},
    }
    if auth:
        config["auth"] = auth
    return config


def notary_service(
    *,
    port: int,
    data_dir: Path,
    auth: dict | None = None,
    tls_cert_file: Path | None = None,
    tls_key_file: Path | None = None,
) -> Service:
    data_dir.mkdir(parents=True, exist_ok=True)
    config = notary_server_config(
        port=port, auth=auth, tls_cert_file=tls_cert_file, tls_key_file=tls_key_file
    )
    config_path = data_dir / f"notary-server-{port}.json"
    config_path.write_text(json.dumps(config, indent=2))
    command = [require_program("notary-server"), "-config", str(config_path)]
    return Service(
        "notary-server", command, port=port, log_path=data_dir / f"notary-server-{port}.log"
    )

"""notary-servers with token authentication and with TLS, shared by the session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stack.processes import LOOPBACK, free_port, notary_service
from tests.pki import make_ca, make_server_certificate
from tests.token_issuer import TokenIssuer

TOKEN_SERVICE = "notary-test"


@pytest.fixture(scope="session")
def session_token_issuer(service_dir: Path) -> Iterator[TokenIssuer]:
    with TokenIssuer(service_dir / "token-issuer", service=TOKEN_SERVICE) as issuer:
        yield issuer


@pytest.fixture
def token_issuer(session_token_issuer: TokenIssuer) -> Iterator[TokenIssuer]:
    """The session's token service, with its knobs and counter back at their defaults."""
    session_token_issuer.reset()
    yield session_token_issuer
    session_token_issuer.reset()


@pytest.fixture(scope="session")
def token_notary_url(service_dir: Path, session_token_issuer: TokenIssuer) -> Iterator[str]:
    """A notary-server that wants tokens from `token_issuer`."""
    port = free_port()
    data_dir = service_dir / "notary-token"
    with notary_service(port=port, data_dir=data_dir, auth=session_token_issuer.auth_config()):
        yield f"http://{LOOPBACK}:{port}"


@dataclass
class TLSNotary:
    url: str
    ca_path: Path


@pytest.fixture(scope="session")
def tls_notary(service_dir: Path) -> Iterator[TLSNotary]:
    """A notary-server on https with a certificate from a CA made for this session."""
    directory = service_dir / "notary-tls"
    ca = make_ca("portal test CA")
    ca_path, _ = ca.write(directory, "ca")
    cert_path, key_path = make_server_certificate(ca, ip=LOOPBACK).write(directory, "server")
    port = free_port()
    with notary_service(
        port=port, data_dir=directory, tls_cert_file=cert_path, tls_key_file=key_path
    ):
        yield TLSNotary(f"https://{LOOPBACK}:{port}", ca_path)

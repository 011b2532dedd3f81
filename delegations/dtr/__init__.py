"""Clients for the parts of DTR's and UCP's HTTP APIs the portal uses: creating a repository,
the teams' access to it, and the public keys of a user's UCP client bundles. No Django: the
caller passes the accounts, their secrets and the CA bundle."""

from .client import AccessLevel, DtrClient, TeamAccessChange
from .errors import (
    DtrAccessDenied,
    DtrAuthenticationFailed,
    DtrError,
    DtrNotFound,
    DtrRejected,
    DtrTLSFailure,
    DtrUnreachable,
    PermanentDtrError,
    TransientDtrError,
)
from .ucp import UcpClient

__all__ = [
    "AccessLevel",
    "DtrAccessDenied",
    "DtrAuthenticationFailed",
    "DtrClient",
    "DtrError",
    "DtrNotFound",
    "DtrRejected",
    "DtrTLSFailure",
    "DtrUnreachable",
    "PermanentDtrError",
    "TeamAccessChange",
    "TransientDtrError",
    "UcpClient",
]

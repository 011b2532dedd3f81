"""A client for the parts of DTR's HTTP API the portal uses: creating a repository, and the
teams' access to it. No Django: the caller passes the service account, its access token and
the CA bundle."""

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
]

"""A Notary v1 (TUF) client that writes byte-exactly what notary's Go client writes.

The rest of the portal uses only what is imported here.
"""

from .client import NotaryClient, PublishResult, TrustState
from .errors import (
    InvalidKey,
    InvalidMetadata,
    InvalidRoleName,
    NotaryError,
    PermanentNotaryError,
    RepositoryAlreadyInitialised,
    RepositoryNotInitialised,
    TransientNotaryError,
)
from .keys import PublicKey, SigningKey
from .roles import RELEASES, team_role_name
from .transport import Transport

__all__ = [
    "RELEASES",
    "InvalidKey",
    "InvalidMetadata",
    "InvalidRoleName",
    "NotaryClient",
    "NotaryError",
    "PermanentNotaryError",
    "PublicKey",
    "PublishResult",
    "RepositoryAlreadyInitialised",
    "RepositoryNotInitialised",
    "SigningKey",
    "TransientNotaryError",
    "Transport",
    "TrustState",
    "team_role_name",
]

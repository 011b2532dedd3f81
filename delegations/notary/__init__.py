"""A Notary v1 (TUF) client that writes byte-exactly what notary's Go client writes.

The rest of the portal uses only what is imported here.
"""

from .auth import Credentials
from .changes import (
    AddKey,
    Batch,
    DelegatedKey,
    DelegatedRole,
    DelegationChange,
    Plan,
    RemoveKey,
    ReplaceKey,
    RoleChange,
)
from .client import NotaryClient, PublishResult
from .errors import (
    InvalidKey,
    InvalidMetadata,
    InvalidRoleName,
    NotaryError,
    PassphraseRequired,
    PermanentNotaryError,
    PublishOutcomeUnknown,
    RepositoryAlreadyInitialised,
    RepositoryNotInitialised,
    RollbackDetected,
    SnapshotKeyRequired,
    TransientNotaryError,
    WrongPassphrase,
)
from .keyfiles import KeyFileInfo, key_file_info, load_key_file
from .keys import (
    KEY_ALGORITHMS,
    PublicKey,
    SigningKey,
    canonical_id_or_none,
    certificate_common_name,
    short_key_id,
)
from .reading import TrustMemory, TrustState
from .roles import RELEASES, Delegations, team_role_name
from .signed_tags import ChangeImpact, RoleSignatures, change_impact
from .transport import Transport

__all__ = [
    "KEY_ALGORITHMS",
    "RELEASES",
    "AddKey",
    "Batch",
    "ChangeImpact",
    "Credentials",
    "DelegatedKey",
    "DelegatedRole",
    "DelegationChange",
    "Delegations",
    "InvalidKey",
    "InvalidMetadata",
    "InvalidRoleName",
    "KeyFileInfo",
    "NotaryClient",
    "NotaryError",
    "PassphraseRequired",
    "PermanentNotaryError",
    "Plan",
    "PublicKey",
    "PublishOutcomeUnknown",
    "PublishResult",
    "RemoveKey",
    "ReplaceKey",
    "RepositoryAlreadyInitialised",
    "RepositoryNotInitialised",
    "RoleChange",
    "RoleSignatures",
    "RollbackDetected",
    "SigningKey",
    "SnapshotKeyRequired",
    "TransientNotaryError",
    "Transport",
    "TrustMemory",
    "TrustState",
    "WrongPassphrase",
    "canonical_id_or_none",
    "certificate_common_name",
    "change_impact",
    "key_file_info",
    "load_key_file",
    "short_key_id",
    "team_role_name",
]

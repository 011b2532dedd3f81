"""The errors the Notary client raises: nothing from `requests` or `cryptography` escapes.

Callers only need to tell two kinds apart. A *transient* error (the server is unreachable, answers
5xx, or another publisher keeps winning the race) is worth retrying later. A *permanent* error
(the server rejects what we built, metadata is malformed, a key is missing) will fail the same
way again, so the request it belongs to should fail with the message for people to read.
"""

from __future__ import annotations


class NotaryError(Exception):
    """Base of every error raised by `delegations.notary`."""

    code = "notary_error"
    transient = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TransientNotaryError(NotaryError):
    """Retrying later may succeed."""

    code = "transient"
    transient = True


class PermanentNotaryError(NotaryError):
    """Retrying will not help; a person has to look."""

    code = "permanent"


class ServerUnreachable(TransientNotaryError):
    code = "server_unreachable"


class ServerFailure(TransientNotaryError):
    """The server answered with a 5xx status."""

    code = "server_failure"


class PublishOutcomeUnknown(TransientNotaryError):
    """A publish was sent and then something failed (the answer, or the read-back): the server
    may hold the change or not. Only a later read can say; never treat it as a refusal."""


class VersionConflict(TransientNotaryError):
    """Another publisher stored a newer version first (the server's `VERSION` error)."""

    code = "version_conflict"


class MetadataRejected(PermanentNotaryError):
    """The server refused an upload; `server_code` is its error code, e.g. INVALID_UPDATE."""

    code = "metadata_rejected"

    def __init__(self, message: str, *, server_code: str = "", detail: object = None) -> None:
        super().__init__(message)
        self.server_code = server_code
        self.detail = detail


class UnexpectedResponse(PermanentNotaryError):
    """A status the protocol does not use there (a wrong URL, a proxy in the way)."""

    code = "unexpected_response"


class MetadataNotFound(PermanentNotaryError):
    code = "metadata_not_found"


class RepositoryNotInitialised(PermanentNotaryError):
    code = "repository_not_initialised"


class RepositoryAlreadyInitialised(PermanentNotaryError):
    code = "repository_already_initialised"


class InvalidMetadata(PermanentNotaryError):
    """Metadata that does not parse, has the wrong shape, or does not match its hashes."""

    code = "invalid_metadata"


class RollbackDetected(InvalidMetadata):
    """The server serves an older version than the portal has already seen: a replay."""

    code = "rollback_detected"


class RootCertificatesExpired(InvalidMetadata):
    """Every certificate of the root role has expired (or is not valid yet): notary's Go
    client, and so every Docker client, refuses such a repository (`trustpinning.ValidateRoot`)."""


class ReadBackMismatch(PermanentNotaryError):
    """After a publish, the server's snapshot does not hash the bytes we sent."""

    code = "read_back_mismatch"


class SnapshotKeyRequired(PermanentNotaryError):
    """The repository's snapshot is signed by the client and we do not hold its key."""

    code = "snapshot_key_required"


class TokenServiceUnavailable(TransientNotaryError):
    """The token service a Notary server sends us to is unreachable or answers 5xx."""

    code = "token_service_unavailable"


class AuthenticationRequired(PermanentNotaryError):
    """No service account is configured, or its credentials were refused."""

    code = "authentication_required"


class AccessDenied(PermanentNotaryError):
    """The service account signed in but may not do what the request needs."""

    code = "access_denied"


class InvalidTokenResponse(PermanentNotaryError):
    """The token service answered 200 with something that is not a token."""

    code = "invalid_token_response"


class TLSVerificationFailed(PermanentNotaryError):
    """The server's certificate does not verify: a CA bundle to configure, not a retry."""

    code = "tls_verification_failed"


class InvalidRoleName(PermanentNotaryError):
    code = "invalid_role_name"


class InvalidKey(PermanentNotaryError):
    """A key or certificate that notary cannot use."""

    code = "invalid_key"


class PassphraseRequired(InvalidKey):
    """An encrypted key file was given without its passphrase."""

    code = "passphrase_required"


class WrongPassphrase(InvalidKey):
    """The passphrase does not open the key file (or the encrypted part is damaged)."""

    code = "wrong_passphrase"

"""The errors the DTR client raises; nothing from urllib3 escapes.

As with the Notary client, callers tell two kinds apart: a *transient* error (DTR unreachable,
a 5xx, a rate limit) is retried later; a *permanent* one (credentials refused, the service
account lacking admin, a team DTR does not know) fails the same way again, and a person has to
act on its message.
"""

from __future__ import annotations


class DtrError(Exception):
    """Base of every error raised by `delegations.dtr`."""

    transient = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TransientDtrError(DtrError):
    """Retrying later may succeed."""

    transient = True


class PermanentDtrError(DtrError):
    """Retrying will not help; a person has to look."""


class DtrUnreachable(TransientDtrError):
    """No answer: refused, reset, timed out, or a 5xx or 429 from DTR or a proxy before it."""


class DtrTLSFailure(PermanentDtrError):
    """DTR's certificate does not verify against the configured CA bundle, or the bundle is
    unusable: configuration, not weather."""


class DtrAuthenticationFailed(PermanentDtrError):
    """DTR refused the service account's credentials (401)."""


class DtrAccessDenied(PermanentDtrError):
    """The service account lacks the rights the call needs (403)."""


class DtrNotFound(PermanentDtrError):
    """The repository, the namespace or the team does not exist in DTR (or is hidden from the
    service account); `code` is DTR's, e.g. NO_SUCH_REPOSITORY."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class DtrRejected(PermanentDtrError):
    """DTR refused the request as invalid (400); `code` is DTR's, e.g. REPOSITORY_EXISTS."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code

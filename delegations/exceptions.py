"""Errors the portal's services raise: a code for programs, a message for people."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied


class PortalError(Exception):
    """`field` names the form field the error belongs to; `link` is (url, text) of a page that
    helps, such as the pending request a new one would duplicate."""

    code = "portal_error"

    def __init__(
        self, message: str, *, field: str | None = None, link: tuple[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.link = link


class NotAllowed(PortalError, PermissionDenied):
    """The acting user may not do this; views answer 403."""

    code = "not_allowed"


class NotAnOwner(NotAllowed):
    code = "not_an_owner"

    def __init__(self, message: str = "Only the owners of the request's repository decide on it."):
        super().__init__(message)


class SelfApproval(NotAllowed):
    code = "self_approval"


class IllegalTransition(PortalError):
    """The request is no longer in a state where this action applies (someone was faster)."""

    code = "illegal_transition"


class InvalidInput(PortalError):
    code = "invalid_input"


class ServiceUnavailable(PortalError):
    """A server the check needs (UCP, say) could not answer: nothing was changed; try again."""

    code = "unavailable"


class TrustSetupError(PortalError):
    code = "trust_setup"

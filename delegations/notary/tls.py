"""Telling a TLS problem someone must configure away from one that may pass by itself.

A certificate that does not verify fails the same way on every retry: the fix is
PORTAL_NOTARY_CA_BUNDLE (`pools` reports a bundle that cannot be loaded). A reset handshake is the
network's business.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator


def certificate_failure(error: BaseException) -> str | None:
    """Why the server's certificate did not verify, if that is what went wrong."""
    for cause in _causes(error):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause.verify_message or str(cause)
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps: urllib3 wraps `ssl`."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [*current.args, getattr(current, "reason", None)]
        linked += [current.__cause__, current.__context__]
        pending += [item for item in linked if isinstance(item, BaseException)]

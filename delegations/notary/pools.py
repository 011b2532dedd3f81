"""Connection pools to a Notary server or its token service, through the proxy the environment
names and verifying TLS against the portal's CA bundle.

A transport keeps its pool for its few requests (six for a delegation) and no longer: a
connection kept across operations could sit idle for hours behind a load balancer that dropped
it without a word, and the next request would wait out its timeout. Talking to urllib3 directly
rather than through `requests` saves a fifth of a millisecond of bookkeeping per request, a
sixth of a delegation's time on a quiet server (bench/notary_apply.py).
"""

from __future__ import annotations

import ssl
import urllib.request
from urllib.parse import urlsplit

import urllib3

# Connections kept per host: a transport is used by one thread, one request at a time.
_CONNECTIONS_PER_HOST = 1


class UnusableBundle(Exception):
    """The CA bundle could not be loaded: a missing file, or one without a certificate."""


def pool_for(url: str, verify: bool | str) -> urllib3.PoolManager:
    """A pool for `url`: through the proxy the environment names for it, if any, verifying TLS
    against `verify` (a CA bundle's path, or the system store when True)."""
    bundle = verify if isinstance(verify, str) else None
    if bundle:
        _require_loadable(bundle)
    cert_reqs = "CERT_REQUIRED" if verify else "CERT_NONE"
    proxy = proxy_for(url)
    if proxy:
        return urllib3.ProxyManager(
            proxy, maxsize=_CONNECTIONS_PER_HOST, cert_reqs=cert_reqs, ca_certs=bundle
        )
    return urllib3.PoolManager(maxsize=_CONNECTIONS_PER_HOST, cert_reqs=cert_reqs, ca_certs=bundle)


def proxy_for(url: str) -> str | None:
    """The proxy the environment (HTTPS_PROXY, NO_PROXY, ...) names for `url`, as requests and
    Go's clients read it."""
    parts = urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.netloc):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _require_loadable(bundle: str) -> None:
    # urllib3 would load the bundle only when connecting, and say less about what is wrong.
    try:
        ssl.create_default_context(cafile=bundle)
    except ssl.SSLError as error:
        reason = str(error.reason or error).lower().replace("_", " ")
        raise UnusableBundle(reason) from None
    except OSError as error:
        raise UnusableBundle(error.strerror or str(error)) from None

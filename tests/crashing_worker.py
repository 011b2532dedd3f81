"""An RQ worker that SIGKILLs itself at one point of its first publish, for the crash tests.

`manage.py rqworker --worker-class tests.crashing_worker.CrashingWorker` with
PORTAL_TEST_CRASH_AT set to one of:
- `before_post`: the batch is signed and the lease checked, the upload not sent;
- `after_post`: the server took the upload, nothing is read back or recorded;
- `read_back`: in the middle of the read-back (after its first GET).

The job process (RQ's "horse") kills its worker, then itself, with SIGKILL: no handler runs, no
transaction commits, no lease is let go, exactly as if the machine had lost the process. The
points are patched when this module is imported, before the worker forks its job processes.
"""

from __future__ import annotations

import os
import signal

from rq import Worker

from delegations.notary import NotaryClient, Transport

POINT = os.environ.get("PORTAL_TEST_CRASH_AT", "")


def _die() -> None:
    os.kill(os.getppid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


_publish = Transport.publish
_read_back = NotaryClient._require_read_back
_get = Transport.get


def publish(self: Transport, files: dict[str, bytes]) -> None:
    if POINT == "before_post":
        _die()
    _publish(self, files)
    if POINT == "after_post":
        _die()


def read_back(self: NotaryClient, *args: object, **kwargs: object) -> None:
    if POINT == "read_back":
        # Die at the second GET of the read-back: mid-way, not before it.
        calls = {"count": 0}

        def get(transport: Transport, *get_args: object, **get_kwargs: object) -> bytes:
            calls["count"] += 1
            if calls["count"] == 2:
                _die()
            return _get(transport, *get_args, **get_kwargs)

        Transport.get = get  # type: ignore[method-assign]
    return _read_back(self, *args, **kwargs)  # type: ignore[arg-type]


Transport.publish = publish  # type: ignore[method-assign]
NotaryClient._require_read_back = read_back  # type: ignore[method-assign]


class CrashingWorker(Worker):
    """RQ's worker; importing this module is what arms the crash point."""

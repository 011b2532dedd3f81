"""The per-repository publish lease: at most one worker publishes a repository at a time.

Why a lease in the database, not a Redis lock or one queue per repository: the changes it guards
live in the database, so the lease is taken, renewed and checked in the same place, and it
survives Redis being restarted or flushed. Queues per repository would need workers listening
on queues that come and go. A worker is known to be dead when it stops renewing its lease: after
`PORTAL_STALLED_AFTER_SECONDS` anyone may take the lease over, and the sweep queues a publish for
every repository with work waiting and no live lease.

Lease times are the wall clock's, never a caller's injected `now`: they are about processes,
not about the workflow's dates.

Every acquisition raises the lease's fence. A holder checks its fence before each upload and in
each transaction that records one, so a holder paused past its lease cannot publish or record
after another took over. The Notary server's own version check and the requests' compare-and-set
transitions stay the last line: even two holders at once could not apply a change twice.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from ..models import PublishLease


class LeaseLost(Exception):
    """Another worker took the lease over: this one must stop publishing and recording."""


@dataclass(frozen=True)
class Lease:
    repository_id: int
    fence: int
    holder: str
    # `wanted` as last read: if it has grown when the holder lets go, more work came in.
    wanted: int
    renewed_at: float  # time.monotonic() of the last renewal


def lease_holder_name() -> str:
    """Who holds a lease, for people reading the table: host, process, and RQ's worker name."""
    from rq import get_current_job

    job = get_current_job()
    worker = f" {job.worker_name}" if job is not None and job.worker_name else ""
    return f"{socket.gethostname()}:{os.getpid()}{worker}"[:200]


def lease_acquire(*, repository_id: int, holder: str) -> Lease | None:
    """Take the repository's lease if nobody holds a live one. Otherwise tell the holder more
    work is wanted and return None: the holder looks again before it lets go."""
    for _ in range(3):
        now = timezone.now()
        taken = _lease_take(repository_id, holder, now)
        if taken is not None:
            fence, wanted = taken
            return Lease(repository_id, fence, holder, wanted, time.monotonic())
        # Held: ask for another look, but only while it is still held, or the holder could let
        # go without having seen the request; if it was let go meanwhile (or never made), try
        # again to take it.
        if PublishLease.objects.filter(pk=repository_id, until__gte=now).update(
            wanted=F("wanted") + 1
        ):
            return None
        _lease_row_ensure(repository_id)
    return None


def _lease_take(repository_id: int, holder: str, now: datetime) -> tuple[int, int] | None:
    """The new fence and `wanted`, if the lease was free or stale and is now `holder`'s.

    One UPDATE ... RETURNING (SQLite 3.35+ and PostgreSQL), which Django's ORM cannot say: an
    update and a read in one transaction cost a worker a millisecond on every publish."""
    table = connection.ops.quote_name(PublishLease._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET fence = fence + 1, holder = %s, until = %s "  # noqa: S608 - names from the model
            "WHERE repository_id = %s AND (until IS NULL OR until < %s) RETURNING fence, wanted",
            [
                holder,
                connection.ops.adapt_datetimefield_value(now + _lifetime()),
                repository_id,
                connection.ops.adapt_datetimefield_value(now),
            ],
        )
        row = cursor.fetchone()
    return (int(row[0]), int(row[1])) if row else None


def lease_renew(lease: Lease, *, force: bool = False) -> Lease:
    """Keep the lease alive; raises LeaseLost if it was taken over. Without `force`, only once
    a third of its lifetime has passed, so a quick publish does not write for nothing."""
    if not force and time.monotonic() - lease.renewed_at < _lifetime().total_seconds() / 3:
        return lease
    renewed = PublishLease.objects.filter(pk=lease.repository_id, fence=lease.fence).update(
        until=timezone.now() + _lifetime()
    )
    if not renewed:
        raise LeaseLost(f"the publish lease of repository {lease.repository_id} was taken over")
    return replace(lease, renewed_at=time.monotonic())


def lease_look(lease: Lease) -> Lease:
    """Renew the lease and note how much work is wanted, before looking for work."""
    lease = lease_renew(lease)
    wanted = PublishLease.objects.values_list("wanted", flat=True).get(pk=lease.repository_id)
    return replace(lease, wanted=wanted)


def lease_require(lease: Lease) -> None:
    """Inside a transaction that records a publish: fail it unless the lease is still ours."""
    if not (
        PublishLease.objects.select_for_update()
        .filter(pk=lease.repository_id, fence=lease.fence)
        .exists()
    ):
        raise LeaseLost(f"the publish lease of repository {lease.repository_id} was taken over")


def lease_release(lease: Lease, *, unless_wanted: bool = True) -> bool:
    """Let the lease go; False (and still held) if more work was wanted since `lease_look`.
    Without `unless_wanted` (on an error), it is let go whatever was wanted: the sweep queues
    the repository again."""
    held = PublishLease.objects.filter(pk=lease.repository_id, fence=lease.fence)
    if unless_wanted:
        held = held.filter(wanted=lease.wanted)
    if held.update(holder="", until=None):
        return True
    # Taken over meanwhile: nothing is left to let go.
    return not PublishLease.objects.filter(pk=lease.repository_id, fence=lease.fence).exists()


def _lease_row_ensure(repository_id: int) -> None:
    if PublishLease.objects.filter(pk=repository_id).exists():
        return
    try:
        with transaction.atomic():
            PublishLease.objects.create(repository_id=repository_id)
    except IntegrityError:
        pass  # made by a concurrent worker


def _lifetime() -> timedelta:
    return timedelta(seconds=settings.PORTAL_STALLED_AFTER_SECONDS)

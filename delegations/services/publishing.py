"""Publishing a repository's waiting changes: every approved request and every asked-for end of
that repository, in one signed targets version, by one worker at a time (`publish_lease`).

A run takes the lease, then repeats until nothing is waiting: collect what is due, count the
attempt, publish it as one `Batch`, record the outcome. The outcome of a publish that was sent is
settled by what the trust data says, never by the error that followed: a change the server may
hold is never failed, it is tried again, and the next read finds it in place or applies it.

What can stop a run, and what happens then:
- a change notary refuses (a certificate that expired while waiting, one that no longer parses)
  fails alone, with its reason; the others are published;
- someone else's publish won the race (`VERSION`): the batch is re-applied to theirs at once,
  without counting against anyone's attempts;
- a transient error: each change waits its back-off (`PORTAL_JOB_RETRY_INTERVALS`) and the sweep
  queues the repository again; after `PORTAL_PUBLISH_ATTEMPTS` an addition that was never sent
  fails, one that may have been sent keeps being tried, and an end keeps being tried (its key
  must come out);
- a permanent error fails every change of the batch with the reason (the same key or server
  would refuse each of them);
- the worker dies: the lease runs out, the sweep queues the repository again, and the attempt
  counted before the publish stays counted. A change taken up `PORTAL_PUBLISH_ATTEMPTS` times
  without an outcome is settled by a read instead of being published again: in place, it is
  recorded; missing, it fails (for an addition) or its end gives up.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.db import transaction

from .. import clock, trust
from ..audit.chain import audit_record
from ..exceptions import TrustSetupError
from ..models import AuditAction, Delegation, DelegationRequest, Repository
from ..monitoring import metrics
from ..notary import (
    Batch,
    PermanentNotaryError,
    PublishOutcomeUnknown,
    PublishResult,
    TransientNotaryError,
)
from ..notary.errors import VersionConflict
from .accounts import repository_owners_or_known
from .delegation_endings import delegation_end_record
from .delegation_requests import requests_delegated_record
from .drift import drift_action_record
from .publish_lease import (
    Lease,
    LeaseLost,
    lease_acquire,
    lease_holder_name,
    lease_look,
    lease_release,
    lease_renew,
    lease_require,
)
from .publish_work import (
    PublishRun,
    Work,
    work_fail,
    works_collect,
    works_mark_sent,
    works_retry_later,
    works_step_back,
)
from .team_access import team_access_want

logger = logging.getLogger(__name__)

# Rounds in a row lost to other publishers before the run steps back for a moment.
_CONFLICT_ROUNDS = 10
_CONFLICT_PAUSE = timedelta(seconds=2)


def repository_publish(*, repository_id: int, now: datetime | None = None) -> PublishRun:
    """Publish everything waiting for the repository, unless another worker is doing so (it
    then looks again before it stops). The worker's job; safe to run at any time, any number of
    times, in any number of workers."""
    run = PublishRun(repository_id)
    lease = lease_acquire(repository_id=repository_id, holder=lease_holder_name())
    if lease is None:
        run.held_elsewhere = True
        return run
    counted: set[tuple[str, int]] = set()
    conflicts = 0
    try:
        while True:
            lease = lease_look(lease)
            moment = now or clock.now()
            repository = Repository.objects.get(pk=repository_id)
            works = works_collect(repository, lease, counted, run, now=moment)
            if not works:
                if lease_release(lease):
                    return run
                continue
            try:
                _publish(repository, works, lease, run, now=moment)
                conflicts = 0
            except VersionConflict:
                conflicts += 1
                if conflicts >= _CONFLICT_ROUNDS:
                    # Not the changes' fault: step back without counting it against them.
                    works_step_back(works, counted, until=moment + _CONFLICT_PAUSE)
                    conflicts = 0
    except LeaseLost:
        logger.warning("repository %s: publish lease taken over; this run stops", repository_id)
        return run
    except BaseException:
        # Unexpected (a bug, the database gone): handled as if the worker had died. The attempt
        # stays counted with no retry planned, so a change that breaks every run is settled
        # after PORTAL_PUBLISH_ATTEMPTS; the lease is let go for the sweep to queue it again.
        lease_release(lease, unless_wanted=False)
        raise


def request_apply(*, request_id: int, now: datetime | None = None) -> DelegationRequest:
    """Publish the repository of an approved request (with whatever else waits there) and
    return the request as that left it."""
    request = DelegationRequest.objects.get(pk=request_id)
    repository_publish(repository_id=request.repository_id, now=now)
    return DelegationRequest.objects.select_related("repository").get(pk=request_id)


def delegation_end(*, delegation_id: int, now: datetime | None = None) -> Delegation:
    """Publish the repository of an ending delegation (with whatever else waits there) and
    return the delegation as that left it."""
    delegation = Delegation.objects.get(pk=delegation_id)
    repository_publish(repository_id=delegation.repository_id, now=now)
    return Delegation.objects.select_related("repository", "request").get(pk=delegation_id)


# -- publishing -----------------------------------------------------------------------------------


def _publish(
    repository: Repository, works: list[Work], lease: Lease, run: PublishRun, *, now: datetime
) -> None:
    batch = Batch(tuple(work.change for work in works if work.change is not None))
    sent = False

    def before_sending() -> None:
        nonlocal sent
        lease_renew(lease, force=True)  # the fence: nothing is sent after a takeover
        if not sent:
            works_mark_sent(works, now=now)
            sent = True

    started = time.monotonic()
    try:
        result = trust.publish(repository, batch, now=now, before_sending=before_sending)
    except VersionConflict:
        raise
    except PublishOutcomeUnknown as error:
        metrics.publish_failed(error)
        works_retry_later(works, error.message, run, now=now, outcome_unknown=True)
        return
    except TransientNotaryError as error:
        metrics.publish_failed(error)
        works_retry_later(works, error.message, run, now=now, outcome_unknown=False)
        return
    except (PermanentNotaryError, TrustSetupError) as error:
        metrics.publish_failed(error)
        # Refused before anything was stored. A change an earlier run may have put on the
        # server waits instead: only a read that succeeds can say it is not there.
        maybe_live = [work for work in works if work.row.publish_sent_at is not None]
        for work in works:
            if work not in maybe_live:
                work_fail(work, error.message, run, now=now)
        if maybe_live:
            works_retry_later(maybe_live, error.message, run, now=now, outcome_unknown=True)
        return
    if result.changed:
        run.publishes += 1
        metrics.publish_observed(time.monotonic() - started)
        logger.info(
            "published %d changes to %s (targets version %s to %s) in %.0f ms",
            len(batch.effective),
            repository.gun,
            result.version_before,
            result.version_after,
            (time.monotonic() - started) * 1000,
        )
    refused = [works[index] for index in batch.refused]
    for index, work in enumerate(works):
        if index in batch.refused:
            work_fail(work, batch.refused[index], run, now=now)
    published = [work for work in works if work not in refused]
    effective = {works[index].key for index in batch.effective}
    _record(repository, published, result, effective, lease, run, now=now)


def _record(
    repository: Repository,
    works: list[Work],
    result: PublishResult,
    effective: set[tuple[str, int]],
    lease: Lease,
    run: PublishRun,
    *,
    now: datetime,
) -> None:
    """One transaction for the whole batch: the publish, then each change's own outcome."""
    owners = (
        repository_owners_or_known(repository=repository)
        if any(work.delegation for work in works)
        else None
    )
    versions = {
        "targets_version_before": result.version_before,
        "targets_version_after": result.version_after,
    }
    with transaction.atomic():
        lease_require(lease)
        event_id = None
        if result.changed:
            event_id = audit_record(
                action=AuditAction.NOTARY_PUBLISHED,
                actor=None,
                now=now,
                repository=repository,
                details={
                    "requests": [work.request_id for work in works if work.is_addition],
                    "ended_requests": [work.request_id for work in works if work.delegation],
                    "drift_findings": [work.finding.pk for work in works if work.finding],
                    "changes": len(effective),
                    **versions,
                },
            ).pk
        for work in works:
            if work.delegation is not None:
                delegation_end_record(
                    work.delegation,
                    result,
                    changed=work.key in effective,
                    published_in=event_id,
                    owners=owners,
                    now=now,
                )
                run.ended.append(work.delegation.pk)
            elif work.finding is not None:
                drift_action_record(work.finding, published_in=event_id, now=now)
                run.drift_done.append(work.finding.pk)
        additions = [work.request for work in works if work.is_addition and work.request]
        delegated = requests_delegated_record(
            additions,
            result,
            changed_ids={
                work.request.pk for work in works if work.request and work.key in effective
            },
            published_in=event_id,
            now=now,
        )
        run.delegated.extend(request.pk for request in delegated)
        team_access_want(repository=repository, requests=delegated, now=now)

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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from .. import clock, directory, selectors, trust
from ..audit.chain import audit_record
from ..exceptions import IllegalTransition, TrustSetupError
from ..models import (
    AuditAction,
    Delegation,
    DelegationRequest,
    Repository,
    RequestStatus,
)
from ..notary import (
    Batch,
    DelegationChange,
    InvalidKey,
    NotaryError,
    PermanentNotaryError,
    PublishOutcomeUnknown,
    PublishResult,
    TransientNotaryError,
)
from ..notary.errors import VersionConflict
from .accounts import repository_owners_provision
from .delegation_endings import delegation_end_fail, delegation_end_record, removal_of
from .delegation_requests import request_fail, requests_delegated_record
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
from .state import transition_many

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

# A publish carries at most this many changes; more wait for the next round of the same run.
BATCH_LIMIT = 500
# Rounds in a row lost to other publishers before the run steps back for a moment.
_CONFLICT_ROUNDS = 10
_CONFLICT_PAUSE = timedelta(seconds=2)


@dataclass
class PublishRun:
    """What one run did, for the job's result and the logs."""

    repository_id: int
    held_elsewhere: bool = False
    publishes: int = 0
    delegated: list[int] = field(default_factory=list)  # request IDs
    ended: list[int] = field(default_factory=list)  # delegation IDs
    failed: list[int] = field(default_factory=list)  # request IDs, additions and ends alike
    waiting: list[int] = field(default_factory=list)  # request IDs left for a retry

    def summary(self) -> str:
        if self.held_elsewhere:
            return f"repository {self.repository_id}: another worker is publishing it"
        return (
            f"repository {self.repository_id}: {self.publishes} publish(es), "
            f"{len(self.delegated)} delegated, {len(self.ended)} ended, "
            f"{len(self.failed)} failed, {len(self.waiting)} waiting for a retry"
        )


@dataclass
class _Work:
    """One waiting change: a request's key going in, or an ending delegation's key coming out."""

    request: DelegationRequest
    delegation: Delegation | None = None  # set for an end
    change: DelegationChange | None = None

    @property
    def is_end(self) -> bool:
        return self.delegation is not None

    @property
    def row(self) -> DelegationRequest | Delegation:
        return self.delegation if self.delegation is not None else self.request

    @property
    def key(self) -> tuple[str, int]:
        return ("end" if self.is_end else "add", self.row.pk)


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
            works = _collect(repository, lease, counted, run, now=moment)
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
                    _step_back(works, counted, until=moment + _CONFLICT_PAUSE)
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


# -- collecting -----------------------------------------------------------------------------------


def _collect(
    repository: Repository,
    lease: Lease,
    counted: set[tuple[str, int]],
    run: PublishRun,
    *,
    now: datetime,
) -> list[_Work]:
    """The changes due now, each counted once per run; those that cannot go in fail alone."""
    due = Q(publish_retry_at__isnull=True) | Q(publish_retry_at__lte=now)
    requests = list(
        DelegationRequest.objects.select_related("repository", "requester")
        .filter(repository=repository, status__in=[RequestStatus.APPROVED, RequestStatus.APPLYING])
        .filter(due)
        .order_by("id")[:BATCH_LIMIT]
    )
    endings = list(
        Delegation.objects.ending()
        .select_related("repository", "request__repository", "request__requester")
        .filter(repository=repository)
        .filter(due)
        .order_by("id")[:BATCH_LIMIT]
    )
    # Ends first: a renewal in the same batch then finds the old key already out.
    works = [_Work(ending.request, delegation=ending) for ending in endings]
    works += [_Work(request) for request in requests]
    # Out of attempts with no retry planned: the runs that took it up never came to an outcome
    # (a run that does clears the retry time when it takes a change up and sets it on failing).
    abandoned = [
        work
        for work in works
        if work.key not in counted
        and work.row.publish_retry_at is None
        and work.row.publish_attempts >= settings.PORTAL_PUBLISH_ATTEMPTS
    ]
    if abandoned:
        _settle_abandoned(repository, abandoned, run, now=now)
    works = [work for work in works if work not in abandoned]
    works = [work for work in works if _prepared(work, run, now=now)]
    if works:
        works = _take_up(works, lease, counted, now=now)
    return works


def _prepared(work: _Work, run: PublishRun, *, now: datetime) -> bool:
    """Give `work` its change; False when it failed alone instead."""
    if work.is_end:
        assert work.delegation is not None
        try:
            work.change = removal_of(work.delegation)
        except InvalidKey as error:
            _fail(work, error.message, run, now=now)
            return False
        return True
    request = work.request
    if request.not_after <= now:
        _fail(
            work,
            f"The certificate expired on {request.not_after:%Y-%m-%d %H:%M} UTC before it could "
            "be delegated; ask again with the certificate of a current client bundle.",
            run,
            now=now,
        )
        return False
    try:
        work.change = selectors.request_change(request)
    except InvalidKey as error:
        _fail(work, error.message, run, now=now)
        return False
    return True


def _take_up(
    works: list[_Work], lease: Lease, counted: set[tuple[str, int]], *, now: datetime
) -> list[_Work]:
    """Count the attempt before anything is sent (a run that dies counts too), and move
    approved requests to applying, in one transaction. Returns the works still to do."""
    with transaction.atomic():
        lease_require(lease)
        approved = [
            work.request.pk
            for work in works
            if not work.is_end and work.request.status == RequestStatus.APPROVED
        ]
        applying = {
            request.pk: request
            for request in transition_many(
                approved,
                source=RequestStatus.APPROVED,
                target=RequestStatus.APPLYING,
                action=AuditAction.REQUEST_APPLYING,
                now=now,
            )
        }
        for work in works:
            if not work.is_end and work.request.pk in applying:
                work.request = applying[work.request.pk]
        # An approved one that did not move was settled meanwhile (by another run).
        works = [
            work
            for work in works
            if work.is_end or work.request.pk not in approved or work.request.pk in applying
        ]
        fresh = [work for work in works if work.key not in counted]
        for model, ids in _ids_by_model(fresh).items():
            model.objects.filter(pk__in=ids).update(
                publish_attempts=F("publish_attempts") + 1, publish_retry_at=None
            )
    counted.update(work.key for work in fresh)
    return works


# -- publishing -----------------------------------------------------------------------------------


def _publish(
    repository: Repository, works: list[_Work], lease: Lease, run: PublishRun, *, now: datetime
) -> None:
    batch = Batch(tuple(work.change for work in works if work.change is not None))
    sent = False

    def before_sending() -> None:
        nonlocal sent
        lease_renew(lease, force=True)  # the fence: nothing is sent after a takeover
        if not sent:
            for model, ids in _ids_by_model(works).items():
                model.objects.filter(pk__in=ids).update(publish_sent_at=now)
            sent = True

    try:
        result = trust.publish(repository, batch, now=now, before_sending=before_sending)
    except VersionConflict:
        raise
    except PublishOutcomeUnknown as error:
        _retry_later(works, error.message, run, now=now, outcome_unknown=True)
        return
    except TransientNotaryError as error:
        _retry_later(works, error.message, run, now=now, outcome_unknown=False)
        return
    except (PermanentNotaryError, TrustSetupError) as error:
        for work in works:
            _fail(work, error.message, run, now=now)
        return
    if result.changed:
        run.publishes += 1
    refused = [works[index] for index in batch.refused]
    for index, work in enumerate(works):
        if index in batch.refused:
            _fail(work, batch.refused[index], run, now=now)
    published = [work for work in works if work not in refused]
    effective = {works[index].key for index in batch.effective}
    _record(repository, published, result, effective, lease, run, now=now)


def _record(
    repository: Repository,
    works: list[_Work],
    result: PublishResult,
    effective: set[tuple[str, int]],
    lease: Lease,
    run: PublishRun,
    *,
    now: datetime,
) -> None:
    """One transaction for the whole batch: the publish, then each change's own outcome."""
    owners = _owners_for(repository) if any(work.is_end for work in works) else None
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
                    "requests": [work.request.pk for work in works if not work.is_end],
                    "ended_requests": [work.request.pk for work in works if work.is_end],
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
        delegated = requests_delegated_record(
            [work.request for work in works if not work.is_end],
            result,
            changed_ids={work.request.pk for work in works if work.key in effective},
            published_in=event_id,
            now=now,
        )
        run.delegated.extend(request.pk for request in delegated)


# -- when it does not go through --------------------------------------------------------------


def _retry_later(
    works: list[_Work], reason: str, run: PublishRun, *, now: datetime, outcome_unknown: bool
) -> None:
    """Each change waits its back-off. An addition out of attempts that was never sent fails;
    one the server may hold, and every end, keep being tried."""
    logger.warning(
        "publish postponed (%s): %s", "outcome unknown" if outcome_unknown else "", reason
    )
    intervals = settings.PORTAL_JOB_RETRY_INTERVALS or [60]
    for work in works:
        row = type(work.row).objects.get(pk=work.row.pk)
        out_of_attempts = row.publish_attempts >= settings.PORTAL_PUBLISH_ATTEMPTS
        if out_of_attempts and not work.is_end and row.publish_sent_at is None:
            _fail(
                work,
                f"The Notary server kept failing, so the portal gave up: {reason}",
                run,
                now=now,
            )
            continue
        wait = intervals[min(max(row.publish_attempts, 1), len(intervals)) - 1]
        type(work.row).objects.filter(pk=work.row.pk).update(
            publish_retry_at=now + timedelta(seconds=wait)
        )
        run.waiting.append(work.request.pk)


def _step_back(works: list[_Work], counted: set[tuple[str, int]], *, until: datetime) -> None:
    """Other publishers kept winning: the run's changes wait until `until`, their attempt
    uncounted (it was not their fault), and the next run counts them afresh."""
    taken = [work for work in works if work.key in counted]
    for model, ids in _ids_by_model(taken).items():
        model.objects.filter(pk__in=ids).update(
            publish_retry_at=until, publish_attempts=F("publish_attempts") - 1
        )
    counted.difference_update(work.key for work in taken)


def _settle_abandoned(
    repository: Repository, works: list[_Work], run: PublishRun, *, now: datetime
) -> None:
    """Changes taken up PORTAL_PUBLISH_ATTEMPTS times with no outcome (their worker died each
    time): settle each by a read, never by another publish."""
    try:
        delegations = trust.fetch(repository, now=now).targets.signed.delegations
    except NotaryError as error:
        logger.warning("repository %s: abandoned changes wait, cannot read: %s", repository, error)
        return
    in_place: list[_Work] = []
    for work in works:
        try:
            change = (
                removal_of(work.delegation)
                if work.delegation
                else selectors.request_change(work.request)
            )
        except InvalidKey as error:
            _fail(work, error.message, run, now=now)
            continue
        trial = delegations.copy()
        change.apply(trial)
        if trial.to_dict() == delegations.to_dict():
            in_place.append(work)
            continue
        _fail(
            work,
            f"The worker stopped or met an unexpected error {work.row.publish_attempts} times "
            "while publishing this change, so the portal gave up; administrators find the "
            "details in the worker's log and among the failed jobs.",
            run,
            now=now,
        )
    if in_place:
        version = trust.fetch(repository, now=now).targets.signed.version
        result = PublishResult(changed=False, version_before=version, version_after=version)
        for work in in_place:
            with transaction.atomic():
                if work.delegation is not None:
                    delegation_end_record(
                        work.delegation,
                        result,
                        changed=False,
                        published_in=None,
                        owners=_owners_for(repository),
                        now=now,
                    )
                    run.ended.append(work.delegation.pk)
                else:
                    delegated = requests_delegated_record(
                        [work.request], result, changed_ids=set(), published_in=None, now=now
                    )
                    run.delegated.extend(request.pk for request in delegated)


def _fail(work: _Work, reason: str, run: PublishRun, *, now: datetime) -> None:
    try:
        if work.delegation is not None:
            delegation_end_fail(delegation_id=work.delegation.pk, reason=reason, now=now)
        else:
            request_fail(request_id=work.request.pk, reason=reason, now=now)
    except IllegalTransition:
        return  # settled meanwhile by another run
    run.failed.append(work.request.pk)


def _owners_for(repository: Repository) -> list[User]:
    """The owners to tell about ends. The publish is recorded whatever the directory says: if
    it cannot be read now, the owners the portal already knows are told."""
    try:
        return repository_owners_provision(repository=repository)
    except directory.DirectoryUnavailable as error:
        logger.warning("owners of %s read from the portal, directory down: %s", repository, error)
        return list(selectors.owners_of(repository))


def _ids_by_model(
    works: list[_Work],
) -> dict[type[DelegationRequest] | type[Delegation], list[int]]:
    grouped: dict[type[DelegationRequest] | type[Delegation], list[int]] = {}
    for work in works:
        grouped.setdefault(type(work.row), []).append(work.row.pk)
    return grouped

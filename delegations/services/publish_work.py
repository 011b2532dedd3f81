"""The changes a repository's publish carries (`publishing`): finding them, counting their
attempts, and what becomes of one that does not go through.

Three kinds of change wait for a publish: an approved request's key going in, an ending
delegation's key coming out, and an owner's action on a drift finding (a key removed, or a
delegation published again). Each row keeps its own bookkeeping (`models.PublishedWork`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from .. import selectors, trust
from ..exceptions import IllegalTransition
from ..models import (
    AuditAction,
    Delegation,
    DelegationRequest,
    DriftFinding,
    Repository,
    RequestStatus,
)
from ..notary import DelegationChange, InvalidKey, NotaryError, PublishResult
from .accounts import repository_owners_or_known
from .delegation_endings import (
    delegation_end_fail,
    delegation_end_record,
    end_carries_to_renewal,
    removal_of,
)
from .delegation_requests import request_fail, requests_delegated_record
from .drift import drift_action_fail, drift_change
from .publish_lease import Lease, lease_require
from .state import transition_many

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

# A publish carries at most this many changes of each kind; more wait for the next round.
BATCH_LIMIT = 500

Row = DelegationRequest | Delegation | DriftFinding


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
    drift_done: list[int] = field(default_factory=list)  # finding IDs acted on

    def summary(self) -> str:
        if self.held_elsewhere:
            return f"repository {self.repository_id}: another worker is publishing it"
        return (
            f"repository {self.repository_id}: {self.publishes} publish(es), "
            f"{len(self.delegated)} delegated, {len(self.ended)} ended, "
            f"{len(self.drift_done)} drift finding(s) acted on, "
            f"{len(self.failed)} failed, {len(self.waiting)} waiting for a retry"
        )


@dataclass
class Work:
    """One waiting change and the row it belongs to."""

    request: DelegationRequest | None = None  # an addition, or the request of an end
    delegation: Delegation | None = None  # an end
    finding: DriftFinding | None = None  # an owner's action on drift
    change: DelegationChange | None = None

    @property
    def is_addition(self) -> bool:
        return self.delegation is None and self.finding is None

    @property
    def row(self) -> Row:
        row = self.finding or self.delegation or self.request
        assert row is not None
        return row

    @property
    def key(self) -> tuple[str, int]:
        kind = "drift" if self.finding else "end" if self.delegation else "add"
        return (kind, self.row.pk)

    @property
    def request_id(self) -> int | None:
        return self.request.pk if self.request is not None else None


def works_collect(
    repository: Repository,
    lease: Lease,
    counted: set[tuple[str, int]],
    run: PublishRun,
    *,
    now: datetime,
) -> list[Work]:
    """The changes due now, each counted once per run; those that cannot go in fail alone."""
    due = Q(publish_retry_at__isnull=True) | Q(publish_retry_at__lte=now)
    findings = (
        DriftFinding.objects.select_related(
            "repository", "delegation__request", "action_requested_by"
        )
        .filter(repository=repository, resolved_at__isnull=True)
        .exclude(action="")
        .filter(due)
        .order_by("id")[:BATCH_LIMIT]
    )
    endings = (
        Delegation.objects.ending()
        .select_related("repository", "request__repository", "request__requester")
        .filter(repository=repository)
        .filter(due)
        .order_by("id")[:BATCH_LIMIT]
    )
    requests = (
        DelegationRequest.objects.select_related("repository", "requester")
        .filter(repository=repository, status__in=[RequestStatus.APPROVED, RequestStatus.APPLYING])
        .filter(due)
        .order_by("id")[:BATCH_LIMIT]
    )
    # Removals first: a renewal in the same batch then finds the old key already out.
    works = [Work(finding=finding) for finding in findings]
    works += [Work(ending.request, delegation=ending) for ending in endings]
    works += [Work(request) for request in requests]
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
    works = [work for work in works if work not in abandoned and _prepared(work, run, now=now)]
    if works:
        works = _take_up(works, lease, counted, now=now)
    return works


def _change_of(work: Work) -> DelegationChange:
    if work.finding is not None:
        return drift_change(work.finding)
    if work.delegation is not None:
        return removal_of(work.delegation)
    assert work.request is not None
    return selectors.request_change(work.request)


def _prepared(work: Work, run: PublishRun, *, now: datetime) -> bool:
    """Give `work` its change; False when it failed alone instead."""
    request = work.request
    if work.is_addition and request is not None and request.not_after <= now:
        work_fail(
            work,
            f"The certificate expired on {request.not_after:%Y-%m-%d %H:%M} UTC before it could "
            "be delegated; ask again with the certificate of a current client bundle.",
            run,
            now=now,
        )
        return False
    if (
        work.is_addition
        and request is not None
        and request.renews_id is not None
        and request.publish_sent_at is None
        and (renewed := Delegation.objects.filter(pk=request.renews_id).exclude(ending="").first())
        and end_carries_to_renewal(renewed, renewed.ending)
    ):
        work_fail(
            work,
            "The delegation this renews is being ended, so the new key does not go in; ask "
            "again if you still need to sign.",
            run,
            now=now,
        )
        return False
    try:
        work.change = _change_of(work)
    except InvalidKey as error:
        work_fail(work, error.message, run, now=now)
        return False
    return True


def _take_up(
    works: list[Work], lease: Lease, counted: set[tuple[str, int]], *, now: datetime
) -> list[Work]:
    """Count the attempt before anything is sent (a run that dies counts too), and move
    approved requests to applying, in one transaction. Returns the works still to do."""
    with transaction.atomic():
        lease_require(lease)
        approved = {
            work.request.pk
            for work in works
            if work.is_addition
            and work.request is not None
            and work.request.status == RequestStatus.APPROVED
        }
        applying = {
            request.pk: request
            for request in transition_many(
                sorted(approved),
                source=RequestStatus.APPROVED,
                target=RequestStatus.APPLYING,
                action=AuditAction.REQUEST_APPLYING,
                now=now,
            )
        }
        # An approved one that did not move was settled meanwhile (by another run).
        kept = []
        for work in works:
            if work.is_addition and work.request_id in approved:
                if work.request_id not in applying:
                    continue
                work.request = applying[work.request_id]
            kept.append(work)
        fresh = [work for work in kept if work.key not in counted]
        for model, ids in _ids_by_model(fresh).items():
            model.objects.filter(pk__in=ids).update(
                publish_attempts=F("publish_attempts") + 1, publish_retry_at=None
            )
    counted.update(work.key for work in fresh)
    return kept


def works_mark_sent(works: list[Work], *, now: datetime) -> None:
    """From now on the server may hold these changes (see `PublishedWork.publish_sent_at`)."""
    for model, ids in _ids_by_model(works).items():
        model.objects.filter(pk__in=ids).update(publish_sent_at=now)


# -- when it does not go through ------------------------------------------------------------------


def works_retry_later(
    works: list[Work], reason: str, run: PublishRun, *, now: datetime, outcome_unknown: bool
) -> None:
    """Each change waits its back-off. An addition out of attempts that was never sent fails;
    one the server may hold, every end and every owner's action on drift keep being tried."""
    logger.warning(
        "publish postponed%s: %s", " (outcome unknown)" if outcome_unknown else "", reason
    )
    intervals = settings.PORTAL_JOB_RETRY_INTERVALS or [60]
    for work in works:
        row = type(work.row).objects.get(pk=work.row.pk)
        out_of_attempts = row.publish_attempts >= settings.PORTAL_PUBLISH_ATTEMPTS
        if out_of_attempts and work.is_addition and row.publish_sent_at is None:
            work_fail(
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
        if work.request_id is not None:
            run.waiting.append(work.request_id)


def works_step_back(works: list[Work], counted: set[tuple[str, int]], *, until: datetime) -> None:
    """Other publishers kept winning: the run's changes wait until `until`, their attempt
    uncounted (it was not their fault), and the next run counts them afresh."""
    taken = [work for work in works if work.key in counted]
    for model, ids in _ids_by_model(taken).items():
        model.objects.filter(pk__in=ids).update(
            publish_retry_at=until, publish_attempts=F("publish_attempts") - 1
        )
    counted.difference_update(work.key for work in taken)


def _settle_abandoned(
    repository: Repository, works: list[Work], run: PublishRun, *, now: datetime
) -> None:
    """Changes taken up PORTAL_PUBLISH_ATTEMPTS times with no outcome (their worker died each
    time): settled by a read, never by another publish."""
    try:
        targets = trust.fetch(repository, now=now).targets.signed
    except NotaryError as error:
        logger.warning("repository %s: abandoned changes wait, cannot read: %s", repository, error)
        return
    delegations = targets.delegations
    result = PublishResult(
        changed=False, version_before=targets.version, version_after=targets.version
    )
    for work in works:
        try:
            change = _change_of(work)
        except InvalidKey as error:
            work_fail(work, error.message, run, now=now)
            continue
        trial = delegations.copy()
        change.apply(trial)
        if trial.to_dict() != delegations.to_dict():
            work_fail(
                work,
                f"The worker stopped or met an unexpected error {work.row.publish_attempts} "
                "times while publishing this change, so the portal gave up; administrators "
                "find the details in the worker's log and among the failed jobs.",
                run,
                now=now,
            )
            continue
        with transaction.atomic():  # in place already: recorded as found
            if work.delegation is not None:
                owners = repository_owners_or_known(repository=repository)
                delegation_end_record(
                    work.delegation,
                    result,
                    changed=False,
                    published_in=None,
                    owners=owners,
                    now=now,
                )
                run.ended.append(work.delegation.pk)
            elif work.request is not None:
                delegated = requests_delegated_record(
                    [work.request], result, changed_ids=set(), published_in=None, now=now
                )
                run.delegated.extend(request.pk for request in delegated)


def work_fail(work: Work, reason: str, run: PublishRun, *, now: datetime) -> None:
    """The change fails alone, with `reason` for people to read."""
    try:
        if work.finding is not None:
            drift_action_fail(work.finding, reason=reason, now=now)
            return
        if work.delegation is not None:
            delegation_end_fail(delegation_id=work.delegation.pk, reason=reason, now=now)
        elif work.request is not None:
            request_fail(request_id=work.request.pk, reason=reason, now=now)
    except IllegalTransition:
        return  # settled meanwhile by another run
    if work.request_id is not None:
        run.failed.append(work.request_id)


def _ids_by_model(works: list[Work]) -> dict[type[Row], list[int]]:
    grouped: dict[type[Row], list[int]] = {}
    for work in works:
        grouped.setdefault(type(work.row), []).append(work.row.pk)
    return grouped

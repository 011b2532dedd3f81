"""Delegations: a member's own, the ones an owner sees, and the ones owed a reminder."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db.models import Case, CharField, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import Cast, Concat
from django.http import Http404

from ..exceptions import NotAllowed
from ..models import (
    OPEN_STATUSES,
    Delegation,
    DelegationRequest,
    EndReason,
    Notification,
    RequestStatus,
)
from .people import repositories_owned_by

if TYPE_CHECKING:
    from django.contrib.auth.models import User


NOT_AN_OWNER = "Only the owners of a delegation's repository revoke it."


def delegation_of_member(user: User, delegation_id: int) -> Delegation:
    """`user`'s own delegation, active with no end asked; 404 for anyone else's or another."""
    delegation = (
        Delegation.objects.steady()
        .select_related("repository", "request")
        .filter(pk=delegation_id, member=user)
        .first()
    )
    if delegation is None:
        raise Http404("No such delegation")
    return delegation


def delegation_owned_by(user: User, delegation_id: int) -> Delegation:
    """A delegation of a repository `user` owns; 403 alike for others' and for none, so that
    delegation numbers reveal nothing."""
    delegation = (
        Delegation.objects.select_related("repository", "member", "request", "ending_requested_by")
        .filter(pk=delegation_id, repository__in=repositories_owned_by(user))
        .first()
    )
    if delegation is None:
        raise NotAllowed(NOT_AN_OWNER)
    return delegation


def renewable_delegation(user: User, request: DelegationRequest) -> Delegation | None:
    """The active delegation `request` made, when `user` holds it and no renewal is open."""
    if request.requester_id != user.pk or request.status != RequestStatus.DELEGATED:
        return None
    delegation = Delegation.objects.steady().filter(request=request).first()
    if delegation is None or open_renewal_of(delegation) is not None:
        return None
    return delegation


def open_renewal_of(delegation: Delegation) -> DelegationRequest | None:
    """The member's renewal of `delegation` still on its way (pending, approved or applying)."""
    return delegation.renewals.filter(status__in=OPEN_STATUSES).order_by("-id").first()


def active_delegations_owned_by(user: User) -> QuerySet[Delegation]:
    return active_delegations_visible_to(user, everything=False)


def active_delegations_visible_to(user: User, *, everything: bool) -> QuerySet[Delegation]:
    """The active delegations of the repositories `user` owns, or of every repository for an
    auditor (`everything`, from `is_auditor`)."""
    delegations = Delegation.objects.active()
    if not everything:
        delegations = delegations.filter(repository__in=repositories_owned_by(user))
    return delegations.select_related("repository", "member").order_by(
        "repository__namespace", "repository__name", "team", "member__username"
    )


def other_delegations_of_key(delegation: Delegation) -> list[Delegation]:
    """The other active delegations of the same key on the same repository (as other teams)."""
    return list(
        Delegation.objects.active()
        .filter(repository=delegation.repository, canonical_key_id=delegation.canonical_key_id)
        .exclude(pk=delegation.pk)
        .select_related("member")
    )


def delegations_owing_certificate_reminder(
    *, now: datetime, days_before: list[int], kind: str
) -> list[tuple[Delegation, str]]:
    """Active delegations whose certificate expires within the largest of `days_before`, each
    with the reminder it is owed now ("7d", "30d"): the smallest day count it is within. Those
    whose reminder of that occasion was owed already are left out, in the same query, and so
    are those whose last day comes first (they are reminded of that instead)."""
    ending_with_certificate = Delegation.objects.filter(
        Q(ends_at__isnull=True) | Q(ends_at__gte=F("certificate_expires_at"))
    )
    return _owing_reminder(
        ending_with_certificate,
        "certificate_expires_at",
        now=now,
        days_before=days_before,
        kind=kind,
    )


def delegations_owing_end_reminder(
    *, now: datetime, days_before: list[int], kind: str
) -> list[tuple[Delegation, str]]:
    """As `delegations_owing_certificate_reminder`, for delegations whose last day (`until`)
    comes before their certificate expires. The occasion names the day ("7d 2027-03-01"), so a
    delegation extended after its reminders is reminded again before its new last day."""
    ending_first = Delegation.objects.steady().filter(ends_at__lt=F("certificate_expires_at"))
    return _owing_reminder(
        ending_first, "ends_at", now=now, days_before=days_before, kind=kind, per_day="until"
    )


def _owing_reminder(
    steady: QuerySet[Delegation],
    deadline: str,
    *,
    now: datetime,
    days_before: list[int],
    kind: str,
    per_day: str = "",
) -> list[tuple[Delegation, str]]:
    windows = sorted(set(days_before))
    if not windows:
        return []

    def label(days: int) -> Value | Concat:
        if not per_day:
            return Value(f"{days}d")
        return Concat(Value(f"{days}d "), Cast(per_day, output_field=CharField()))

    occasion = Case(
        *(
            When(**{f"{deadline}__lte": now + timedelta(days=days)}, then=label(days))
            for days in windows
        ),
        default=Value(""),
        output_field=CharField(),
    )
    owed = Notification.objects.filter(
        request=OuterRef("request"), kind=kind, occasion=OuterRef("reminder_occasion")
    )
    due = (
        steady.filter(
            **{f"{deadline}__gt": now, f"{deadline}__lte": now + timedelta(days=windows[-1])}
        )
        .annotate(reminder_occasion=occasion)
        .exclude(Exists(owed))
        .select_related("repository", "request__repository", "request__requester", "member")
        .order_by(deadline, "id")
    )
    # reminder_occasion is the query's annotation.
    return [(delegation, delegation.reminder_occasion) for delegation in due]


def delegations_expired(*, now: datetime) -> QuerySet[Delegation]:
    """Steady delegations whose last day is over or whose certificate has expired, but not those
    whose expiry the worker already gave up on (an owner revokes those by hand)."""
    return (
        Delegation.objects.steady()
        .filter(Q(ends_at__lte=now) | Q(certificate_expires_at__lte=now))
        .exclude(failed_ending=EndReason.EXPIRED)
        .select_related("repository", "request__repository", "member")
        .order_by("repository_id", "id")
    )

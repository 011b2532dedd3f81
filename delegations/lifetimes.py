"""How long a delegation lasts: until a date the member picks (owners may only shorten it, and a
repository may cap it), or as long as the certificate is valid, whichever comes first.

A date means the whole of that day in the portal's time zone (`PORTAL_TIME_ZONE`): a delegation
"until 1 March" ends when 2 March begins there.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Protocol

from django.utils import timezone

from .exceptions import InvalidInput

FIELD = "until"


class LifetimeLimits(Protocol):
    """What a repository says about the lifetime of its delegations."""

    max_delegation_days: int | None
    default_delegation_days: int | None


def end_of(until: date) -> datetime:
    """The moment a delegation that lasts `until` (inclusive) ends: the next day's start."""
    return timezone.make_aware(datetime.combine(until + timedelta(days=1), time.min))


def today(now: datetime) -> date:
    return timezone.localdate(now)


def last_day_of(certificate_not_after: datetime) -> date:
    """The last day a certificate is valid on, in the portal's time zone."""
    return timezone.localdate(certificate_not_after)


def latest_allowed(limits: LifetimeLimits, *, now: datetime) -> date | None:
    """The latest date the repository allows for a delegation asked for or approved at `now`;
    None without a limit."""
    if limits.max_delegation_days is None:
        return None
    return today(now) + timedelta(days=limits.max_delegation_days)


def default_until(limits: LifetimeLimits, *, now: datetime) -> date | None:
    """What the request form offers: the repository's default, else its longest; None for as
    long as the certificate is valid."""
    days = limits.default_delegation_days or limits.max_delegation_days
    return today(now) + timedelta(days=days) if days else None


def until_check(
    until: date | None, *, limits: LifetimeLimits, certificate_not_after: datetime, now: datetime
) -> date | None:
    """`until` (None: as long as the certificate is valid) if the repository allows it, else
    InvalidInput naming the field and the dates it may be."""
    certificate_ends = last_day_of(certificate_not_after)
    latest = latest_allowed(limits, now=now)
    if until is None:
        if latest is not None and latest < certificate_ends:
            raise _longer_than_allowed(limits, latest)
        return None
    if until <= today(now):
        raise InvalidInput(f"Choose a date after today ({today(now).isoformat()}).", field=FIELD)
    if until > certificate_ends:
        raise InvalidInput(
            f"The certificate expires on {certificate_ends.isoformat()}, and the delegation ends "
            "with it: choose that date or an earlier one, or leave the date empty.",
            field=FIELD,
        )
    if latest is not None and until > latest:
        raise _longer_than_allowed(limits, latest)
    return until


def shortened_until(
    until: date | None,
    *,
    asked: date | None,
    limits: LifetimeLimits,
    certificate_not_after: datetime,
    now: datetime,
) -> date | None:
    """The date an approving owner sets (None: they leave the `asked` one): only ever earlier."""
    if until is None:
        return asked
    longest = asked or last_day_of(certificate_not_after)
    if until > longest:
        raise InvalidInput(
            f"Approving can only shorten a delegation: choose {longest.isoformat()} or an "
            "earlier date.",
            field=FIELD,
        )
    return until_check(until, limits=limits, certificate_not_after=certificate_not_after, now=now)


def _longer_than_allowed(limits: LifetimeLimits, latest: date) -> InvalidInput:
    return InvalidInput(
        f"This repository's delegations last at most {limits.max_delegation_days} days: choose "
        f"a date on or before {latest.isoformat()}.",
        field=FIELD,
    )

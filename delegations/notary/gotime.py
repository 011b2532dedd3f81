"""The `expires` timestamps of TUF metadata, in the exact form Go's `time.Time` writes them.

Go keeps nanoseconds and the UTC offset, and writes RFC 3339 with the fraction's trailing zeros
removed and `Z` for a zero offset (protocol note §5.1). A server re-serialises what we upload in
that form, so `.120Z` or `+00:00` from us would break every reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from .errors import InvalidMetadata

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})\Z"
)


@dataclass(frozen=True)
class GoTime:
    """A point in time with Go's precision: whole seconds (with offset) plus nanoseconds."""

    seconds: datetime
    nanosecond: int = 0

    @classmethod
    def from_datetime(cls, moment: datetime) -> GoTime:
        if moment.tzinfo is None:
            raise ValueError("expiry times must be timezone-aware")
        return cls(moment.replace(microsecond=0), moment.microsecond * 1000)

    @classmethod
    def parse(cls, text: object) -> GoTime:
        match = _RFC3339.match(text) if isinstance(text, str) else None
        if not match:
            raise InvalidMetadata(f"not an RFC 3339 time: {text!r}")
        year, month, day, hour, minute, second, fraction, offset = match.groups()
        try:
            if offset == "Z":
                zone = UTC
            else:
                sign = -1 if offset[0] == "-" else 1
                hours, minutes = int(offset[1:3]), int(offset[4:6])
                zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
            seconds = datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=zone
            )
        except ValueError as error:
            raise InvalidMetadata(f"not a valid time: {text!r} ({error})") from None
        nanosecond = int((fraction or "0").ljust(9, "0"))
        return cls(seconds, nanosecond)

    def format(self) -> str:
        text = self.seconds.strftime("%Y-%m-%dT%H:%M:%S")
        if self.nanosecond:
            text += "." + f"{self.nanosecond:09d}".rstrip("0")
        offset = self.seconds.utcoffset() or timedelta(0)
        if not offset:
            return text + "Z"
        total_minutes = int(offset.total_seconds()) // 60
        sign = "-" if total_minutes < 0 else "+"
        hours, minutes = divmod(abs(total_minutes), 60)
        return f"{text}{sign}{hours:02d}:{minutes:02d}"

    def as_datetime(self) -> datetime:
        """The time in UTC, to the microsecond (the sub-microsecond rest is dropped)."""
        try:
            moment = self.seconds + timedelta(microseconds=self.nanosecond // 1000)
            return moment.astimezone(UTC)
        except OverflowError:
            # Only at the edges of year 1 and 9999, which no real expiry is near.
            raise InvalidMetadata(f"the time {self.format()} is out of range") from None

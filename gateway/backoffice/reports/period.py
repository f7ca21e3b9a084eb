"""The dates a report covers: whole days, in UTC or in a named time zone, as one half-open range
of epoch seconds (`start <= t < end`), which is one indexed integer range on every database.

`--from 2026-11-01 --to 2026-11-30 --tz Europe/Paris` covers 1 November 00:00:00 Paris time up to
(not including) 1 December 00:00:00 Paris time: an entry at 23:59:59 on the 30th is in, one at
00:00:00 on the 1st of December is not. Days are local days of the zone, so a day of a change to
or from summer time is 23 or 25 hours long.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.backoffice.reports.errors import ReportError

UTC_NAME = "UTC"
DAY_SECONDS = 86400


def zone(name: str | None) -> dt.tzinfo:
    """The time zone called `name` (IANA, e.g. Europe/Paris); UTC when none is given."""
    if name is None or name.upper() == UTC_NAME:
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportError("tz", f"unknown time zone {name!r} (an IANA name such as "
                                "Europe/Paris, or UTC)") from None


def parse_day(param: str, text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ReportError(param, f"{text!r}: expected a date, YYYY-MM-DD") from None


def day_start(day: dt.date, tz: dt.tzinfo) -> int:
    """Epoch seconds of the first second of `day` in `tz`."""
    return int(dt.datetime.combine(day, dt.time(), tzinfo=tz).timestamp())


@dataclass(frozen=True, slots=True)
class Period:
    """Days `first` to `last` (both included) in `tz`: `start <= t < end`."""

    first: dt.date
    last: dt.date
    tz: dt.tzinfo

    @property
    def start(self) -> int:
        return day_start(self.first, self.tz)

    @property
    def end(self) -> int:
        return day_start(self.last + dt.timedelta(days=1), self.tz)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def describe(self) -> str:
        span = self.first.isoformat() if self.first == self.last else \
            f"{self.first.isoformat()}..{self.last.isoformat()}"
        return f"{span} ({zone_name(self.tz)})"

    def time_format(self) -> TimeFormat:
        return TimeFormat(self)


class TimeFormat:
    """Epoch seconds -> ISO 8601 in the period's zone, to the second, with its offset (`Z` for
    UTC): `2026-11-24T09:15:02Z`, `2026-11-24T10:15:02+01:00`. A report writes one per row, so
    it is arithmetic on the period's offsets with each day's date made once, not a datetime
    per row (a third of a large report's time went to strftime)."""

    def __init__(self, period: Period):
        self.tz = period.tz
        self.start = period.start
        self.pieces = [(until, offset, _suffix(offset))
                       for until, offset in offsets_between(period.start, period.end, period.tz)]
        self.dates: dict[int, str] = {}

    def __call__(self, t: int) -> str:
        if not self.start <= t < self.pieces[-1][0]:  # outside the period: rare, exact anyway
            return _iso(dt.datetime.fromtimestamp(t, self.tz))
        piece = self.pieces[0]
        if t >= piece[0]:  # after a change of offset (summer time) within the period
            piece = next(p for p in self.pieces if t < p[0])
        _until, offset, suffix = piece
        day, second = divmod(t + offset, DAY_SECONDS)
        date = self.dates.get(day)
        if date is None:
            date = self.dates[day] = day_of(day) + "T"
        hour, second = divmod(second, 3600)
        minute, second = divmod(second, 60)
        return f"{date}{_TWO[hour]}:{_TWO[minute]}:{_TWO[second]}{suffix}"


_TWO = [f"{n:02d}" for n in range(60)]


def _suffix(offset: int) -> str:
    if offset == 0:
        return "Z"
    sign = "-" if offset < 0 else "+"
    hours, rest = divmod(abs(offset), 3600)
    return f"{sign}{hours:02d}:{rest // 60:02d}"


def _iso(when: dt.datetime) -> str:
    delta = when.utcoffset()
    return when.strftime("%Y-%m-%dT%H:%M:%S") + _suffix(int(delta.total_seconds()) if delta
                                                       else 0)


def zone_name(tz: dt.tzinfo) -> str:
    return UTC_NAME if tz is dt.UTC else str(tz)


def day_of(number: int) -> str:
    """A local day number (days since 1970-01-01 in a zone: base.local_day) as YYYY-MM-DD."""
    return (dt.date(1970, 1, 1) + dt.timedelta(days=int(number))).isoformat()


def offsets_between(start: int, end: int, tz: dt.tzinfo) -> list[tuple[int, int]]:
    """The zone's UTC offset over [start, end) as pieces (until, offset seconds): each offset
    holds up to (not including) its `until`, the last one up to `end`. Probed a day apart (no
    zone changes its offset twice in a day), then found to the second by bisection."""
    def offset(t: int) -> int:
        delta = dt.datetime.fromtimestamp(t, tz).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    pieces: list[tuple[int, int]] = []
    current = offset(start)
    probe = start
    while probe < end - 1:
        ahead = min(probe + DAY_SECONDS, end - 1)
        if offset(ahead) == current:
            probe = ahead
            continue
        low, high = probe, ahead  # offset(low) == current != offset(high)
        while high - low > 1:
            middle = (low + high) // 2
            if offset(middle) == current:
                low = middle
            else:
                high = middle
        pieces.append((high, current))
        current, probe = offset(high), high
    pieces.append((end, current))
    return pieces

"""Days, weeks and months of a period as SQL group keys, for reports that give one row per
stretch of time (`analytics`, `transactions --group-by week`).

Each key is an integer computed on the database from the entry's epoch seconds `t` in the
period's zone (base.local_day): a day is the local day number, a week is the number of the
Monday-to-Sunday week it falls in, a month is `year * 12 + month - 1` found by a CASE over the
period's month starts (a year is twelve branches). `label` writes a key as the ISO date of the
stretch's first day, or of the period's first day for a stretch that begins before it, so a
week or month cut by the period is named by the first day it counts.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, literal
from sqlalchemy.sql.elements import ColumnElement

from gateway.backoffice.reports.base import local_day
from gateway.backoffice.reports.period import Period, day_start

BUCKETS = ("day", "week", "month")
EPOCH = dt.date(1970, 1, 1)
THURSDAY_TO_MONDAY = 3  # 1970-01-01 was a Thursday: day + 3 counts weeks from a Monday


def bucket_key(period: Period, by: str, t: ColumnElement) -> ColumnElement:
    if by == "day":
        return local_day(period, t)
    if by == "week":
        return (local_day(period, t) + THURSDAY_TO_MONDAY) // 7
    starts = month_starts(period)
    if len(starts) == 1:
        return literal(_month_number(starts[0]))
    return case(*[(t < day_start(later, period.tz), _month_number(month))
                  for month, later in zip(starts, starts[1:], strict=False)],
                else_=_month_number(starts[-1]))


def month_starts(period: Period) -> list[dt.date]:
    """The first day of each month the period touches."""
    month = period.first.replace(day=1)
    found = []
    while month <= period.last:
        found.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return found


def _month_number(first: dt.date) -> int:
    return first.year * 12 + first.month - 1


def first_day(by: str, key: int) -> dt.date:
    """The first day of the stretch `key` stands for."""
    if by == "day":
        return EPOCH + dt.timedelta(days=int(key))
    if by == "week":
        return EPOCH + dt.timedelta(days=int(key) * 7 - THURSDAY_TO_MONDAY)
    return dt.date(int(key) // 12, int(key) % 12 + 1, 1)


def label(period: Period, by: str, key: int) -> str:
    return max(first_day(by, key), period.first).isoformat()


def key_of_day(by: str, number: int) -> int:
    """The key of the stretch that local day `number` (days since 1970-01-01) is in."""
    if by == "day":
        return number
    if by == "week":
        return (number + THURSDAY_TO_MONDAY) // 7
    return _month_number(EPOCH + dt.timedelta(days=number))


def day_numbers(period: Period) -> range:
    """The period's local days as day numbers (days since 1970-01-01)."""
    return range((period.first - EPOCH).days, (period.last - EPOCH).days + 1)


def all_keys(period: Period, by: str) -> list[int]:
    """Every stretch of the period in order, those with no entries too (a chart's x axis)."""
    keys: list[int] = []
    for number in day_numbers(period):
        key = key_of_day(by, number)
        if not keys or keys[-1] != key:
            keys.append(key)
    return keys

"""The period of a report page (analytics, staff report): `from` and `to` days and the stretch
`by` (day, week, month) from the page's query string, in a time zone, checked with the reports
package's own parsing (gateway/backoffice/reports/period.py), and the CSV download of a page's
table.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.backoffice.reports.buckets import BUCKETS
from gateway.backoffice.reports.errors import ReportError
from gateway.backoffice.reports.period import Period, parse_day
from gateway.web.portal.web import Asset

DEFAULT_DAYS = 30  # a page opened without dates shows the last 30 days, today included
MAX_DAYS = 731  # two years: this year against the last
MAX_DAY_BARS = 366  # a longer period is drawn by week or month


@dataclass(frozen=True, slots=True)
class Chosen:
    """What the form holds, for filling it back in (valid or not)."""

    first: str
    last: str
    by: str


class FormError(ValueError):
    """A field of the form is wrong: the message says which and why."""


def chosen_period(query: dict[str, str], tz: dt.tzinfo, now: float) -> tuple[Chosen, Period]:
    today = dt.datetime.fromtimestamp(now, tz).date()
    first_text = query.get("from") or (today - dt.timedelta(days=DEFAULT_DAYS - 1)).isoformat()
    last_text = query.get("to") or today.isoformat()
    chosen = Chosen(first_text[:10], last_text[:10], query.get("by") or "day")
    if chosen.by not in BUCKETS:
        raise FormError("By: day, week or month.")
    try:
        first, last = parse_day("from", first_text), parse_day("to", last_text)
    except ReportError as e:
        raise FormError(f"{'From' if e.param == 'from' else 'To'}: a date, YYYY-MM-DD.") from None
    if last < first:
        raise FormError("To: on or after From.")
    days = (last - first).days + 1
    if days > MAX_DAYS:
        raise FormError(f"From and To: at most {MAX_DAYS} days apart.")
    if chosen.by == "day" and days > MAX_DAY_BARS:
        raise FormError(f"By: more than {MAX_DAY_BARS} days; choose week or month.")
    return chosen, Period(first=first, last=last, tz=tz)


def csv_download(filename: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
                 ) -> Asset:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return Asset(buffer.getvalue().encode(), b"text/csv; charset=utf-8", b"no-store", filename)

"""A report's parameters, the same for the command line and the admin API: read from a mapping
of name -> values (argparse's appended lists, or a URL's query string), checked, and kept as a
Query. A bad or unknown parameter is a ReportError that names it.

  from, to        days, YYYY-MM-DD, both included; `liability` is as of the end of `to`
  tz              the zone the days are in (IANA name); default UTC
  merchant, terminal, program, op, customer-type, reseller, opid
                  filters; each may be given more than once (any of them matches); `opid`
                  is the staff member (or operator) who made the entry
  group-by        `transactions`: day, week, month, merchant, terminal, program or op;
                  `analytics`: day, week or month (default day)
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.backoffice.reports.errors import ReportError
from gateway.backoffice.reports.period import Period, parse_day, zone

FILTERS = ("merchant", "terminal", "program", "op", "customer-type", "reseller", "opid")
SINGLE = ("from", "to", "tz", "group-by")
GROUPS = ("day", "week", "month", "merchant", "terminal", "program", "op")
# The journal's operations (gateway/ledger/journal.py), operator status changes, and `tier`
# (issue 19): a typo in --op is an error, not an empty report.
OPS = ("activate", "reload", "redeem", "refund", "cashout", "earn", "add_points", "return",
       "redeem_points", "transfer_out", "transfer_in", "transfer_back", "void", "reversal",
       "rollback", "tier", "status:suspended", "status:reinstate", "status:lost",
       "status:closed")
_VALUE = re.compile(r"^[ -~]{1,64}$")  # printable ASCII: ids, codes and names of the config


@dataclass(frozen=True, slots=True)
class Query:
    period: Period
    merchants: tuple[str, ...] = ()
    terminals: tuple[str, ...] = ()
    programs: tuple[str, ...] = ()
    ops: tuple[str, ...] = ()
    customer_types: tuple[str, ...] = ()
    resellers: tuple[str, ...] = ()
    opids: tuple[str, ...] = ()
    group_by: str | None = None


def parse_query(raw: Mapping[str, Sequence[str]], takes: frozenset[str], *,
                as_of: bool = False, today: dt.date | None = None) -> Query:
    """`takes`: the filters (and `group-by`) this report accepts. `as_of`: the report is as of
    one day (`to`, default today) and takes no `from`."""
    given = {name: list(values) for name, values in raw.items() if values}
    for name in given:
        if name not in FILTERS + SINGLE:
            raise ReportError(name, "unknown parameter (known: "
                              f"{', '.join(SINGLE + FILTERS)})")
        if name in FILTERS + ("group-by",) and name not in takes:
            raise ReportError(name, "not a parameter of this report")
        if name in SINGLE and len(given[name]) > 1:
            raise ReportError(name, "given more than once")
        for value in given[name]:
            if not _VALUE.match(value):
                raise ReportError(name, f"{value[:70]!r}: 1 to 64 printable ASCII characters")
    tz = zone(given.get("tz", [None])[0])
    period = _period(given, tz, as_of, today or dt.datetime.now(tz).date())
    ops = tuple(given.get("op", ()))
    for op in ops:
        if op not in OPS:
            raise ReportError("op", f"unknown operation {op!r} (one of {', '.join(OPS)})")
    group_by = given.get("group-by", [None])[0]
    if group_by is not None and group_by not in GROUPS:
        raise ReportError("group-by", f"{group_by!r}: one of {', '.join(GROUPS)}")
    return Query(period=period, merchants=tuple(given.get("merchant", ())),
                 terminals=tuple(given.get("terminal", ())),
                 programs=tuple(given.get("program", ())), ops=ops,
                 customer_types=tuple(given.get("customer-type", ())),
                 resellers=tuple(given.get("reseller", ())),
                 opids=tuple(given.get("opid", ())), group_by=group_by)


def _period(given: dict[str, list[str]], tz: dt.tzinfo, as_of: bool, today: dt.date) -> Period:
    if as_of:
        if "from" in given:
            raise ReportError("from", "this report is as of one day: give --to only")
        last = parse_day("to", given["to"][0]) if "to" in given else today
        return Period(first=last, last=last, tz=tz)
    for name in ("from", "to"):
        if name not in given:
            raise ReportError(name, "required (a date, YYYY-MM-DD)")
    first, last = parse_day("from", given["from"][0]), parse_day("to", given["to"][0])
    if last < first:
        raise ReportError("to", f"{last.isoformat()} is before from {first.isoformat()}")
    return Period(first=first, last=last, tz=tz)

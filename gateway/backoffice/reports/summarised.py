"""The `analytics` and `staff` figures read from the per-day summaries (gateway/backoffice/
summaries.py) instead of the journal: a year of a busy program is a few thousand summary rows,
not a million entries. The figures are the same as the journal's (tests/test_summaries.py
compares them on random journals).

The summaries count a program's days in one zone (summary_zones); `usable` says whether a query
may read them: its period is in that zone for each of its programs. Otherwise the reports read
the journal, as they did before the summaries.

Active cards are exact: a stretch (day, week, month) wholly inside the period is one row of
active_counts; a week or month cut by the period counts the distinct cards of its days inside
the period (card_stretches' day rows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.backoffice.reports.buckets import all_keys, day_numbers, first_day, key_of_day
from gateway.backoffice.reports.period import Period, zone_name
from gateway.backoffice.reports.query import Query
from gateway.backoffice.schema import (
    active_counts,
    card_stretches,
    day_sums,
    staff_card_days,
    staff_day_sums,
    summary_zones,
)
from gateway.backoffice.summaries import ACTIVE_OPS, ALL, LOAD_OPS, POINTS_OPS

EPOCH = dt.date(1970, 1, 1)


async def usable(conn: AsyncConnection, programs: Collection[str], period: Period) -> bool:
    """Whether the summaries of `programs` (every program when empty) count days in the
    period's zone. A program never summarised has no entries: nothing to disagree with."""
    statement = select(summary_zones.c.zone).distinct()
    if programs:
        statement = statement.where(summary_zones.c.program.in_(programs))
    zones = set((await conn.execute(statement)).scalars())
    return zones <= {zone_name(period.tz)}


def _days(period: Period) -> tuple[int, int]:
    days = day_numbers(period)
    return days[0], days[-1]


async def analytics(conn: AsyncConnection, query: Query, by: str
                    ) -> dict[tuple[int, str], tuple[int, ...]]:
    """(stretch key, program) -> the analytics FIGURES, for a query of one merchant at most."""
    assert len(query.merchants) <= 1, "several merchants: read the journal"
    first, last = _days(query.period)
    s = day_sums.c
    statement = select(s.program, s.day, s.op, func.sum(s.entries), func.sum(s.dv),
                       func.sum(s.dp), func.sum(s.rewards)).where(s.day.between(first, last),
                                                                  s.op.in_(ACTIVE_OPS))
    if query.programs:
        statement = statement.where(s.program.in_(query.programs))
    if query.merchants:
        statement = statement.where(s.merchant == query.merchants[0])
    sums: dict[tuple[int, str], list[int]] = {}
    for program, day, op, entries, dv, dp, rewards in (await conn.execute(
            statement.group_by(s.program, s.day, s.op))).all():
        figures = sums.setdefault((key_of_day(by, day), program), [0] * 7)
        entries, dv, dp, rewards = int(entries), int(dv), int(dp), int(rewards)
        if op == "activate":
            figures[0] += entries
        elif op == "reload":
            figures[1] += entries
            figures[2] += dv
        elif op == "redeem":
            figures[3] += entries
            figures[4] -= dv
        elif op in POINTS_OPS:
            figures[5] += dp
        elif op == "redeem_points":
            figures[6] += rewards
    active = await _active_cards(conn, query, by)
    return {key: (*sums.get(key, [0] * 7), active.get(key, 0))
            for key in sums.keys() | active.keys()}


async def _active_cards(conn: AsyncConnection, query: Query, by: str
                        ) -> dict[tuple[int, str], int]:
    period = query.period
    merchant = query.merchants[0] if query.merchants else ALL
    whole: list[int] = []
    cut: list[tuple[int, int, int]] = []  # key, first and last day inside the period
    for key in all_keys(period, by):
        begins, ends = first_day(by, key), _last_day(by, key)
        if begins >= period.first and ends <= period.last:
            whole.append(key)
        else:
            cut.append((key, (max(begins, period.first) - EPOCH).days,
                        (min(ends, period.last) - EPOCH).days))
    found: dict[tuple[int, str], int] = {}
    if whole:
        a = active_counts.c
        statement = select(a.key, a.program, a.cards).where(
            a.kind == by[0], a.key.between(whole[0], whole[-1]), a.merchant == merchant)
        if query.programs:
            statement = statement.where(a.program.in_(query.programs))
        found.update({(key, program): int(cards) for key, program, cards in
                      (await conn.execute(statement)).all()})
    c = card_stretches.c
    for key, first, last in cut:
        counting = select(c.program, func.count(func.distinct(c.card_id))).where(
            c.kind == "d", c.key.between(first, last), c.merchant == merchant)
        if query.programs:
            counting = counting.where(c.program.in_(query.programs))
        found.update({(key, program): int(cards) for program, cards in
                      (await conn.execute(counting.group_by(c.program))).all()})
    return found


def _last_day(by: str, key: int) -> dt.date:
    if by == "day":
        return first_day(by, key)
    if by == "week":
        return first_day(by, key) + dt.timedelta(days=6)
    return first_day(by, key + 1) - dt.timedelta(days=1)


def _filtered(statement: Any, table: Any, query: Query) -> Any:
    for column, values in ((table.c.merchant, query.merchants),
                           (table.c.program, query.programs), (table.c.opid, query.opids)):
        if values:
            statement = statement.where(column.in_(values))
    return statement


async def staff(conn: AsyncConnection, query: Query) -> list[tuple[Any, ...]]:
    """The `staff` rows (opid, program, transactions, points_awarded, rewards_validated,
    loaded, redeemed, members_served; money in minor units), ordered by opid and program."""
    first, last = _days(query.period)
    s = staff_day_sums.c
    statement = _filtered(select(s.opid, s.program, s.op, func.sum(s.entries), func.sum(s.dv),
                                 func.sum(s.dp), func.sum(s.rewards)), staff_day_sums, query)
    rows: dict[tuple[str, str], list[int]] = {}
    for opid, program, op, entries, dv, dp, rewards in (await conn.execute(
            statement.where(s.day.between(first, last)).group_by(s.opid, s.program, s.op)
    )).all():
        figures = rows.setdefault((opid, program), [0] * 5)
        figures[0] += int(entries)
        if op in POINTS_OPS:
            figures[1] += int(dp)
        if op == "redeem_points":
            figures[2] += int(rewards)
        if op in LOAD_OPS:
            figures[3] += int(dv)
        if op == "redeem":
            figures[4] -= int(dv)
    c = staff_card_days.c
    served = dict(_pairs((await conn.execute(_filtered(
        select(c.opid, c.program, func.count(func.distinct(c.card_id))), staff_card_days, query)
        .where(and_(c.day >= first, c.day <= last)).group_by(c.opid, c.program))).all()))
    return [(opid, program or None, *figures, served.get((opid, program), 0))
            for (opid, program), figures in sorted(rows.items())]


def _pairs(rows: Iterable[Any]) -> Iterable[tuple[tuple[str, str], int]]:
    return (((opid, program), int(count)) for opid, program, count in rows)

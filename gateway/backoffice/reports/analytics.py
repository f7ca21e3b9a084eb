"""`analytics`: a program's activity per day, week or month (`group-by`, default day), the
figures of the portal's analytics page (docs/portal.md, "Analytics"):

  day,program,activations,loads,loaded,redemptions,redeemed,points_accrued,rewards_redeemed,active_cards
  2026-11-24,gift,1,0,0.00,2,32.49,0,0,2

activations: `activate` entries; loads and loaded: `reload` entries and the value they added;
redemptions and redeemed: `redeem` entries (gift spend) and the value they took; points_accrued:
points added by `earn` and `add_points` (promotions' bonuses included); rewards_redeemed:
reward claims (`redeem_points` entries naming a reward); active_cards: distinct cards with an
entry of a customer's operation (ACTIVE_OPS) in the stretch. A voided entry still counts on its
day (its undo is an entry of its own), as in `customer-activity`. Every stretch of the period
has its row per program, those without entries too (zeros), so a chart has no gaps; with no
`program` filter every program of the config is listed.

The figures come from the per-day summaries (summarised.py) when the period is in the zone
they count days in and at most one merchant is asked for (a manager's page); otherwise from the
journal, the same figures more slowly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from gateway.backoffice.reports import summarised
from gateway.backoffice.reports.base import Report, Row, j, journal_filters
from gateway.backoffice.reports.buckets import BUCKETS, all_keys, bucket_key, label
from gateway.backoffice.reports.catalogue import SUMMARIES
from gateway.backoffice.reports.errors import ReportError
from gateway.backoffice.reports.money import Money
from gateway.backoffice.reports.query import Query
from gateway.backoffice.summaries import ACTIVE_OPS, POINTS_OPS
from gateway.config.model import Config

FIGURES = ("activations", "loads", "loaded", "redemptions", "redeemed", "points_accrued",
           "rewards_redeemed", "active_cards")
MONEY = frozenset({"loaded", "redeemed"})


def _count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


def _total(condition: ColumnElement[bool], value: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.sum(case((condition, value), else_=0))


class Analytics(Report):
    name = "analytics"
    summary = SUMMARIES[name]
    takes = frozenset({"merchant", "program", "group-by"})

    def columns(self, query: Query) -> tuple[str, ...]:
        return (_by(query), "program", *FIGURES)

    async def batches(self, conn: AsyncConnection, config: Config, query: Query
                      ) -> AsyncIterator[list[Row]]:
        by = _by(query)
        if len(query.merchants) <= 1 and await summarised.usable(conn, query.programs,
                                                                   query.period):
            found = await summarised.analytics(conn, query, by)
        else:
            found = await from_journal(conn, query, by)
        programs = sorted(set(query.programs or config.programs) |
                          {p for _k, p in found if not query.programs})
        money = Money(config)
        zeros = (0,) * len(FIGURES)
        yield [(label(query.period, by, k), program or None,
                *(money.format(v, program) if name in MONEY else v
                  for name, v in zip(FIGURES, found.get((k, program), zeros), strict=True)))
               for k in all_keys(query.period, by) for program in programs]


async def from_journal(conn: AsyncConnection, query: Query, by: str
                       ) -> dict[tuple[int, str], tuple[int, ...]]:
    """(stretch key, program) -> FIGURES, aggregated over the journal's entries."""
    key = bucket_key(query.period, by, j.c.t).label("key")
    op = j.c.op
    statement = journal_filters(select(
        key, j.c.program, _count(op == "activate"), _count(op == "reload"),
        _total(op == "reload", j.c.dv), _count(op == "redeem"),
        _total(op == "redeem", -j.c.dv), _total(op.in_(POINTS_OPS), j.c.dp),
        _count(and_(op == "redeem_points", j.c.reward.is_not(None))),
        func.count(func.distinct(j.c.card_id))), query).where(op.in_(ACTIVE_OPS))
    return {(k, program or ""): tuple(int(v or 0) for v in figures)
            for k, program, *figures in (await conn.execute(
                statement.group_by(key, j.c.program))).all()}


def _by(query: Query) -> str:
    by = query.group_by or "day"
    if by not in BUCKETS:
        raise ReportError("group-by", f"{by!r}: one of {', '.join(BUCKETS)} for this report")
    return by

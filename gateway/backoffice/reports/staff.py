"""`staff`: what each staff member (the journal's `opid`: a till's staff id, the portal's
staff member, `token:<id>` or `cli:<user>` of an operator) did over a range of days, per
program (amounts of different currencies never add up):

  opid,program,transactions,points_awarded,rewards_validated,loaded,redeemed,members_served
  ANNA,loyalty,3,220,1,0.00,0.00,2

transactions: their entries (every operation, undos included); points_awarded: points added by
their `earn` and `add_points`; rewards_validated: reward claims they made; loaded: value their
activations and loads added; redeemed: value their `redeem` entries took; members_served:
distinct cards they made an entry on. Entries without an opid are not listed. `merchant`
limits it to entries made at those merchants' tills and counters (a manager's own staff).

The figures come from the per-day summaries (summarised.py) when the period is in the zone
they count days in; otherwise from the journal, the same figures more slowly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.backoffice.reports import summarised
from gateway.backoffice.reports.base import Report, Row, j, journal_filters
from gateway.backoffice.reports.catalogue import SUMMARIES
from gateway.backoffice.reports.money import Money
from gateway.backoffice.reports.query import Query
from gateway.backoffice.summaries import LOAD_OPS, POINTS_OPS
from gateway.config.model import Config

COLUMNS = ("opid", "program", "transactions", "points_awarded", "rewards_validated", "loaded",
           "redeemed", "members_served")


class Staff(Report):
    name = "staff"
    summary = SUMMARIES[name]
    takes = frozenset({"merchant", "program", "opid"})

    def columns(self, query: Query) -> tuple[str, ...]:
        return COLUMNS

    async def batches(self, conn: AsyncConnection, config: Config, query: Query
                      ) -> AsyncIterator[list[Row]]:
        money = Money(config)
        if await summarised.usable(conn, query.programs, query.period):
            rows = await summarised.staff(conn, query)
        else:
            rows = await from_journal(conn, query)
        # a row per staff member and program: a few hundred, one batch
        yield [(opid, program, count, points, rewards, money.format(loaded, program),
                money.format(redeemed, program), cards)
               for opid, program, count, points, rewards, loaded, redeemed, cards in rows]


async def from_journal(conn: AsyncConnection, query: Query) -> list[Row]:
    """The rows (money in minor units) aggregated over the journal's entries."""
    op = j.c.op
    statement = journal_filters(select(
        j.c.opid, j.c.program, func.count(),
        func.sum(case((op.in_(POINTS_OPS), j.c.dp), else_=0)),
        func.sum(case((and_(op == "redeem_points", j.c.reward.is_not(None)), 1), else_=0)),
        func.sum(case((op.in_(LOAD_OPS), j.c.dv), else_=0)),
        func.sum(case((op == "redeem", -j.c.dv), else_=0)),
        func.count(func.distinct(j.c.card_id))), query).where(j.c.opid.is_not(None))
    grouping = (j.c.opid, j.c.program)
    return [(opid, program, count, int(points or 0), int(rewards or 0), int(loaded or 0),
             int(redeemed or 0), cards)
            for opid, program, count, points, rewards, loaded, redeemed, cards in
            (await conn.execute(statement.group_by(*grouping).order_by(*grouping))).all()]

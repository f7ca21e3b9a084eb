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
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.backoffice.reports.base import Report, Row, j, journal_filters, streamed
from gateway.backoffice.reports.catalogue import SUMMARIES
from gateway.backoffice.reports.money import Money
from gateway.backoffice.reports.query import Query
from gateway.config.model import Config

POINTS_OPS = ("earn", "add_points")
LOAD_OPS = ("activate", "reload")
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
        op = j.c.op
        statement = journal_filters(select(
            j.c.opid, j.c.program, func.count(),
            func.sum(case((op.in_(POINTS_OPS), j.c.dp), else_=0)),
            func.sum(case((and_(op == "redeem_points", j.c.reward.is_not(None)), 1), else_=0)),
            func.sum(case((op.in_(LOAD_OPS), j.c.dv), else_=0)),
            func.sum(case((op == "redeem", -j.c.dv), else_=0)),
            func.count(func.distinct(j.c.card_id))), query).where(j.c.opid.is_not(None))
        grouping = (j.c.opid, j.c.program)
        money = Money(config)
        async for batch in streamed(conn, statement.group_by(*grouping).order_by(*grouping)):
            yield [(opid, program, count, int(points or 0), int(rewards or 0),
                    money.format(loaded, program), money.format(redeemed, program), cards)
                   for opid, program, count, points, rewards, loaded, redeemed, cards in batch]

"""`liability`: what the cards of each program owe as of the end of a day (`to`, default today):
the sum of the balance and of the points of every card's last entry at or before that moment,
the books' number for outstanding liability.

  as_of,program,cards,balance,points
  2026-11-30,gift,2,37.50,0

`cards` counts the cards that had an entry by then (with a balance of zero too). A card's last
entry is its highest `seq` (the ledger's change counter), found on the (card_id, t, seq) index.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.backoffice.reports.base import Report, Row, j
from gateway.backoffice.reports.catalogue import SUMMARIES
from gateway.backoffice.reports.money import Money
from gateway.backoffice.reports.query import Query
from gateway.config.model import Config


class Liability(Report):
    name = "liability"
    summary = SUMMARIES[name]
    takes = frozenset({"program"})
    as_of = True

    def columns(self, query: Query) -> tuple[str, ...]:
        return ("as_of", "program", "cards", "balance", "points")

    async def batches(self, conn: AsyncConnection, config: Config, query: Query
                      ) -> AsyncIterator[list[Row]]:
        last = (select(j.c.card_id, func.max(j.c.seq).label("seq"))
                .where(j.c.t < query.period.end).group_by(j.c.card_id).subquery("last"))
        statement = (select(j.c.program, func.count(), func.sum(j.c.bal), func.sum(j.c.pts))
                     .join(last, and_(j.c.card_id == last.c.card_id, j.c.seq == last.c.seq))
                     .group_by(j.c.program).order_by(j.c.program))
        if query.programs:
            statement = statement.where(j.c.program.in_(query.programs))
        money, as_of = Money(config), query.period.last.isoformat()
        yield [(as_of, program, cards, money.format(bal, program), int(pts or 0))
               for program, cards, bal, pts in (await conn.execute(statement)).all()]

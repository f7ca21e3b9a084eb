"""`tiers`: card rank (tier) changes, from the journal's entries of operation `tier`.

A card's tier goes up inside the earn that reaches a threshold and down at a periodic review
(docs/ledger.md, "Tiers"); each change is a zero-value `tier` entry whose `tier` / `tier_from`
the feed carries into journal_entries (0008):

  time,card,program,tier_from,tier_to,points,merchant,terminal,request_key

`points` is the card's points after the change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.backoffice.reports.base import Report, Row, j, journal_filters, streamed
from gateway.backoffice.reports.catalogue import SUMMARIES
from gateway.backoffice.reports.query import Query
from gateway.config.model import Config

TIER_OP = "tier"


class Tiers(Report):
    name = "tiers"
    summary = SUMMARIES[name]
    takes = frozenset({"merchant", "program"})

    def columns(self, query: Query) -> tuple[str, ...]:
        return ("time", "card", "program", "tier_from", "tier_to", "points", "merchant",
                "terminal", "request_key")

    async def batches(self, conn: AsyncConnection, config: Config, query: Query
                      ) -> AsyncIterator[list[Row]]:
        statement = journal_filters(
            select(j.c.t, j.c.card_mask, j.c.program, j.c.tier_from, j.c.tier, j.c.pts,
                   j.c.merchant, j.c.terminal, j.c.request_key), query).where(j.c.op == TIER_OP)
        when = query.period.time_format()
        async for batch in streamed(conn, statement.order_by(j.c.t, j.c.card_id, j.c.seq)):
            yield [(when(t), *rest) for t, *rest in batch]

"""`transactions`: the journal's entries of a range of days, filtered by merchant (store),
terminal, program, operation and customer type; one row per entry, then the totals (count and
sums per operation and program), or with `group-by` one summary row per group and program.

Entry rows and total rows share the columns; the first, `row`, says which a row is:

  row,time,card,op,program,merchant,terminal,request_key,count,amount,points
  entry,2026-11-24T09:15:02Z,603953******0018,redeem,gift,STORE0000000001,TILL0001,k1,1,-12.50,0
  total,,,redeem,gift,,,,1,-12.50,0

Totals are per operation *and* program, so that amounts of different currencies never add up.
They are counted while the rows stream past: one pass over the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.backoffice.reports.base import (
    Report,
    Row,
    j,
    journal_filters,
    of_customer_types,
    streamed,
)
from gateway.backoffice.reports.buckets import BUCKETS, bucket_key, label
from gateway.backoffice.reports.catalogue import SUMMARIES
from gateway.backoffice.reports.money import Money
from gateway.backoffice.reports.query import Query
from gateway.config.model import Config

ENTRY_COLUMNS = ("row", "time", "card", "op", "program", "merchant", "terminal", "request_key",
                 "count", "amount", "points")
GROUP_COLUMNS = ("program", "count", "amount", "points")


class Transactions(Report):
    name = "transactions"
    summary = SUMMARIES[name]
    takes = frozenset({"merchant", "terminal", "program", "op", "customer-type", "group-by"})

    def columns(self, query: Query) -> tuple[str, ...]:
        if query.group_by is None:
            return ENTRY_COLUMNS
        if query.group_by == "program":
            return GROUP_COLUMNS
        return (query.group_by, *GROUP_COLUMNS)

    def batches(self, conn: AsyncConnection, config: Config, query: Query
                ) -> AsyncIterator[list[Row]]:
        if query.group_by is None:
            return self._entries(conn, config, query)
        return self._groups(conn, config, query)

    async def _entries(self, conn: AsyncConnection, config: Config, query: Query
                       ) -> AsyncIterator[list[Row]]:
        statement = select(j.c.t, j.c.card_mask, j.c.op, j.c.program, j.c.merchant,
                           j.c.terminal, j.c.request_key, j.c.dv, j.c.dp)
        statement = journal_filters(await of_customer_types(conn, statement, query), query)
        statement = statement.order_by(j.c.t, j.c.card_id, j.c.seq)
        money, when = Money(config), query.period.time_format()
        totals: dict[tuple[str, str], list[int]] = {}
        async for batch in streamed(conn, statement):
            rows = []
            for t, mask, op, program, merchant, terminal, key, dv, dp in batch:
                rows.append(("entry", when(t), mask, op, program, merchant, terminal, key, 1,
                             money.format(dv, program), dp))
                total = totals.get((op, program or ""))
                if total is None:
                    totals[(op, program or "")] = [1, dv, dp]
                else:
                    total[0] += 1
                    total[1] += dv
                    total[2] += dp
            yield rows
        yield [("total", None, None, op, program or None, None, None, None, count,
                money.format(dv, program), dp)
               for (op, program), (count, dv, dp) in sorted(totals.items())]

    async def _groups(self, conn: AsyncConnection, config: Config, query: Query
                      ) -> AsyncIterator[list[Row]]:
        by = query.group_by or ""
        key = bucket_key(query.period, by, j.c.t) if by in BUCKETS else {
            "merchant": j.c.merchant, "terminal": j.c.terminal, "op": j.c.op}.get(by)
        figures = (j.c.program, func.count(), func.sum(j.c.dv), func.sum(j.c.dp))
        statement = select(key.label("key"), *figures) if key is not None else select(*figures)
        statement = journal_filters(await of_customer_types(conn, statement, query), query)
        grouping = (key, j.c.program) if key is not None else (j.c.program,)
        statement = statement.group_by(*grouping).order_by(*grouping)
        money = Money(config)
        rows: list[Row] = []
        for found in (await conn.execute(statement)).all():
            *group, program, count, dv, dp = found
            if group and by in BUCKETS:
                group = [label(query.period, by, group[0])]
            rows.append((*group, program, count, money.format(dv, program), int(dp or 0)))
        yield rows

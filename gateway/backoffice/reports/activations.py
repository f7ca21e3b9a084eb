"""`activations`: cards activated and loaded, by reseller and local day. A merchant belongs to
the reseller its config names (`[merchants.<id>] reseller = "blackhawk"`); merchants with no
reseller (the operator's own stores) are together under an empty `reseller`.

  day,reseller,program,activations,activated,loads,loaded,reversals,reversed
  2026-11-24,blackhawk,gift,2,50.00,1,10.00,1,-25.00

Counted from the journal's `activate` and `reload` entries of the period, and from the undos
(`void`, `reversal`, `rollback`) of such entries: `reversals` and `reversed` (negative) on the
day and at the merchant of the undo, whenever the undone entry was made. A day's net value
loaded is activated + loaded + reversed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.backoffice.reports.base import Report, Row, j, journal_filters, local_day
from gateway.backoffice.reports.catalogue import SUMMARIES
from gateway.backoffice.reports.errors import ReportError
from gateway.backoffice.reports.money import Money
from gateway.backoffice.reports.period import day_of
from gateway.backoffice.reports.query import Query
from gateway.config.model import Config

OPS = ("activate", "reload")
UNDO_OPS = ("void", "reversal", "rollback")  # the ledger's undos (gateway/ledger/lua/_prelude)


class Activations(Report):
    name = "activations"
    summary = SUMMARIES[name]
    takes = frozenset({"reseller", "merchant", "program"})

    def columns(self, query: Query) -> tuple[str, ...]:
        return ("day", "reseller", "program", "activations", "activated", "loads", "loaded",
                "reversals", "reversed")

    async def batches(self, conn: AsyncConnection, config: Config, query: Query
                      ) -> AsyncIterator[list[Row]]:
        reseller_of = {mid: m.reseller or "" for mid, m in config.merchants.items()}
        for reseller in query.resellers:
            if reseller not in config.resellers:
                known = ", ".join(config.resellers) or "none configured"
                raise ReportError("reseller", f"unknown reseller {reseller!r} (have: {known})")
        day = local_day(query.period, j.c.t).label("day")
        figures = (day, j.c.merchant, j.c.program, func.count(), func.sum(j.c.dv))
        made = journal_filters(select(*figures, j.c.op), query).where(j.c.op.in_(OPS))
        undone = j.alias("undone")
        undos = (journal_filters(select(*figures), query)
                 .join(undone, and_(undone.c.card_id == j.c.card_id,
                                    undone.c.entry_id == j.c.undo))
                 .where(j.c.op.in_(UNDO_OPS), undone.c.op.in_(OPS)))
        if query.resellers:
            chosen = [mid for mid, rid in reseller_of.items() if rid in query.resellers]
            made, undos = (q.where(j.c.merchant.in_(chosen)) for q in (made, undos))
        # A few rows per merchant and day: folded into resellers here, not in SQL, so that the
        # config's merchant -> reseller map needs no table.
        folded: dict[tuple[str, str, str], list[int]] = {}

        def add(number: int, merchant: str, program: str | None, at: int, count: int,
                dv: int | None) -> None:
            key = (day_of(number), reseller_of.get(merchant, ""), program or "")
            sums = folded.setdefault(key, [0, 0, 0, 0, 0, 0])
            sums[at] += count
            sums[at + 1] += int(dv or 0)

        grouping = (day, j.c.merchant, j.c.program)
        for number, merchant, program, count, dv, op in (
                await conn.execute(made.group_by(*grouping, j.c.op))).all():
            add(number, merchant, program, 0 if op == "activate" else 2, count, dv)
        for number, merchant, program, count, dv in (
                await conn.execute(undos.group_by(*grouping))).all():
            add(number, merchant, program, 4, count, dv)
        money = Money(config)
        yield [(day, reseller, program or None, acts, money.format(activated, program), loads,
                money.format(loaded, program), undos_count, money.format(reversed_, program))
               for (day, reseller, program), (acts, activated, loads, loaded, undos_count,
                                              reversed_) in sorted(folded.items())]

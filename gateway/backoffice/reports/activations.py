"""`activations`: cards activated and loaded, by reseller and local day. A merchant belongs to
the reseller its config names (`[merchants.<id>] reseller = "blackhawk"`); merchants with no
reseller (the operator's own stores) are together under an empty `reseller`.

  day,reseller,program,activations,activated,loads,loaded
  2026-11-24,blackhawk,gift,2,50.00,1,10.00

Counted from the journal's `activate` and `reload` entries of the period; an activation voided
or reversed later stays counted here (the undo is its own entry, in `transactions`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.backoffice.reports.base import Report, Row, j, journal_filters, local_day
from gateway.backoffice.reports.catalogue import SUMMARIES
from gateway.backoffice.reports.errors import ReportError
from gateway.backoffice.reports.money import Money
from gateway.backoffice.reports.period import day_of
from gateway.backoffice.reports.query import Query
from gateway.config.model import Config

OPS = ("activate", "reload")


class Activations(Report):
    name = "activations"
    summary = SUMMARIES[name]
    takes = frozenset({"reseller", "merchant", "program"})

    def columns(self, query: Query) -> tuple[str, ...]:
        return ("day", "reseller", "program", "activations", "activated", "loads", "loaded")

    async def batches(self, conn: AsyncConnection, config: Config, query: Query
                      ) -> AsyncIterator[list[Row]]:
        reseller_of = {mid: m.reseller or "" for mid, m in config.merchants.items()}
        for reseller in query.resellers:
            if reseller not in config.resellers:
                known = ", ".join(config.resellers) or "none configured"
                raise ReportError("reseller", f"unknown reseller {reseller!r} (have: {known})")
        day = local_day(query.period, j.c.t).label("day")
        statement = journal_filters(
            select(day, j.c.merchant, j.c.program, j.c.op, func.count(), func.sum(j.c.dv)),
            query).where(j.c.op.in_(OPS))
        if query.resellers:
            chosen = [mid for mid, rid in reseller_of.items() if rid in query.resellers]
            statement = statement.where(j.c.merchant.in_(chosen))
        statement = statement.group_by(day, j.c.merchant, j.c.program, j.c.op)
        # A few rows per merchant and day: folded into resellers here, not in SQL, so that the
        # config's merchant -> reseller map needs no table.
        folded: dict[tuple[str, str, str], list[int]] = {}
        for number, merchant, program, op, count, dv in (await conn.execute(statement)).all():
            key = (day_of(number), reseller_of.get(merchant, ""), program or "")
            figures = folded.setdefault(key, [0, 0, 0, 0])
            at = 0 if op == "activate" else 2
            figures[at] += count
            figures[at + 1] += int(dv or 0)
        money = Money(config)
        yield [(day, reseller, program or None, acts, money.format(activated, program), loads,
                money.format(loaded, program))
               for (day, reseller, program), (acts, activated, loads, loaded)
               in sorted(folded.items())]

"""`customer-activity`: each customer's shopping over a range of days, from the entries of the
cards they hold: visits (purchases: `redeem` of a gift card, `earn` of a loyalty card), spend
(money redeemed), points earned, visits per week, and the last visit in the period. Every
customer is listed (of the chosen types), those with no visit too: the ones to win back.

  customer,name,customer_type,cards,visits,spend,points,visits_per_week,last_visit
  C001,Ada Lovelace,gold,2,3,42.50,120,1.50,2026-11-13T17:02:11Z

A visit is one entry; a purchase voided later still counts (its undo is its own entry). Spend
adds money of several programs, so their currencies must have the same decimals (else name
one with --program). Visits per week: visits x 7 / days of the period, two decimals.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.backoffice import schema
from gateway.backoffice.reports.base import Report, Row, customer_type_ids, j, streamed
from gateway.backoffice.reports.catalogue import SUMMARIES
from gateway.backoffice.reports.money import Money
from gateway.backoffice.reports.query import Query
from gateway.config.model import Config
from gateway.ledger.amounts import format_amount

VISIT_OPS = ("redeem", "earn")
CENTS = Decimal("0.01")


class CustomerActivity(Report):
    name = "customer-activity"
    summary = SUMMARIES[name]
    takes = frozenset({"customer-type", "program", "merchant"})

    def columns(self, query: Query) -> tuple[str, ...]:
        return ("customer", "name", "customer_type", "cards", "visits", "spend", "points",
                "visits_per_week", "last_visit")

    async def batches(self, conn: AsyncConnection, config: Config, query: Query
                      ) -> AsyncIterator[list[Row]]:
        exponent = Money(config).shared_exponent(query.programs)
        customers, types, holders = schema.customers, schema.customer_types, schema.card_holders
        visit = [j.c.card_id == holders.c.card_id, j.c.op.in_(VISIT_OPS),
                 j.c.t >= query.period.start, j.c.t < query.period.end]
        if query.programs:
            visit.append(j.c.program.in_(query.programs))
        if query.merchants:
            visit.append(j.c.merchant.in_(query.merchants))
        statement = (
            select(customers.c.code, customers.c.name, types.c.name,
                   func.count(func.distinct(holders.c.card_id)), func.count(j.c.entry_id),
                   func.sum(case((j.c.op == "redeem", -j.c.dv), else_=0)),
                   func.sum(case((j.c.op == "earn", j.c.dp), else_=0)), func.max(j.c.t))
            .select_from(customers)
            .outerjoin(types, types.c.id == customers.c.customer_type_id)
            .outerjoin(holders, holders.c.customer_id == customers.c.id)
            .outerjoin(j, and_(*visit))
            .group_by(customers.c.id, customers.c.code, customers.c.name, types.c.name)
            .order_by(customers.c.code))
        if query.customer_types:
            ids = await customer_type_ids(conn, query.customer_types)
            statement = statement.where(customers.c.customer_type_id.in_(ids))
        days, when = query.period.days, query.period.time_format()
        async for batch in streamed(conn, statement):
            yield [(code, name, ctype, cards, visits, format_amount(int(spend or 0),
                                                                     exponent=exponent),
                    int(points or 0), str((Decimal(visits * 7) / days).quantize(CENTS)),
                    when(last) if last is not None else None)
                   for code, name, ctype, cards, visits, spend, points, last in batch]

"""What every report is: a name, the parameters it takes, its columns, and its rows in batches
(tuples in column order; money already a decimal string, counts ints, times ISO 8601), read from
the back office as they come so that a large report is never held in memory. The journal
filters that several reports share are built here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

from sqlalchemy import Select, case, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from gateway.backoffice import schema
from gateway.backoffice.reports.errors import ReportError
from gateway.backoffice.reports.period import DAY_SECONDS, Period, offsets_between
from gateway.backoffice.reports.query import Query
from gateway.config.model import Config

Row = tuple[Any, ...]
BATCH = 2000  # rows fetched from the database at a time
j = schema.journal_entries


class Report(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]  # one line, for --help and the API's list
    takes: ClassVar[frozenset[str]] = frozenset()  # filters (and group-by) it accepts
    as_of: ClassVar[bool] = False  # as of one day (`to`) instead of a range of days

    @abstractmethod
    def columns(self, query: Query) -> tuple[str, ...]:
        """The header, in the order of each row's values."""

    @abstractmethod
    def batches(self, conn: AsyncConnection, config: Config, query: Query
                ) -> AsyncIterator[list[Row]]:
        """The rows, a batch at a time. May raise ReportError before the first batch (e.g. a
        customer type that does not exist)."""


def journal_filters(statement: Select, query: Query) -> Select:
    """Entries of the query's period, merchants, terminals, programs, operations and staff."""
    statement = statement.where(j.c.t >= query.period.start, j.c.t < query.period.end)
    for column, values in ((j.c.merchant, query.merchants), (j.c.terminal, query.terminals),
                           (j.c.program, query.programs), (j.c.op, query.ops),
                           (j.c.opid, query.opids)):
        if values:
            statement = statement.where(column.in_(values))
    return statement


def local_day(period: Period, t: ColumnElement) -> ColumnElement:
    """A SQL expression of the local day of epoch seconds `t` (days since 1970-01-01 in the
    period's zone), for grouping by day on the database. Within the period a zone's UTC offset
    changes at a few instants only (summer time), so the expression is `(t + offset) / 86400`
    with the offset a CASE over those instants: cheap per row, exact at the change."""
    pieces = offsets_between(period.start, period.end, period.tz)
    offset: ColumnElement
    if len(pieces) == 1:
        offset = literal(pieces[0][1])
    else:
        offset = case(*[(t < until, off) for until, off in pieces[:-1]], else_=pieces[-1][1])
    return (t + offset) // DAY_SECONDS


async def customer_type_ids(conn: AsyncConnection, names: Sequence[str]) -> list[int]:
    """The ids of the named customer types; a name that does not exist is a ReportError."""
    ct = schema.customer_types
    found = {name: tid for name, tid in
             await conn.execute(select(ct.c.name, ct.c.id).where(ct.c.name.in_(names)))}
    missing = [n for n in names if n not in found]
    if missing:
        raise ReportError("customer-type", f"no customer type {missing[0]!r}")
    return [found[n] for n in names]


async def of_customer_types(conn: AsyncConnection, statement: Select, query: Query) -> Select:
    """Only entries of cards held by customers of the query's customer types (when it names
    any). A card counts under its holder of today, not the one it had at the entry's time."""
    if not query.customer_types:
        return statement
    ids = await customer_type_ids(conn, query.customer_types)
    holders, customers = schema.card_holders, schema.customers
    return (statement.join(holders, holders.c.card_id == j.c.card_id)
            .join(customers, customers.c.id == holders.c.customer_id)
            .where(customers.c.customer_type_id.in_(ids)))


async def streamed(conn: AsyncConnection, statement: Select) -> AsyncIterator[Sequence[Any]]:
    """The statement's rows in batches, through a server-side cursor (asyncpg's cursor, the
    SQLite cursor stepped as it is read): the database sends rows as they are consumed."""
    result = await conn.stream(statement.execution_options(yield_per=BATCH))
    async for partition in result.partitions(BATCH):
        yield partition

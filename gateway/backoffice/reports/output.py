"""A report written out as its rows come from the database: CSV (a header line, then one line
per row) or JSON (`{"report", "from", "to", "tz", "columns", "rows": [{column: value}, ...]}`),
in text chunks of a batch each, for a file, stdout or an HTTP response. Nothing holds the
whole report: memory is one batch, whatever the report's size.

The first batch is read before the first chunk is given, so that a bad parameter found by the
database (a customer type that does not exist) or a database that cannot be reached is raised
before anything is written: the API can still answer 400 or 503 instead of a cut 200.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.backoffice.reports.base import Report, Row
from gateway.backoffice.reports.period import zone_name
from gateway.backoffice.reports.query import Query
from gateway.config.model import Config


@dataclass
class Written:
    """What a run wrote, for the CLI's summary line once the chunks are consumed."""

    rows: int = 0


class _Csv:
    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\n")

    def head(self, name: str, query: Query, columns: tuple[str, ...]) -> str:
        return self.rows(columns, [columns])

    def rows(self, columns: tuple[str, ...], rows: list[Row]) -> str:
        self.writer.writerows(rows)  # None is written as an empty field
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text

    def tail(self) -> str:
        return ""


class _Json:
    def __init__(self) -> None:
        self.first = True

    def head(self, name: str, query: Query, columns: tuple[str, ...]) -> str:
        period = query.period
        head = json.dumps({"report": name, "from": period.first.isoformat(),
                           "to": period.last.isoformat(), "tz": zone_name(period.tz),
                           "columns": list(columns)})
        return head[:-1] + ', "rows": ['

    def rows(self, columns: tuple[str, ...], rows: list[Row]) -> str:
        if not rows:
            return ""
        text = ",\n".join(json.dumps(dict(zip(columns, row))) for row in rows)
        if self.first:
            self.first = False
            return "\n" + text
        return ",\n" + text

    def tail(self) -> str:
        return "\n]}\n"


async def report_chunks(engine: AsyncEngine, config: Config, report: Report, query: Query,
                        fmt: str, written: Written | None = None) -> AsyncGenerator[str, None]:
    """The report as text chunks in `fmt` (csv or json), read on one connection of `engine`."""
    writer = _Csv() if fmt == "csv" else _Json()
    columns = report.columns(query)
    written = written if written is not None else Written()
    async with engine.connect() as conn:
        batches = aiter(report.batches(conn, config, query))
        first = await anext(batches, None)  # errors before anything is written
        yield writer.head(report.name, query, columns)
        if first is not None:
            written.rows += len(first)
            yield writer.rows(columns, first)
            async for batch in batches:
                written.rows += len(batch)
                yield writer.rows(columns, batch)
    yield writer.tail()


async def report_rows(engine: AsyncEngine, config: Config, report: Report, query: Query
                      ) -> list[Row]:
    """The whole report as rows, for a page that shows it (the portal's analytics and staff
    report): the same batches the CSV and JSON are written from, for reports of a few hundred
    rows (a row per day, week or month, or per staff member)."""
    async with engine.connect() as conn:
        return [row async for batch in report.batches(conn, config, query) for row in batch]

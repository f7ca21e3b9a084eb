"""`tillgate reports NAME --from DAY --to DAY [filters] [--out FILE.csv]`: a back-office report
as CSV (or `--format json`), on stdout or into a file (docs/backoffice.md, "Reports").

Days are YYYY-MM-DD, both included, in UTC unless `--tz` names a zone. Filters may be repeated
(`--merchant A --merchant B`: either). The file is written as rows come, under a temporary name
renamed at the end, so a report that fails half-way leaves no half file behind. A summary goes
to stderr. Exit status 2 for bad parameters or a back office that cannot be opened.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from gateway.backoffice.reports.catalogue import FORMATS, NAMES, SUMMARIES
from gateway.backoffice.reports.errors import ReportError
from gateway.backoffice.reports.query import FILTERS, GROUPS, Query, parse_query
from gateway.cli.config import load_or_report
from gateway.cli.main import fail
from gateway.config.model import Config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

# SQLAlchemy and Alembic (which the reports and the back office's connection import) load
# inside the command: at module level they would slow the start of every `tillgate` command.


def register(subparsers, common) -> None:
    reports = subparsers.add_parser(
        "reports", parents=[common], help="back-office reports (CSV or JSON)",
        description="Reports: " + "; ".join(f"{n}: {s}" for n, s in SUMMARIES.items()))
    reports.add_argument("name", choices=NAMES, metavar="NAME", help=f"one of {', '.join(NAMES)}")
    reports.add_argument("--from", dest="from_", metavar="DAY", help="first day, YYYY-MM-DD")
    reports.add_argument("--to", metavar="DAY", help="last day, YYYY-MM-DD (included); "
                         "liability: the day it is as of (default today)")
    reports.add_argument("--tz", metavar="ZONE", help="the zone the days are in, e.g. "
                         "Europe/Paris (default UTC)")
    for name in FILTERS:
        reports.add_argument(f"--{name}", action="append", metavar=name.upper().replace("-", "_"),
                             help="filter; may be repeated")
    reports.add_argument("--group-by", choices=GROUPS, help="transactions: one summary row "
                         "per group and program instead of one per entry; analytics: day "
                         "(default), week or month")
    reports.add_argument("--format", choices=list(FORMATS), default="csv")
    reports.add_argument("--out", metavar="FILE", help="write here (default: stdout)")
    reports.set_defaults(func=run_report)


def raw_params(args) -> dict[str, list[str]]:
    raw = {"from": [args.from_], "to": [args.to], "tz": [args.tz],
           "group-by": [args.group_by]}
    raw.update({name: getattr(args, name.replace("-", "_")) for name in FILTERS})
    return {name: values for name, values in raw.items() if values and values[0] is not None}


def run_report(args) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    from gateway.backoffice.connect import BackofficeUnavailable
    from gateway.backoffice.reports.registry import REPORTS

    report = REPORTS[args.name]
    try:
        query = parse_query(raw_params(args), report.takes, as_of=report.as_of)
        return asyncio.run(_report(config, args.name, query, args.format, args.out))
    except ReportError as e:
        return fail(f"--{e.param}: {e.message}")
    except BackofficeUnavailable as e:
        return fail(str(e))


async def _report(config: Config, name: str, query: Query, fmt: str, out: str | None) -> int:
    from gateway.backoffice.connect import backoffice_session
    from gateway.backoffice.migrate import current_revision, head_revision
    from gateway.backoffice.reports.output import Written, report_chunks
    from gateway.backoffice.reports.registry import REPORTS

    async with backoffice_session(config, migrate=False) as engine:
        revision = await current_revision(engine)
        if revision != head_revision():
            return fail(f"the back office is at revision {revision or 'none'}, reports need "
                        f"{head_revision()}: run tillgate backoffice migrate")
        written = Written()
        chunks = report_chunks(engine, config, REPORTS[name], query, fmt, written)
        if out is None:
            await _write(chunks, sys.stdout)
        else:
            status = await _write_file(chunks, Path(out))
            if status:
                return status
    where = f" into {out}" if out else ""
    print(f"{name} {query.period.describe()}: {written.rows} row(s){where}", file=sys.stderr)
    return 0


async def _write(chunks: AsyncIterator[str], f: TextIO) -> None:
    async for chunk in chunks:
        f.write(chunk)


async def _write_file(chunks: AsyncIterator[str], path: Path) -> int:
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "w", encoding="utf-8", newline="") as f:
            await _write(chunks, f)
        os.replace(partial, path)
    except OSError as e:
        partial.unlink(missing_ok=True)
        return fail(f"cannot write {path}: {e.strerror}")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return 0


"""The staff report: per staff member (the journal's `opid`) and program over a range of days,
their transactions, points awarded, rewards validated, amounts and members served; as a table
and as CSV (`staff-report.csv` with the same query string).

The rows are the reports package's `staff` report (gateway/backoffice/reports/staff.py), the
same as `tillgate reports staff` and `/v1/reports/staff`. The days are the chosen program's
(its time zone), or UTC days for all programs. Head office sees every staff member; a merchant
manager their merchant's: the entries made at their merchant's tills and counters, of the
programs open to their merchant.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from gateway.backoffice.reports.output import report_rows
from gateway.backoffice.reports.period import Period, zone
from gateway.backoffice.reports.query import Query
from gateway.backoffice.reports.registry import REPORTS
from gateway.backoffice.reports.staff import COLUMNS
from gateway.web.portal.analytics import programs_for
from gateway.web.portal.periodform import Chosen, FormError, chosen_period, csv_download
from gateway.web.portal.web import Ctx, Page, Reply

log = logging.getLogger(__name__)

HEADINGS = {"opid": "Staff member", "program": "Program", "transactions": "Transactions",
            "points_awarded": "Points awarded", "rewards_validated": "Rewards validated",
            "loaded": "Value loaded", "redeemed": "Value redeemed",
            "members_served": "Members served"}


@dataclass(frozen=True, slots=True)
class StaffFigures:
    program: str  # "" = all the operator may see
    period: Period
    rows: list[tuple[Any, ...]]


async def figures(ctx: Ctx) -> StaffFigures:
    operator = ctx.operator
    assert operator is not None
    visible = programs_for(operator, ctx.portal.config.programs)
    wanted = ctx.query.get("program", "")
    chosen = [p for p in visible if p.id == wanted]
    if wanted and not chosen:
        raise FormError("Program: choose one of the list.")
    if not visible:
        raise FormError("Program: no program is open to your merchant.")
    _chosen, period = chosen_period({**ctx.query, "by": "day"},
                                    zone(chosen[0].timezone if chosen else None), ctx.now)
    manager = operator.role != "head_office"
    query = Query(period=period, programs=tuple(p.id for p in (chosen or visible))
                  if chosen or manager else (),
                  merchants=(operator.merchant,) if manager and operator.merchant else ())
    rows = await report_rows(await ctx.portal.engine(), ctx.portal.config, REPORTS["staff"],
                             query)
    return StaffFigures(wanted, period, rows)


def _page(ctx: Ctx, values: dict[str, Any], status: int = 200) -> Page:
    operator = ctx.operator
    assert operator is not None
    return Page("staff_report.html", {
        "title": "Staff report", "programs": programs_for(operator, ctx.portal.config.programs),
        "columns": COLUMNS, "headings": HEADINGS, "found": None, "csv_query": "",
        "program_id": ctx.query.get("program", ""),
        "chosen": Chosen(ctx.query.get("from", "")[:10], ctx.query.get("to", "")[:10], "day"),
        **values}, status)


async def show(ctx: Ctx) -> Reply:
    try:
        found = await figures(ctx)
    except FormError as e:
        return _page(ctx, {"error": str(e)}, 400)
    first, last = found.period.first.isoformat(), found.period.last.isoformat()
    return _page(ctx, {"found": found, "chosen": Chosen(first, last, "day"),
                       "csv_query": f"program={found.program}&from={first}&to={last}"})


async def download(ctx: Ctx) -> Reply:
    try:
        found = await figures(ctx)
    except FormError as e:
        return _page(ctx, {"error": str(e)}, 400)
    operator = ctx.operator
    assert operator is not None
    log.info("portal: operator %d downloaded the staff report %s", operator.id,
             found.period.describe())
    name = (f"staff-{found.program or 'all'}-{found.period.first.isoformat()}-"
            f"{found.period.last.isoformat()}.csv")
    return csv_download(name, COLUMNS, found.rows)

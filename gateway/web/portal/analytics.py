"""Analytics: one program's activity per day, week or month of a period in the program's time
zone, drawn as SVG bar charts with their numbers beside them, the whole table below, and the
same table as CSV (`analytics.csv` with the same query string).

The journal's figures come from the back office through the reports package's `analytics`
report (gateway/backoffice/reports/analytics.py: the rows `tillgate reports analytics` and
`/v1/reports/analytics` give); card views come from Redis (gateway/ledger/cardviews.py). Head
office sees every program; a merchant manager the programs open to their merchant
(cardlookup.may_see), with the journal's figures of their merchant's entries only (card views
are counted per program, not per merchant: they are the program's).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from gateway.backoffice.operators import Operator
from gateway.backoffice.reports.analytics import FIGURES
from gateway.backoffice.reports.buckets import day_numbers, key_of_day
from gateway.backoffice.reports.output import report_rows
from gateway.backoffice.reports.period import Period, zone
from gateway.backoffice.reports.query import Query
from gateway.backoffice.reports.registry import REPORTS
from gateway.config.model import Program
from gateway.ledger.cardviews import SOURCES, views
from gateway.web.portal.cardlookup import may_see
from gateway.web.portal.charts import Chart, bar_chart
from gateway.web.portal.periodform import Chosen, FormError, chosen_period, csv_download
from gateway.web.portal.web import Ctx, Page, Reply

log = logging.getLogger(__name__)

VIEW_COLUMNS = tuple(f"{source}_views" for source in SOURCES)  # staff_views, member_views
HEADINGS = {"staff_views": "Card views by staff", "member_views": "Card views by members",
            "activations": "Activations", "loads": "Loads", "loaded": "Value loaded",
            "redemptions": "Redemptions", "redeemed": "Value redeemed",
            "points_accrued": "Points accrued", "rewards_redeemed": "Rewards redeemed",
            "active_cards": "Active cards"}
# What is drawn (counts and points; amounts are in the table): a loyalty program's figures,
# or a gift program's.
LOYALTY_CHARTS = ("card_views", "points_accrued", "rewards_redeemed", "active_cards",
                  "activations")
GIFT_CHARTS = ("card_views", "activations", "loads", "redemptions", "active_cards")
CHART_TITLES = {"card_views": "Card views", **HEADINGS}


@dataclass(frozen=True, slots=True)
class Figures:
    """The page's table: a row per stretch, the columns of the CSV."""

    program: Program
    chosen: Chosen
    period: Period
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def column(self, name: str) -> list[Any]:
        at = self.columns.index(name)
        return [row[at] for row in self.rows]


def programs_for(operator: Operator, programs: dict[str, Program]) -> list[Program]:
    return [p for p in programs.values() if may_see(operator, p)]


async def figures(ctx: Ctx) -> Figures:
    """The figures the query asks for; FormError for a bad field."""
    operator = ctx.operator
    assert operator is not None
    visible = programs_for(operator, ctx.portal.config.programs)
    if not visible:
        raise FormError("Program: no program is open to your merchant.")
    wanted = ctx.query.get("program") or visible[0].id
    program = next((p for p in visible if p.id == wanted), None)
    if program is None:
        raise FormError("Program: choose one of the list.")
    chosen, period = chosen_period(ctx.query, zone(program.timezone), ctx.now)
    query = Query(period=period, programs=(program.id,), group_by=chosen.by,
                  merchants=(operator.merchant,) if operator.role != "head_office"
                  and operator.merchant else ())
    report = REPORTS["analytics"]
    rows = await report_rows(await ctx.portal.engine(), ctx.portal.config, report, query)
    days = day_numbers(period)
    counted = await views(ctx.portal.store(), program.id, days[0], days[-1])
    by_key: dict[int, list[int]] = {}
    for day, counts in counted.items():
        sums = by_key.setdefault(key_of_day(chosen.by, day), [0] * len(SOURCES))
        for i, source in enumerate(SOURCES):
            sums[i] += counts[source]
    keys = list(by_key)  # in order: day_numbers is, and each stretch's days are together
    assert len(keys) == len(rows), (len(keys), len(rows))
    table = [(label, program_id, *by_key[key], *rest)
             for key, (label, program_id, *rest) in zip(keys, rows, strict=True)]
    return Figures(program, chosen, period, (chosen.by, "program", *VIEW_COLUMNS, *FIGURES),
                   table)


def charts(found: Figures) -> list[Chart]:
    labels = found.column(found.chosen.by)
    drawn = []
    for name in LOYALTY_CHARTS if found.program.is_loyalty else GIFT_CHARTS:
        if name == "card_views":
            values = [sum(v) for v in zip(*(found.column(c) for c in VIEW_COLUMNS),
                                          strict=True)]
        else:
            values = found.column(name)
        drawn.append(bar_chart(f"chart-{name}", CHART_TITLES[name], labels, values))
    return drawn


def _page(ctx: Ctx, values: dict[str, Any], status: int = 200) -> Page:
    operator = ctx.operator
    assert operator is not None
    return Page("analytics.html", {
        "title": "Analytics", "programs": programs_for(operator, ctx.portal.config.programs),
        "headings": HEADINGS, "found": None, "charts": [], "csv_query": "", **values}, status)


def _chosen_fallback(ctx: Ctx) -> Chosen:
    return Chosen(ctx.query.get("from", "")[:10], ctx.query.get("to", "")[:10],
                  ctx.query.get("by", "day")[:5])


async def show(ctx: Ctx) -> Reply:
    try:
        found = await figures(ctx)
    except FormError as e:
        return _page(ctx, {"error": str(e), "chosen": _chosen_fallback(ctx),
                           "program_id": ctx.query.get("program", "")}, 400)
    chosen = found.chosen
    csv_query = (f"program={found.program.id}&from={found.period.first.isoformat()}"
                 f"&to={found.period.last.isoformat()}&by={chosen.by}")
    return _page(ctx, {"found": found, "charts": charts(found), "chosen": chosen,
                       "program_id": found.program.id, "csv_query": csv_query,
                       "zone": found.program.timezone})


async def download(ctx: Ctx) -> Reply:
    try:
        found = await figures(ctx)
    except FormError as e:
        return _page(ctx, {"error": str(e), "chosen": _chosen_fallback(ctx),
                           "program_id": ctx.query.get("program", "")}, 400)
    operator = ctx.operator
    assert operator is not None
    log.info("portal: operator %d downloaded analytics of %s %s", operator.id,
             found.program.id, found.period.describe())
    name = (f"analytics-{found.program.id}-{found.period.first.isoformat()}-"
            f"{found.period.last.isoformat()}-{found.chosen.by}.csv")
    return csv_download(name, found.columns, found.rows)

"""The reports by name, what each is, and the formats they are written in: without SQLAlchemy,
for the command line's parser (importing SQLAlchemy would add some 0.4 s to the start of every
`tillgate` command). registry.py holds the reports themselves, in this order."""

from __future__ import annotations

SUMMARIES = {
    "transactions": "journal entries by day range and filters, with totals; or a summary by "
                    "group",
    "liability": "outstanding balances and points by program as of the end of a day",
    "activations": "activations and loads by reseller and day",
    "tiers": "card rank (tier) changes; empty until tiers exist (issue 19)",
    "customer-activity": "visits, spend, points and visits per week of each customer over a "
                         "period",
    "analytics": "activations, loads, redemptions, points accrued, rewards redeemed and active "
                 "cards by program and day, week or month",
    "staff": "per staff member (opid) and program: transactions, points awarded, rewards "
             "validated, amounts and members served",
}
NAMES = tuple(SUMMARIES)
FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}

"""`[[programs.<id>.promotions]]`: time-boxed rules that add points or value (docs/ledger.md
"Promotions"). The gateway picks the ones active for a request (gateway/ledger/promotions.py);
the earn or load script applies them, so two gateways with one config never disagree.

Kinds and their settings:
  multiplier      `multiplier` (an integer from 2 to 100, 2 = double points) on earn
  first_purchase  `points` more on a card's first earn
  min_spend       `points` more on an earn of at least `min_amount` (minor units)
  load_bonus      `bonus` (minor units) more on a gift load (activation, reload) of at least
                  `min_amount`
Every kind may be limited to `from` / `to` (dates, inclusive), `weekdays` ("mon" .. "sun"),
`dates` (a list of dates) and `merchants` (a club: only these merchants).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from gateway.config.sections import Section

KINDS = ("multiplier", "first_purchase", "min_spend", "load_bonus")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,20}$")


@dataclass(frozen=True, slots=True)
class Promotion:
    id: str
    kind: str
    multiplier: int = 1
    points: int = 0
    bonus: int = 0  # money, minor units
    min_amount: int = 0
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    weekdays: frozenset[int] = frozenset()  # 0 = Monday; empty = every day
    dates: frozenset[dt.date] = frozenset()  # empty = every date
    merchants: frozenset[str] = frozenset()  # empty = every merchant of the program

    def active(self, day: dt.date, merchant: str) -> bool:
        """Does it apply to a request at `merchant` on `day` (the program's day)?"""
        return ((self.valid_from is None or day >= self.valid_from)
                and (self.valid_to is None or day <= self.valid_to)
                and (not self.weekdays or day.weekday() in self.weekdays)
                and (not self.dates or day in self.dates)
                and (not self.merchants or merchant in self.merchants))


def _date(s: Section, key: str, text: object) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(text))
    except ValueError:
        s.error(key, f"must be a date YYYY-MM-DD (got {text!r})")
        return None


def read_promotions(s: Section, kind: str) -> tuple[Promotion, ...]:
    """The program's promotions; `kind` is the program's ("gift" takes load bonuses only,
    "loyalty" the earn kinds). Errors name their path: programs.loyalty.promotions[1].points."""
    found: list[Promotion] = []
    for p in s.array_of_tables("promotions"):
        pid = p.string("id", pattern=_ID.match, what="1 to 20 of A-Z a-z 0-9 _ . -")
        what = p.string("kind", choices=KINDS)
        if pid in {f.id for f in found}:
            p.error("id", f"promotion {pid!r} given twice")
        if what is not None and (what == "load_bonus") != (kind == "gift"):
            p.error("kind", f"{what} does not apply to a {kind} program")
        needs = {"multiplier": "multiplier", "first_purchase": "points", "min_spend": "points",
                 "load_bonus": "bonus"}.get(what or "", "")
        if needs and needs not in p.data:
            p.error(needs, f"is required for {what}")
        multiplier = p.integer("multiplier", 1, minimum=2 if needs == "multiplier" else 1,
                               maximum=100)
        points = p.integer("points", 0, minimum=1 if needs == "points" else 0)
        bonus = p.integer("bonus", 0, minimum=1 if needs == "bonus" else 0)
        min_amount = p.integer("min_amount", 0, minimum=0)
        if what == "min_spend" and not min_amount:
            p.error("min_amount", "is required for min_spend (minor units)")
        start = p.string("from", None)
        end = p.string("to", None)
        valid_from = _date(p, "from", start) if start is not None else None
        valid_to = _date(p, "to", end) if end is not None else None
        if valid_from and valid_to and valid_from > valid_to:
            p.error("to", "is before from")
        days = p.array("weekdays", [])
        for day in days:
            if day not in WEEKDAYS:
                p.error("weekdays", f"must be among {', '.join(WEEKDAYS)} (got {day!r})")
        dates = {_date(p, "dates", d) for d in p.array("dates", [])}
        merchants = p.array("merchants", [])
        p.reject_unknown()
        found.append(Promotion(
            id=pid or "", kind=what or "", multiplier=multiplier or 1, points=points or 0,
            bonus=bonus or 0, min_amount=min_amount or 0, valid_from=valid_from,
            valid_to=valid_to, weekdays=frozenset(WEEKDAYS.index(d) for d in days
                                                  if d in WEEKDAYS),
            dates=frozenset(d for d in dates if d is not None), merchants=frozenset(merchants)))
    return tuple(found)

"""The promotions (gateway/config/promotions.py) that apply to one request, as script
parameters: chosen here by the program's day and the merchant, applied in the earn or load
script (gateway/ledger/lua/_promotions.lua) in the same call as the change.

A load gets the `promo` list, short keys as the scripts read them: `id`, `k` (load), `b` bonus
money, `min` minimum amount. An earn gets them decided as far as the request alone decides them
(`EarnPromotions`): only a first-purchase bonus depends on the card, which the script knows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gateway.config.model import Program
from gateway.config.promotions import Promotion
from protocols.model import Op

EARN_OPS = frozenset({Op.EARN})
LOAD_OPS = frozenset({Op.ACTIVATE, Op.RELOAD})
_SHORT = {"multiplier": "mult", "first_purchase": "first", "min_spend": "spend",
          "load_bonus": "load"}


def script_param(p: Promotion) -> dict[str, Any]:
    out: dict[str, Any] = {"id": p.id, "k": _SHORT[p.kind]}
    if p.kind == "multiplier":
        out["m"] = p.multiplier
    if p.points:
        out["p"] = p.points
    if p.bonus:
        out["b"] = p.bonus
    if p.min_amount:
        out["min"] = p.min_amount
    return out


class EarnPromotions:
    """The earn promotions active at one merchant on one day, decided for an amount as script
    parameters: `pm` / `pmi` the highest multiplier (the first of the highest in the config's
    order) and its id; `pb` the points bonuses the amount reaches, a flat list of id, points,
    1 for first purchase (the script gives those only on a card's first earn) or 0, in the
    config's order. Scalars and one flat list, not a list of maps: Redis unpacks every table
    of the parameters on every call (docs/benchmarks.md section 18)."""

    __slots__ = ("_fixed", "_bonuses")

    def __init__(self, promotions: list[Promotion]):
        fixed: dict[str, Any] = {}
        for p in promotions:
            if p.kind == "multiplier" and p.multiplier > fixed.get("pm", 1):
                fixed.update(pm=p.multiplier, pmi=p.id)
        self._fixed = fixed
        self._bonuses = tuple((p.id, p.points, p.kind == "first_purchase", p.min_amount)
                              for p in promotions if p.kind in ("first_purchase", "min_spend"))

    def params(self, amount: int) -> dict[str, Any]:
        if not self._bonuses:
            return self._fixed
        bonus: list[Any] = []
        for pid, points, first, least in self._bonuses:
            if first or amount >= least:
                bonus += (pid, points, 1 if first else 0)
        return {**self._fixed, "pb": bonus} if bonus else self._fixed


class ActivePromotions:
    """Active promotions per (program, merchant) for one day of the program's time zone, worked
    out once per day and merchant, not per request (the earn path's cost: docs/benchmarks.md)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[dt.date, list[dict[str, Any]]]] = {}
        self._earn_cache: dict[tuple[str, str], tuple[dt.date, EarnPromotions]] = {}

    def for_request(self, program: Program, op: Op, merchant: str,
                    day: dt.date) -> list[dict[str, Any]]:
        if not program.promotions or (op not in EARN_OPS and op not in LOAD_OPS):
            return []
        key = (program.id, merchant)
        found = self._cache.get(key)
        if found is None or found[0] != day:
            if len(self._cache) > 100_000:  # days gone by of merchants seen once
                self._cache.clear()
            found = self._cache[key] = (day, [script_param(p) for p in program.promotions
                                              if p.active(day, merchant)])
        # a program's promotions are all of its kind (earn kinds for loyalty, load for gift)
        return found[1]

    def for_earn(self, program: Program, merchant: str, day: dt.date,
                 amount: int) -> dict[str, Any]:
        """An earn's promotion parameters (EarnPromotions; {} when none is active). Read only:
        the answer may be the cached dictionary itself."""
        key = (program.id, merchant)
        found = self._earn_cache.get(key)
        if found is None or found[0] != day:
            if len(self._earn_cache) > 100_000:  # days gone by of merchants seen once
                self._earn_cache.clear()
            found = self._earn_cache[key] = (day, EarnPromotions(
                [p for p in program.promotions if p.active(day, merchant)]))
        return found[1].params(amount)

"""The promotions (gateway/config/promotions.py) that apply to one request, as the `promo` list
of its script parameters: chosen here by the program's day and the merchant, applied in the
earn or load script (gateway/ledger/lua/_promotions.lua) in the same call as the change.

Short keys, as the scripts read them: `id`, `k` (mult | first | spend | load), `m` multiplier,
`p` points, `min` minimum amount, `b` bonus money.
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


class ActivePromotions:
    """Active promotions per (program, merchant) for one day of the program's time zone, worked
    out once per day and merchant, not per request (the earn path's cost: docs/benchmarks.md)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[dt.date, list[dict[str, Any]]]] = {}

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

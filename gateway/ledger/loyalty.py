"""Loyalty in depth, the gateway's side (docs/ledger.md "Points lots and expiry", "Tiers",
"Combined cards"): the program's day, and what a card script of a loyalty program is given for
lots, expiry, tiers and conversion. The arithmetic itself is in the scripts
(gateway/ledger/lua/_lots.lua, _loyalty.lua), one atomic call per change.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from gateway.config.model import Program
from gateway.ledger.feed import card_slot_tag

_EPOCH = dt.date(1970, 1, 1)


def expiry_index_key(program_id: str) -> str:
    """The program's cards by the day their oldest lot is due (sorted set, score = day)."""
    return f"{{x:{program_id}}}:due"


def tier_index_key(program_id: str) -> str:
    """The program's cards above the lowest tier by their review day (sorted set, score = day)."""
    return f"{{x:{program_id}}}:tiers"


def index_key(program_id: str, what: str, cid: str) -> str:
    """The `what` ("due" or "tiers") index of the program that card `cid`'s scripts keep: on one
    Redis the program's one index (above), whatever the card."""
    return expiry_index_key(program_id) if what == "due" else tier_index_key(program_id)


def cluster_index_key(program_id: str, what: str, cid: str) -> str:
    """The Redis Cluster form of `index_key`: the program's index in the card's own slot (one
    per slot, named with the slot's tag as the feed is: gateway/ledger/feed.py)."""
    return "{" + card_slot_tag(cid) + f"}}:x:{program_id}:{what}"


def cluster_index_pattern(program_id: str, what: str) -> str:
    """A SCAN pattern matching every slot's `cluster_index_key` of the program."""
    return "{feed:*}" + f":x:{program_id}:{what}"


def has_depth(program: Program) -> bool:
    """Whether the program keeps lots, tiers or conversion (else its scripts are given none)."""
    return program.is_loyalty and bool(program.points_validity_days or program.tiers
                                       or program.convert_points)


def day_date(day: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=day)


def date_day(date: dt.date) -> int:
    return (date - _EPOCH).days


class ProgramDays:
    """A program's day number (days since 1970-01-01 in its time zone), computed once a second."""

    def __init__(self, timezone: str):
        self._zone = None if timezone == "UTC" else ZoneInfo(timezone)
        self._second = -1
        self._day = 0

    def day(self, now: float) -> int:
        if self._zone is None:
            return int(now // 86400)
        second = int(now)
        if second != self._second:
            self._day = date_day(dt.datetime.fromtimestamp(second, self._zone).date())
            self._second = second
        return self._day


def static_params(program: Program) -> dict[str, Any]:
    """What every script on a card of the program is given, the same for every request:
    lv validity days; tn / tt the tiers' names and thresholds (two flat lists: cheaper to
    unpack than maps), tw window days, trd review days; cvp / cvv the conversion. The scripts
    name the indexes from the card's program (`prog` in its state), as the keys above do."""
    p: dict[str, Any] = {}
    if program.points_validity_days:
        p["lv"] = program.points_validity_days
    if program.tiers:
        p.update(tn=[t.name for t in program.tiers], tt=[t.threshold for t in program.tiers],
                 trd=program.tier_review_days)
        if program.tier_window_days:
            p["tw"] = program.tier_window_days
    if program.convert_points:
        p.update(cvp=program.convert_points, cvv=program.convert_value)
    return p


def depth_params(program: Program, now: float) -> dict[str, Any]:
    """static_params and the program's day at `now` (epoch seconds): what a script run apart
    from a till's request is given (an operator's undo, the sweep); the processor keeps both
    per program instead (ScriptParams)."""
    return {**static_params(program), "day": ProgramDays(program.timezone).day(now)}

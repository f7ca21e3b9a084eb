"""What a card script is given and what its answer means: the msgpack map every script reads as
`a` (gateway/ledger/lua/_prelude.lua), built per request, and the script's answer map as a Result.
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import msgpack

from gateway.config.model import Config, Program
from gateway.ledger import cards, loyalty
from gateway.ledger.checks import INVOICE_OPS, PIN_OPS, points_for
from gateway.ledger.pendingundo import COMPENSATION
from gateway.ledger.pins import pin_hash
from gateway.ledger.promotions import EARN_OPS, ActivePromotions
from gateway.ledger.resellers import ResellerRules
from protocols.model import Op, Request, Result

SCRIPT_OF = {
    Op.ACTIVATE: "activate", Op.ACTIVATE_PREVALUED: "activate_prevalued",
    Op.PREVALIDATE: "prevalidate", Op.RELOAD: "reload", Op.REDEEM: "redeem", Op.REFUND: "refund",
    Op.CASHOUT: "cashout", Op.BALANCE: "balance", Op.POINTS_BALANCE: "balance", Op.VOID: "void",
    Op.REVERSAL: "reversal", Op.TRANSFER: "transfer_out", Op.EARN: "earn",
    Op.ADD_POINTS: "add_points", Op.RETURN: "return", Op.REDEEM_POINTS: "redeem_points",
}


def script_of(req: Request) -> str:
    """The card script of a request: a points redemption naming a reward is a reward claim."""
    if req.reward and req.op is Op.REDEEM_POINTS:
        return "claim_reward"
    return SCRIPT_OF[req.op]


RECORD_TTL_MIN = 35 * 86400  # records and claims outlive any void or reversal window
AUTH_ALPHABET = string.ascii_uppercase + string.digits

# byte -> A-Z0-9 (a modulo bias of 256 % 36 over 36 symbols is irrelevant for an authorisation
# id, which is a receipt reference, not a secret)
_AUTH_TABLE = bytes(ord(AUTH_ALPHABET[b % 36]) for b in range(256))
_AUTH_IDS_PER_DRAW = 1024


class _AuthIds:
    """Authorisation ids cut from one `secrets` draw of 1,024 ids: one system call, not one per
    request (measured at ~2 % of the gateway's time under load)."""

    def __init__(self) -> None:
        self._ids = b""
        self._at = 0

    def next(self) -> str:
        if self._at >= len(self._ids):
            self._ids = secrets.token_bytes(6 * _AUTH_IDS_PER_DRAW).translate(_AUTH_TABLE)
            self._at = 0
        self._at += 6
        return self._ids[self._at - 6:self._at].decode()


new_auth_id = _AuthIds().next  # () -> six characters of A-Z0-9


def record_ttl(config: Config) -> int:
    """How long a request's record lives (seconds): what a void, reversal or rollback of it
    reads, so the time within which it can be undone (trimming keeps its entry as long)."""
    return max(RECORD_TTL_MIN, 2 * config.reversal_window,
               *(2 * r.reversal_window for r in config.resellers.values()))


def params_packer() -> Callable[[dict[str, Any]], bytes]:
    """Packs a card script's parameters (ARGV[1]) as one msgpack map. One Packer kept
    (msgpack.packb builds one per call: 1.7 -> 0.9 us); not thread-safe, and needs not be: a
    Processor runs in its loop's thread only."""
    return msgpack.Packer().pack


class ScriptParams:
    """Builds card script parameters; caches what changes once a day (today, expiry dates)."""

    def __init__(self, config: Config, resellers: ResellerRules, clock: Callable[[], float],
                 packed_records: bool = False):
        """`packed_records`: write request records in the packed layout (the ledger's mark,
        Store.packed_records, unless the config's redis.packed_records says otherwise)."""
        self.config = config
        self.resellers = resellers
        self.clock = clock
        self.record_ttl = record_ttl(config)
        self.packed_records = packed_records
        # timezone -> (second, YYYYMMDD, date) of the last request: today in each program's zone
        self._dates: dict[str, tuple[int, int, dt.date]] = {}
        self._zones = {p.timezone: None if p.timezone == "UTC" else ZoneInfo(p.timezone)
                       for p in config.programs.values()}
        self._expiry_cache: dict[str, tuple[int, int]] = {}  # program -> (today, expiry)
        self.promotions = ActivePromotions()
        # loyalty in depth (gateway/ledger/loyalty.py): per program, its day and fixed fields
        self._days = {p.id: loyalty.ProgramDays(p.timezone)
                      for p in config.programs.values() if loyalty.has_depth(p)}
        self._fixed = {pid: loyalty.static_params(config.programs[pid]) for pid in self._days}
        # (program, amount) -> the points at each tier's rate: tills repeat their amounts
        self._tier_points: dict[tuple[str, int], list[int]] = {}

    def build(self, req: Request, program: Program, script: str, card: str,
               **extra: Any) -> dict[str, Any]:
        """The msgpack map every card script reads as `a` (see gateway/ledger/lua/_prelude.lua)."""
        now = self.clock()
        today, today_date = self._day(now, program.timezone)
        exp = self._expiry(program, today, today_date)
        needs_pin = program.pin_required and req.op in PIN_OPS
        pin = ""
        if needs_pin and req.pin is not None:
            pin = pin_hash(card, req.pin)
        points = 0
        if req.op in (Op.EARN, Op.RETURN):
            # with tiers the script takes the card's tier's share of `tp` (_with_loyalty)
            points = 0 if program.tiers else points_for(program, req.amount)
        elif req.op is Op.REDEEM_POINTS and not req.reward:
            points = req.amount
        p = {
            "now": int(now), "today": today, "ttl": self.record_ttl,
            "ch": cards.card_id(card), "term": req.terminal, "merch": req.merchant,
            "key": req.key, "op": script, "amount": req.amount, "auth": new_auth_id(),
        }
        # Fields at their default (0, "" or none) are left out: the scripts read an absent one
        # as its default (_prelude.lua), and Redis, the busier side under load, unpacks less.
        if needs_pin:
            p.update(pinreq=1, pin=pin, tries=program.pin_tries, lock=program.pin_lock_seconds)
        if program.max_balance:
            p["maxbal"] = program.max_balance
        if req.op is Op.REVERSAL:
            p["window"] = self._reversal_window(req)
            if req.extras.get(COMPENSATION):  # the till was told 96: its retransmission gets 05
                p["refused"] = 1
        if exp:
            p["exp"] = exp
        if program.face_values:
            p["faces"] = list(program.face_values)
        if req.partial_ok and program.partial_approval:
            p["partial"] = 1
        if req.advice:
            p["advice"] = 1
        if points:
            p["points"] = points
        if req.reward and req.op is Op.REDEEM_POINTS:
            # the run-time catalogue decides (claim_reward.lua); the config's reward, if any,
            # is the default while the catalogue has none of that id
            p["rw"] = req.reward
            seed = program.reward(req.reward)
            if seed is not None:
                p["rwdef"] = seed.cost
        if req.operator:
            p["opid"] = req.operator
        if self.packed_records:
            p["pr"] = 1  # the record in the packed layout (_prelude.lua respond)
        if program.promotions:
            if req.op in EARN_OPS:
                p.update(self.promotions.for_earn(program, req.merchant, today_date, req.amount))
            else:
                promo = self.promotions.for_request(program, req.op, req.merchant, today_date)
                if promo:
                    p["promo"] = promo
        if req.invoice and program.invoice_required and req.op in INVOICE_OPS:
            p["inv"] = req.invoice
        days = self._days.get(program.id)
        if days is not None:
            self._with_loyalty(p, req, program, days.day(now))
        if extra:
            p.update(extra)
        return p

    def _with_loyalty(self, p: dict[str, Any], req: Request, program: Program,
                      day: int) -> None:
        """Lots, tiers and conversion of the program (gateway/ledger/loyalty.py): its fixed
        fields (made once: their lists are shared, read only), its day, and for an earn or a
        return the points at each tier's rate (`tp`, integers; the card's tier, which only the
        script knows, picks one)."""
        p.update(self._fixed[program.id])
        p["day"] = day
        if program.tiers and req.op in (Op.EARN, Op.RETURN):
            key = (program.id, req.amount)
            tp = self._tier_points.get(key)
            if tp is None:
                if len(self._tier_points) > 100_000:  # amounts seen once, long ago
                    self._tier_points.clear()
                tp = self._tier_points[key] = [points_for(program, req.amount, t.points_per_unit)
                                               for t in program.tiers]
            p["tp"] = tp  # read only: packed, never changed

    def _day(self, now: float, timezone: str) -> tuple[int, dt.date]:
        """Today in the program's time zone as YYYYMMDD and as a date: the day a card expires
        on, a reward is valid on and a promotion runs on is the program's local day, as its
        points lots' day is. Computed once per second and zone, not per request."""
        second = int(now)
        cached = self._dates.get(timezone)
        if cached is None or cached[0] != second:
            date = dt.datetime.fromtimestamp(second, self._zones.get(timezone) or dt.UTC).date()
            cached = self._dates[timezone] = (second, int(date.strftime("%Y%m%d")), date)
        return cached[1], cached[2]

    def _expiry(self, program: Program, today: int, today_date: dt.date) -> int:
        """YYYYMMDD a card activated today expires (0: never), worked out once a day."""
        if not program.expiry_days:
            return 0
        cached = self._expiry_cache.get(program.id)
        if cached is None or cached[0] != today:
            end = today_date + dt.timedelta(days=program.expiry_days)
            cached = self._expiry_cache[program.id] = (today, int(end.strftime("%Y%m%d")))
        return cached[1]

    def _reversal_window(self, req: Request) -> int:
        reseller = self.resellers.reseller_of(req)
        return reseller.reversal_window if reseller is not None else self.config.reversal_window


def to_result(res: dict[str, Any], program: Program) -> Result:
    """A script's response map as a Result: money for gift programs, points for loyalty."""
    loyalty = program.is_loyalty
    result = Result(
        code=res["rc"], amount=res.get("amt"),
        balance=None if loyalty else res.get("bal"),
        points=res.get("pts") if loyalty else None,
        currency=program.currency, auth_id=res.get("auth") or None, expiry=res.get("exp"),
        message=res.get("msg"), tier=res.get("tier"),
    )
    return result

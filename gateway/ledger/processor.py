"""The Processor: every transport submits its `Request` here and gets a `Result` back.

It does everything that does not depend on the transport: network messages, terminal and
merchant checks, finding the card's program, club and currency checks, required tags, which
operations a program allows; then the store scripts, in phases batched across requests:

  phase 1  claim the request key and reserve the invoice number   (merchant slot: _claim.lua)
  phase 2  the card script of the operation                       (card slot: <op>.lua)
  phase 3  free the invoice number of a refused request           (merchant slot: release.lua)

Phases 1 and 2 go to Redis as one call (`claim+<op>`, gateway/ledger/lua/_claim_card.lua): one round
trip per request, not two. The keys keep their slots (merchant, card), so on a Redis Cluster they
would be two calls again, as they are for a balance transfer, whose two cards are in two slots.

`submit()` only queues. Once per reactor turn the queue is started in the asyncio loop, every
request's coroutine in that turn (gateway/ledger/replies.py run_in_place, no Task), so the store
sends
each phase's calls of the whole batch as one pipeline; each result is delivered as soon as its
own request is done (not when the slowest of its batch is), by a plain callback (`submit_to`)
or by firing the request's Deferred.
The Deferred of a request always fires with a Result and never errbacks: a store that cannot be
reached answers 96, and nothing was changed by that request.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import string
import time
from collections.abc import Callable
from typing import Any

import msgpack
from twisted.internet.defer import Deferred

from gateway.config.model import Config, Program, Reseller
from gateway.ledger import cards
from gateway.ledger.pins import pin_hash
from gateway.ledger.replies import run_in_place
from gateway.ledger.resellers import ResellerRules
from gateway.ledger.store import CLAIM_FIRST, Store, StoreError
from gateway.logrepeat import RepeatedLog
from gateway.metrics import families as metrics
from gateway.security.alerts.queue import AlertQueue
from gateway.security.pinkeys import PinKeys
from gateway.security.rules import CardPlan, ClaimPlan, Trip, Velocity
from protocols.model import RC, Op, Request, Result, mask_card

log = logging.getLogger(__name__)
STORE_DOWN_LOG = RepeatedLog(log, "requests answered 96 (store unavailable)")

GIFT_OPS = frozenset({
    Op.ACTIVATE, Op.ACTIVATE_PREVALUED, Op.PREVALIDATE, Op.RELOAD, Op.REDEEM, Op.REFUND,
    Op.CASHOUT, Op.BALANCE, Op.VOID, Op.REVERSAL, Op.TRANSFER,
})
LOYALTY_OPS = frozenset({
    Op.ACTIVATE, Op.PREVALIDATE, Op.EARN, Op.ADD_POINTS, Op.RETURN, Op.REDEEM_POINTS,
    Op.POINTS_BALANCE, Op.VOID, Op.REVERSAL, Op.TRANSFER,
})
SCRIPT_OF = {
    Op.ACTIVATE: "activate", Op.ACTIVATE_PREVALUED: "activate_prevalued",
    Op.PREVALIDATE: "prevalidate", Op.RELOAD: "reload", Op.REDEEM: "redeem", Op.REFUND: "refund",
    Op.CASHOUT: "cashout", Op.BALANCE: "balance", Op.POINTS_BALANCE: "balance", Op.VOID: "void",
    Op.REVERSAL: "reversal", Op.TRANSFER: "transfer_out", Op.EARN: "earn",
    Op.ADD_POINTS: "add_points", Op.RETURN: "return", Op.REDEEM_POINTS: "redeem_points",
}
# HOST-SPEC 2.3: the PIN guards operations that take value out or reveal it. A void of a load
# also needs it; the void script decides that, since only it knows what the original was.
PIN_OPS = frozenset({Op.REDEEM, Op.CASHOUT, Op.BALANCE, Op.POINTS_BALANCE, Op.TRANSFER,
                     Op.REDEEM_POINTS, Op.VOID})
# Operations that must carry an invoice number where the program requires one. Voids and
# reversals name their original instead and use up no number of their own.
INVOICE_OPS = frozenset({
    Op.ACTIVATE, Op.ACTIVATE_PREVALUED, Op.RELOAD, Op.REDEEM, Op.REFUND, Op.CASHOUT,
    Op.TRANSFER, Op.EARN, Op.ADD_POINTS, Op.RETURN, Op.REDEEM_POINTS,
})
POSITIVE_AMOUNT_OPS = frozenset({Op.RELOAD, Op.REDEEM, Op.REFUND, Op.EARN, Op.ADD_POINTS,
                                 Op.RETURN})
MONEY_LIMIT_OPS = frozenset({Op.ACTIVATE, Op.ACTIVATE_PREVALUED, Op.RELOAD, Op.REDEEM,
                             Op.REFUND})
RECORD_TTL_MIN = 35 * 86400  # records and claims outlive any void or reversal window
AUTH_ALPHABET = string.ascii_uppercase + string.digits


def points_for(program: Program, amount: int) -> int:
    """Points a purchase of `amount` minor units earns, by the program's integer rules."""
    q, r = divmod(amount * program.points_per_unit, program.unit)
    if program.rounding == "ceil" and r:
        q += 1
    elif program.rounding == "half_up" and 2 * r >= program.unit:
        q += 1
    if q < program.min_points:
        return 0
    if program.max_points:
        q = min(q, program.max_points)
    return q


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


class Processor:
    def __init__(self, config: Config, store: Store, clock: Callable[[], float] = time.time):
        self.config = config
        self.store = store
        self.clock = clock
        self.in_flight = 0
        self._pending: list[tuple[Request, Callable[[Result], object]]] = []
        self._scheduled = False
        self.record_ttl = max(RECORD_TTL_MIN, 2 * config.reversal_window,
                              *(2 * r.reversal_window for r in config.resellers.values()))
        self.record_ttl_arg = str(self.record_ttl)  # a script argument: formatted once (Store.run)
        # script parameters: one Packer kept (msgpack.packb builds one per call: 1.7 -> 0.9 us);
        # not thread-safe, and needs not be: a Processor runs in its loop's thread only
        self._pack = msgpack.Packer().pack
        self.resellers = ResellerRules(config)
        self.velocity = Velocity(config.rules)  # gateway/security/rules.py, docs/security.md
        self.pin_keys = PinKeys(config.security.pin_keys)  # field 52 under terminal keys
        self.alerts = AlertQueue(store, config.alerts.stream_max)
        self._day_second = -1
        self._day_cache: tuple[int, dt.date] = (0, dt.date.min)
        self._expiry_cache: dict[str, tuple[int, int]] = {}  # program -> (today, expiry)

    # -- batching across the Twisted/asyncio boundary ------------------------------------------

    def submit(self, request: Request) -> Deferred[Result]:
        d: Deferred[Result] = Deferred()
        self.submit_to(request, d.callback)
        return d

    def submit_to(self, request: Request, deliver: Callable[[Result], object]) -> None:
        """`submit` for the hot path: `deliver(result)` is called once, in the reactor thread,
        instead of firing a Deferred (which costs a few us per request at 10k/s)."""
        self._pending.append((request, deliver))
        self.in_flight += 1
        if not self._scheduled:
            # The loop's own call_soon, not reactor.callLater(0): Twisted's timed-call heap and
            # its runUntilCurrent pass were 5 % of the gateway's CPU under load.
            self._scheduled = True
            self.store.loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Start the batch: each request's coroutine runs its first step now, in this one turn
        (so the store sends the batch's calls as one pipeline), without a Task (run_in_place),
        and hands its own result over as its last step (not a Deferred per batch and a gather,
        which held every answer of a batch back until its slowest request was done)."""
        batch, self._pending = self._pending, []
        self._scheduled = False
        loop = self.store.loop
        for request, deliver in batch:
            run_in_place(self._process_and_deliver(request, deliver), loop)

    async def _process_and_deliver(self, request: Request,
                                   deliver: Callable[[Result], object]) -> None:
        try:
            result = await self._process(request)  # not process(): one coroutine less per request
        except BaseException as e:  # whatever happens, the till gets its answer
            result = self._failed(request, e)
        self.in_flight -= 1
        try:
            deliver(result)
        except Exception:  # the caller's failure must not go unnoticed
            log.exception("delivering a result failed")

    async def process_many(self, requests: list[Request]) -> list[Result]:
        return list(await asyncio.gather(*(self.process(r) for r in requests)))

    async def process(self, request: Request) -> Result:
        """One request, start to end; never raises."""
        try:
            return await self._process(request)
        except Exception as e:
            return self._failed(request, e)

    @staticmethod
    def _failed(request: Request, error: BaseException) -> Result:
        """The answer to a request that failed (96), logged without its card number. An outage
        fails every request: those lines are summarised, one per second with a count."""
        if isinstance(error, StoreError):
            STORE_DOWN_LOG.note("store unavailable for %s %s: %s", request.op.value,
                                mask_card(request.card), error)
        else:
            log.error("internal error on %s %s", request.op.value, mask_card(request.card),
                      exc_info=error)
        return Result(RC.SYSTEM_ERROR)

    # -- checks that need no store -------------------------------------------------------------

    def precheck(self, req: Request) -> Result | Program:
        """Transport-independent refusals in the order of the issue; else the card's program."""
        merchant = self.config.merchant_of_terminal(req.terminal)
        if merchant is None or merchant.id != req.merchant:
            return Result(RC.TERMINAL_NOT_PERMITTED)
        if not req.card:
            return Result(RC.FORMAT_ERROR, message="card missing")
        program = self.config.program_of_card(req.card)
        if program is None:
            return Result(RC.UNKNOWN_CARD)
        if program.merchants and req.merchant not in program.merchants:
            return Result(RC.TERMINAL_NOT_PERMITTED)
        # A currency given on the wire must be the program's (13, "invalid amount": the amount
        # is in a currency the card does not hold). Channels without a currency skip this.
        if req.currency is not None and req.currency != program.currency:
            return Result(RC.INVALID_AMOUNT, message="currency")
        if program.invoice_required and req.op in INVOICE_OPS and not req.invoice:
            return Result(RC.FORMAT_ERROR, message="invoice number required")
        if req.op in (Op.VOID, Op.REVERSAL) and not req.original_key:
            return Result(RC.FORMAT_ERROR, message="original missing")
        if req.op is Op.TRANSFER and not req.target_card:
            return Result(RC.FORMAT_ERROR, message="target card missing")
        allowed = LOYALTY_OPS if program.is_loyalty else GIFT_OPS
        if req.op not in allowed:
            return Result(RC.INVALID_TRANSACTION)
        refused = self.amount_refusal(req, program)
        return refused or program

    def amount_refusal(self, req: Request, program: Program) -> Result | None:
        """The refusal the operation's amount gets from the program's rules, if any (no store
        needed: HTTP issuing asks before it issues anything)."""
        op, amount = req.op, req.amount
        if amount < 0:
            return Result(RC.INVALID_AMOUNT)
        if op is Op.RELOAD and not program.reload:
            return Result(RC.INVALID_TRANSACTION, message="reload not allowed")
        if op is Op.ADD_POINTS and not program.points_only:
            return Result(RC.INVALID_TRANSACTION, message="points-only mode off")
        if op in POSITIVE_AMOUNT_OPS and amount == 0:
            return Result(RC.INVALID_AMOUNT)
        if op is Op.ACTIVATE:
            if program.is_loyalty and amount:
                return Result(RC.INVALID_AMOUNT)
            if amount < program.min_activation:
                return Result(RC.INVALID_AMOUNT)
        if op is Op.REDEEM_POINTS:
            if req.reward:
                if program.reward(req.reward) is None:
                    return Result(RC.INVALID_TRANSACTION, message="unknown reward")
            elif amount == 0:
                return Result(RC.INVALID_AMOUNT)
        if op in MONEY_LIMIT_OPS and program.max_transaction and amount > program.max_transaction:
            return Result(RC.LIMIT_EXCEEDED)
        return None

    async def operator_apply(self, req: Request) -> Result:
        """An operator's own operation (`cards issue --activate`): no terminal, merchant, claim
        or invoice, since the request key is unique by construction; every card rule applies."""
        program = self.config.program_of_card(req.card or "")
        if program is None:
            return Result(RC.UNKNOWN_CARD)
        refused = self.amount_refusal(req, program)
        return refused or (await self._card_script(req, program, velocity=False))[0]

    # -- the store phases ----------------------------------------------------------------------

    async def _process(self, req: Request) -> Result:
        if req.op.is_network:
            return Result(RC.APPROVED)
        if self.pin_keys:
            self.pin_keys.decode(req)
        checked = self.precheck(req)
        if isinstance(checked, Result):
            if checked.code == RC.UNKNOWN_CARD:
                return await self._velocity_unknown(req, checked)
            return checked
        program = checked
        reseller = self.resellers.reseller_of(req)
        if reseller is not None:
            refused = await self._reseller_prepare(req, program, reseller)
            if refused is not None:
                return refused
        invoice = req.invoice if program.invoice_required and req.op in INVOICE_OPS else ""
        plan = self.velocity.claim_plan(req, self.clock())
        claim_keys, claim_argv = self._claim_args(req, invoice or "", plan)
        freed = None
        if req.op is Op.TRANSFER:  # two cards, two slots: the claim is a call of its own
            claim, refused = await self._claim_outcome(
                req, plan, await self.store.run("claim", claim_keys, claim_argv))
            result = refused or await self._transfer(req, program, retransmission=claim == 1)
        else:
            claim, result, freed = await self._claim_and_card(req, program, plan, claim_keys,
                                                              claim_argv)
        if claim > 1:  # the claim refused: nothing was reserved, nothing is left to undo
            return result
        if invoice and claim == 0 and not result.approved:
            await self.store.run("release", [cards.invoice_key(req.merchant)], [invoice, req.key])
        elif freed:  # a voided or reversed sale never happened: its number is free again
            await self.store.run("release", [cards.invoice_key(req.merchant)],
                                 [freed, req.original_key])
        if program.uniform_decline and result.code == RC.NOT_ACTIVE:
            # enumeration defence: inactive looks unknown, down to the message and currency
            # (a transfer's target says "target card" either way)
            result = Result(RC.UNKNOWN_CARD, currency=result.currency, message=result.message)
        if claim == 0 and self.velocity.has_after_phase(plan, result):
            await self._velocity_after(req, plan, result)
        if result.message == "overdraft":
            log.warning("alert: advice took %s into overdraft (balance %s)",
                        mask_card(req.card), result.balance)
            await self._raise_event("advice-overdraft", req, result.balance or 0,
                                    f"advice took the card into overdraft ({result.balance})")
        if req.op is Op.REVERSAL and result.code in (RC.INVALID_TRANSACTION, RC.INVALID_AMOUNT):
            log.warning("alert: reversal refused for %s: %s", mask_card(req.card), result.message)
            await self._raise_event("reversal-refused", req, 0,
                                    f"reversal refused: {result.message}")
        if reseller is not None:
            await self.resellers.settle(self.store, req, result, reseller, self.clock())
        return result

    def _claim_args(self, req: Request, invoice: str,
                    plan: ClaimPlan) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of the claim (gateway/ledger/lua/_claim.lua), in the merchant's slot."""
        return ([cards.claim_key(req.merchant, req.key), cards.invoice_key(req.merchant),
                 *plan.keys],
                [req.fingerprint(), self.record_ttl_arg, invoice, req.key, *plan.argv])

    async def _claim_outcome(self, req: Request, plan: ClaimPlan,
                             reply: Any) -> tuple[int, Result | None]:
        """The claim's code (0 new, 1 retransmission, 2 to 5 refused) and, if it refused, the
        answer; alerts for the rules it tripped are queued either way."""
        claim, trips = self.velocity.claim_outcome(reply, plan)
        if trips:
            await self._raise(trips, req)
        refusal = CLAIM_REFUSALS.get(claim)
        return claim, None if refusal is None else Result(refusal[0], message=refusal[1])

    async def _claim_and_card(self, req: Request, program: Program, plan: ClaimPlan,
                              claim_keys: list[str], claim_argv: list[Any],
                              ) -> tuple[int, Result, str | None]:
        """Phases 1 and 2 in one call (`claim+<op>`, gateway/ledger/lua/_claim_card.lua): the claim,
        then, unless it refuses, the card script. Returns the claim's code, the answer, and the
        invoice number an undo freed, if any."""
        assert req.card is not None
        script = SCRIPT_OF[req.op]
        params = self.params(req, program, script, req.card)
        keys, card_plan = self._card_call(req, params, req.original_key, velocity=True)
        reply = await self.store.run(CLAIM_FIRST + script, keys + claim_keys,
                                     [self._pack(params), str(len(keys)), *claim_argv])
        claim, refused = await self._claim_outcome(req, plan, reply[0])
        if refused is not None:
            return claim, refused, None
        res = await self._card_outcome(req, reply[1], card_plan)
        return claim, to_result(res, program), res.get("freed")

    async def _reseller_prepare(self, req: Request, program: Program,
                                reseller: Reseller) -> Result | None:
        """Catalogue checks, then RRN retransmissions: a repeat takes the original's request
        key (so the card script replays its answer); an undo finds its original by RRN."""
        refused = self.resellers.check(req, program, reseller)
        if refused is not None:
            return refused
        original = await self.resellers.same_rrn(self.store, req, reseller, self.record_ttl)
        if isinstance(original, Result):
            return original
        if original is not None:
            req.key = original
        if req.op in (Op.VOID, Op.REVERSAL):
            by_rrn = await self.resellers.original_by_rrn(self.store, req)
            if by_rrn is not None:
                req.original_key = by_rrn
        return None

    def _day(self, now: float) -> tuple[int, dt.date]:
        """Today (UTC) as YYYYMMDD and as a date, computed once per second, not per request."""
        second = int(now)
        if second != self._day_second:
            date = dt.datetime.fromtimestamp(second, dt.UTC).date()
            self._day_cache = (int(date.strftime("%Y%m%d")), date)
            self._day_second = second
        return self._day_cache

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

    # -- velocity rules (gateway/security/rules.py) ------------------------------------------

    async def _velocity_unknown(self, req: Request, unknown: Result) -> Result:
        """A number that fits no program is an unknown-card answer too: count it, and refuse
        it (65) where a rate limit is reached or (58) the terminal is disabled."""
        keys, argv, counters = self.velocity.precheck_steps(req, self.clock())
        code, trips = self.velocity.after_outcome(
            await self.store.run("velocity_after", keys, argv), counters)
        await self._raise(trips, req)
        if code == 2:
            return Result(RC.TERMINAL_NOT_PERMITTED, message="terminal disabled")
        return Result(RC.VELOCITY) if code == 1 else unknown

    async def _velocity_after(self, req: Request, plan: ClaimPlan, result: Result) -> None:
        """Phase 3: give back reservations the answer did not use; count answer events."""
        found = self.velocity.after_steps(req, plan, result, self.clock())
        if found is None:
            return
        keys, argv, counters = found
        try:
            reply = await self.store.run("velocity_after", keys, argv)
        except StoreError as e:  # the answer stands; a lost count errs on the strict side
            log.warning("velocity phase 3 failed for %s: %s", req.terminal, e)
            return
        await self._raise(self.velocity.after_outcome(reply, counters)[1], req)

    async def _raise(self, trips: list[Trip], req: Request) -> None:
        """Queue an alert per trip (de-duplicated per rule, value and window). Never fails the
        request: the operation has already been decided."""
        for trip in trips:
            if trip.rule.action != "alert":
                metrics.VELOCITY_REFUSALS.labels(trip.rule.name).inc()
            try:
                await self.alerts.raise_trip(trip, req, self.clock())
            except Exception as e:
                log.error("alert for rule %s not queued: %s", trip.rule.name, e)

    async def _raise_event(self, name: str, req: Request, amount: int, detail: str) -> None:
        try:
            await self.alerts.raise_event(name, req, detail, amount, self.clock())
        except Exception as e:
            log.error("alert %s not queued: %s", name, e)

    def params(self, req: Request, program: Program, script: str, card: str,
               **extra: Any) -> dict[str, Any]:
        """The msgpack map every card script reads as `a` (see gateway/ledger/lua/_prelude.lua)."""
        now = self.clock()
        today, today_date = self._day(now)
        exp = self._expiry(program, today, today_date)
        needs_pin = program.pin_required and req.op in PIN_OPS
        pin = ""
        if needs_pin and req.pin is not None:
            pin = pin_hash(card, req.pin)
        points = 0
        if req.op in (Op.EARN, Op.RETURN):
            points = points_for(program, req.amount)
        elif req.op is Op.REDEEM_POINTS:
            reward = program.reward(req.reward) if req.reward else None
            points = reward.cost if reward else req.amount
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
        if req.invoice and program.invoice_required and req.op in INVOICE_OPS:
            p["inv"] = req.invoice
        if extra:
            p.update(extra)
        return p

    def _card_call(self, req: Request, params: dict[str, Any], original_key: str | None,
                   velocity: bool) -> tuple[list[str], CardPlan | None]:
        """KEYS of a card script on the card `params` was made for (its id, `ch`, is the card's
        key id); with `velocity`, the card-scope rules too (their counters, and `vr`)."""
        cid = params["ch"]
        keys = cards.card_keys(cid, req.key, original_key)
        plan = self.velocity.card_plan(req, cid, params["now"]) if velocity else None
        if plan is not None:
            keys += plan.keys
            params["vr"] = plan.vr
        return keys, plan

    async def _card_outcome(self, req: Request, packed: bytes,
                            plan: CardPlan | None) -> dict[str, Any]:
        """A card script's response map; alerts for the card rules it tripped are queued."""
        res = msgpack.unpackb(packed)
        if plan is not None and res.get("vt"):
            await self._raise(self.velocity.card_trips(res, plan), req)
        return res

    async def _run_card(self, script: str, req: Request, params: dict[str, Any],
                        original_key: str | None = None,
                        velocity: bool = False) -> tuple[dict[str, Any], bool]:
        """One card script as a call of its own; also whether this call decided it (False: a
        replay of the stored answer)."""
        keys, plan = self._card_call(req, params, original_key, velocity)
        packed, fresh = await self.store.run(script, keys, [self._pack(params)])
        return await self._card_outcome(req, packed, plan), bool(fresh)

    async def _card_script(self, req: Request, program: Program,
                           velocity: bool = True) -> tuple[Result, str | None]:
        """The operation's card script; also the invoice number an undo freed, if any."""
        assert req.card is not None
        script = SCRIPT_OF[req.op]
        params = self.params(req, program, script, req.card)
        res, _ = await self._run_card(script, req, params, req.original_key,
                                      velocity=velocity)
        return to_result(res, program), res.get("freed")

    async def _transfer_early_refusal(self, card: str, target: str,
                                      tprog: Program) -> Result | None:
        """Refuse before anything moves when the target is unknown, inactive or would overflow
        (the source is restored anyway if a concurrent change makes transfer_in refuse)."""
        (status, tbal), sbal = await asyncio.gather(  # one pipeline: both reads in this turn
            self.store.command("HMGET", cards.state_key(cards.card_id(target)), "status", "bal"),
            self.store.command("HGET", cards.state_key(cards.card_id(card)), "bal"))
        if status is None:
            return Result(RC.UNKNOWN_CARD, message="target card")
        if status != b"active":
            return Result(TARGET_STATUS_RC.get(status, RC.NOT_ACTIVE), message="target card")
        if tprog.max_balance and int(tbal or 0) + int(sbal or 0) > tprog.max_balance:
            return Result(RC.LIMIT_EXCEEDED, message="target card")
        return None

    async def _transfer(self, req: Request, program: Program,
                        retransmission: bool = False) -> Result:
        """Balance transfer across two slots (no single script can span them in a cluster).

        Check the target, then move everything out of the source and mark it lost
        (transfer_out), then credit the target (transfer_in); if the target refuses, the source
        gets it back (transfer_back) and the refusal is the answer. Every step is idempotent on
        the request key, so a retransmission replays, or finishes, the same transfer.
        """
        assert req.card is not None and req.target_card is not None
        target = req.target_card
        tprog = self.config.program_of_card(target)
        if tprog is None:
            return Result(RC.UNKNOWN_CARD, message="target card")
        if tprog.kind != program.kind or target == req.card:
            return Result(RC.INVALID_TRANSACTION, message="target card")
        # Early answers only: transfer_in checks again atomically. A retransmission of a
        # transfer that reached the source's script skips them: its first answer stands,
        # whatever the target has become since (the scripts below replay it).
        replaying = retransmission and await self.store.command(
            "HEXISTS", cards.record_key(cards.card_id(req.card), req.key), "resp")
        if not replaying:
            early = await self._transfer_early_refusal(req.card, target, tprog)
            if early is not None:
                return early
        out, _ = await self._run_card("transfer_out", req,
                                      self.params(req, program, "transfer_out", req.card),
                                      velocity=True)
        if out["rc"] != RC.APPROVED:
            return to_result(out, program)
        moved, moved_points = out.get("amt", 0), out.get("ptsd", 0)
        tparams = self.params(req, tprog, "transfer_in", target, amount=moved,
                              points=moved_points, pinreq=0)
        got, _ = await self._run_card("transfer_in", req, tparams)
        if got["rc"] == RC.APPROVED:
            return to_result(got, tprog)
        back, _ = await self._run_card("transfer_back", req, self.params(
            req, program, "transfer_back", req.card, rc=got["rc"],
            msg="target refused: " + got["rc"]))
        log.warning("transfer to %s refused with %s; source %s restored", mask_card(target),
                    got["rc"], mask_card(req.card))
        result = to_result(back, program)
        result.code = got["rc"]
        return result


# The claim's refusals (gateway/ledger/lua/_claim.lua codes 2 to 5)
CLAIM_REFUSALS: dict[int, tuple[str, str | None]] = {
    2: (RC.DUPLICATE, "request key reused"),
    3: (RC.DUPLICATE, "invoice number used"),
    4: (RC.TERMINAL_NOT_PERMITTED, "terminal disabled"),
    5: (RC.VELOCITY, None),
}
TARGET_STATUS_RC = {b"lost": RC.LOST_CARD, b"suspended": RC.SUSPENDED, b"locked": RC.SUSPENDED}


def to_result(res: dict[str, Any], program: Program) -> Result:
    """A script's response map as a Result: money for gift programs, points for loyalty."""
    loyalty = program.is_loyalty
    result = Result(
        code=res["rc"], amount=res.get("amt"),
        balance=None if loyalty else res.get("bal"),
        points=res.get("pts") if loyalty else None,
        currency=program.currency, auth_id=res.get("auth") or None, expiry=res.get("exp"),
        message=res.get("msg"),
    )
    return result

"""The Processor: every transport submits its `Request` here and gets a `Result` back.

It does everything that does not depend on the transport: network messages, the program's checks
(gateway/ledger/checks.py), then the store scripts, in phases batched across requests
(gateway/ledger/runner.py) with parameters built by gateway/ledger/params.py:

  phase 1  claim the request key and reserve the invoice number   (merchant slot: _claim.lua)
  phase 2  the card script of the operation                       (card slot: <op>.lua)
  phase 3  free the invoice number of a refused request           (merchant slot: release.lua)

Phases 1 and 2 go to Redis as one call (`claim+<op>`, gateway/ledger/lua/_claim_card.lua): one
round trip per request, not two. The keys keep their slots (merchant, card), so on a Redis Cluster
they would be two calls again, as they are for a balance transfer, whose two cards are in two
slots. Read `_process` top to bottom for the flow of one request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import msgpack

from gateway.config.model import Config, Program, Reseller
from gateway.ledger import cards, opcounters, rewardkeys, rewardsplit
from gateway.ledger.checks import INVOICE_OPS, amount_refusal, precheck
from gateway.ledger.compensate import Compensator, card_reply, claim_reply
from gateway.ledger.params import ScriptParams, params_packer, script_of, to_result
from gateway.ledger.pendingundo import PendingUndo
from gateway.ledger.resellers import ResellerRules
from gateway.ledger.runner import BatchRunner
from gateway.ledger.store import CLAIM_FIRST, Store, StoreError, UnacknowledgedWrite
from gateway.metrics import families as metrics
from gateway.security.alerts.queue import AlertQueue
from gateway.security.pinkeys import PinKeys
from gateway.security.rules import CardPlan, ClaimPlan, Trip, Velocity
from protocols.model import RC, Op, Request, Result, mask_card

log = logging.getLogger(__name__)


class Processor(BatchRunner):
    def __init__(self, config: Config, store: Store, clock: Callable[[], float] = time.time,
                 alerts: AlertQueue | None = None):
        """`alerts`: the queue to raise alerts on; a Processor made for a reloaded config
        takes its predecessor's, which the alert delivery service listens to."""
        super().__init__(store)
        self.config = config
        self.resellers = ResellerRules(config)
        packed = config.redis.packed_records  # None: as the ledger is marked (recordlayout.py)
        self.script_params = ScriptParams(config, self.resellers, clock,
                                          store.packed_records if packed is None else packed)
        self.clock = clock
        self.params = self.script_params.build
        self.record_ttl = self.script_params.record_ttl
        self.record_ttl_arg = str(self.record_ttl)  # a script argument: formatted once (Store.run)
        self._pack = params_packer()  # script parameters (ARGV[1])
        self.velocity = Velocity(config.rules)  # gateway/security/rules.py, docs/security.md
        self.pin_keys = PinKeys(config.security.pin_keys)  # field 52 under terminal keys
        self.alerts = alerts or AlertQueue(store, config.alerts.stream_max)
        # reversals of what was applied but refused for want of replicas (compensate.py)
        self.compensator = Compensator(self.undo_refused, store)

    # -- checks that need no store -------------------------------------------------------------

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        """One clock for the flow and the script parameters (a test may turn it forward)."""
        self._clock = clock
        self.script_params.clock = clock

    def precheck(self, req: Request) -> Result | Program:
        return precheck(self.config, req)

    async def operator_apply(self, req: Request) -> Result:
        """An operator's own operation (`cards issue --activate`): no terminal, merchant, claim
        or invoice, since the request key is unique by construction; every card rule applies."""
        program = self.config.program_of_card(req.card or "")
        if program is None:
            return Result(RC.UNKNOWN_CARD)
        refused = amount_refusal(req, program)
        return refused or (await self._card_script(req, program, velocity=False))[0]

    async def operator_transfer(self, req: Request) -> Result:
        """An operator's balance transfer (the portal's card page): like operator_apply, no
        terminal, merchant, claim, invoice or velocity rule, since no till asked. The operator,
        logged in with two factors and named in the journal, stands in for the holder's PIN."""
        program = self.config.program_of_card(req.card or "")
        if program is None:
            return Result(RC.UNKNOWN_CARD)
        if not req.target_card:
            return Result(RC.FORMAT_ERROR, message="target card missing")
        return await self._transfer(req, program, by_operator=True)

    async def signin_allowed(self, req: Request, cid: str) -> bool:
        """Count one member page sign-in attempt (gateway/web/members) against the
        `member_signin` rules, per source address and per card (`cid`: the card's id, or an
        e-mail address's hash); False when a decline rule was already at its limit."""
        keys, argv, counters = self.velocity.signin_steps(req.source, req.card or "", cid,
                                                          self.clock())
        code, trips = self.velocity.after_outcome(
            await self.store.run("velocity_after", keys, argv), counters)
        await self._raise(trips, req)
        return code == 0

    async def holder_signin(self, req: Request) -> Result:
        """A card holder signing in on the member page with the card's number and PIN
        (docs/members.md). First the sign-in rate limits (65 at one), then the balance
        inquiry's own script: the PIN's try counter and lock-out are the tills' (a wrong PIN
        here is one at a till, atomically) and card rules apply as at a till. No terminal,
        claim or invoice, and no stored answer (`norec`): a sign-in is never retransmitted.
        A number of no program, or of a program without PINs, is answered 14 after a store
        read of the same kind, taking as long as an unknown card."""
        card = req.card or ""
        cid = cards.card_id(card)
        if not await self.signin_allowed(req, cid):
            return Result(RC.VELOCITY)
        program = self.config.program_of_card(card)
        if program is None or not program.pin_required:
            await self.store.command("HGET", cards.state_key(cid), "status")
            return Result(RC.UNKNOWN_CARD)
        req.op = Op.POINTS_BALANCE if program.is_loyalty else Op.BALANCE
        script = script_of(req)
        params = self.params(req, program, script, card)
        params["norec"] = 1
        res, _ = await self._run_card(script, req, program, params, velocity=True)
        return to_result(res, program)

    async def undo_refused(self, pending: PendingUndo) -> Result:
        """The compensating reversal of a request answered 96 (gateway/ledger/compensate.py):
        the reversal card script only, by the card's key id (a pending compensation found in
        Redis has no card number). No claim, invoice check or velocity rule: no till asked, and
        the script is keyed on `<key>|undo` by itself. A freed invoice number is released and
        a refused reversal raises `reversal-refused`, as for a till's reversal."""
        program = self.config.programs.get(pending.program)
        if program is None:  # not 96: sending it again would not help
            return Result(RC.INVALID_TRANSACTION, message=f"program {pending.program} is gone")
        if pending.op == Op.TRANSFER.value:
            return await self._undo_transfer_out(pending, program)
        req = pending.reversal()
        params = self.params(req, program, "reversal", "", ch=pending.cid)
        rwk = None
        if program.is_loyalty:  # a reward claim's stock comes back too (_reward_keys)
            rwk = await self.store.command("HGET", cards.record_key(pending.cid, pending.key),
                                           "rwk")
        keys, _ = self._card_call(req, program, params, pending.key, velocity=False,
                                  reward_keys=rewardkeys.keys_of(rwk.decode()) if rwk else None)
        packed, _fresh = await self.store.run("reversal", keys, [self._pack(params)])
        res = msgpack.unpackb(packed)
        if res.get("freed"):
            await self.store.run("release", [cards.invoice_key(req.merchant)],
                                 [res["freed"], pending.key])
        result = to_result(res, program)
        if result.code in (RC.INVALID_TRANSACTION, RC.INVALID_AMOUNT):
            await self._raise_event("reversal-refused", req, 0,
                                    f"compensating reversal refused: {result.message}")
        return result

    async def _undo_transfer_out(self, pending: PendingUndo, program: Program) -> Result:
        """A transfer whose first step (transfer_out) was refused for want of replicas: the
        target was never credited (the second step is sent only after the first is
        acknowledged), so the source gets its value and status back (transfer_back), and the
        transfer's stored answer becomes 05, which a retransmission of it gets."""
        req = pending.original()
        params = self.params(req, program, "transfer_back", "", ch=pending.cid,
                             rc=RC.DO_NOT_HONOUR, msg="not acknowledged by replicas: reversed")
        keys, _ = self._card_call(req, program, params, None, velocity=False)
        packed, _fresh = await self.store.run("transfer_back", keys, [self._pack(params)])
        res = msgpack.unpackb(packed)
        if res.get("rc") == RC.DO_NOT_HONOUR:  # restored now, or before (a replay)
            return Result(RC.APPROVED, message="source restored")
        return to_result(res, program)

    # -- the store phases ----------------------------------------------------------------------

    async def _process(self, req: Request) -> Result:
        if req.op.is_network:
            return Result(RC.APPROVED)
        if self.pin_keys:
            self.pin_keys.decode(req)
        checked = precheck(self.config, req)
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
        script = script_of(req)
        params = self.params(req, program, script, req.card)
        reward_keys = await self._reward_keys(req, program)
        # a Redis Cluster: the reward's slot is called apart (rewardsplit.py)
        split = reward_keys is not None and rewardsplit.splits(
            self.store, cards.state_key(params["ch"]), reward_keys)
        if split:
            params["rwsplit"] = 1
        keys, card_plan = self._card_call(req, program, params, req.original_key, velocity=True,
                                          reward_keys=None if split else reward_keys)
        if not split and self.store.same_slot(keys[0], claim_keys[0]):
            try:
                reply = await self.store.run(CLAIM_FIRST + script, keys + claim_keys,
                                             [self._pack(params), str(len(keys)),
                                              self.store.deadline_ms(), *claim_argv])
            except UnacknowledgedWrite as e:  # answered 96: what it did must be undone
                await self.compensator.refused(req, program.id, *claim_reply(e.reply))
                raise
            claimed, packed = reply[0], reply[1] if len(reply) > 1 else None
        else:  # a Redis Cluster, the merchant's and the card's slots apart: two calls. A claim
            # whose card call fails is finished by the retransmission (claim 1), as a transfer.
            # (An unacknowledged claim alone moved no value: nothing to undo.)
            claimed, packed = await self.store.run("claim", claim_keys, claim_argv), None
        claim, refused = await self._claim_outcome(req, plan, claimed)
        if refused is not None:
            return claim, refused, None
        if split and req.op is Op.REDEEM_POINTS:  # step 1: the reward's item, reserved
            assert reward_keys is not None
            held = await rewardsplit.reserve(self.store, reward_keys[0], params,
                                             mask_card(req.card))
            refusal = held.refusal()
            if refusal is not None:
                return claim, to_result(refusal, program), None
            params.update(held.card_params())
        if packed is None:
            try:
                packed, _fresh = await self.store.run(script, keys, [self._pack(params)])
            except UnacknowledgedWrite as e:  # the card script's [response, 1 if applied now]
                await self.compensator.refused(req, program.id, *card_reply(e.reply))
                raise
        res = await self._card_outcome(req, packed, card_plan)
        if split:
            assert reward_keys is not None
            await self._settle_reward(req, params, reward_keys[0], res)
        if claim == 0:  # claimed now, so the card script applied it (1: a replay)
            opcounters.count(program.id, req, res)
        return claim, to_result(res, program), res.get("freed")

    async def _settle_reward(self, req: Request, params: dict[str, Any], reward_key: str,
                             res: dict[str, Any]) -> None:
        """A split claim's step 3, or an undo's item given back (gateway/ledger/rewardsplit.py).
        The card's answer stands either way: a failure here leaves a claim's reservation to the
        sweep, and an undo's item to the undo's retransmission."""
        assert req.card is not None
        try:
            if req.op is Op.REDEEM_POINTS:
                await rewardsplit.settle(self.store, reward_key, req.key, res["rc"])
            else:
                await rewardsplit.undone(self.store, res, req.op.name.lower(), params,
                                         req.original_key or "", mask_card(req.card),
                                         self.record_ttl)
        except StoreError as e:
            log.warning("reward %s of %s not settled in its slot: %s", req.op.value,
                        mask_card(req.card), e)

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

    def _card_call(self, req: Request, program: Program, params: dict[str, Any],
                   original_key: str | None, velocity: bool,
                   reward_keys: list[str] | None = None) -> tuple[list[str], CardPlan | None]:
        """KEYS of a card script on the card of `program` that `params` was made for (its id,
        `ch`, is the card's key id); with `velocity`, the card-scope rules too (their counters,
        and `vr`); then a reward's keys (`rwk`: where they start), then its points lots and
        indexes (`xk`, cards.add_points_keys)."""
        cid = params["ch"]
        keys = cards.card_keys(cid, req.key, original_key, self.store.feed_key)
        plan = self.velocity.card_plan(req, cid, params["now"]) if velocity else None
        if plan is not None:
            keys += plan.keys
            params["vr"] = plan.vr
        if reward_keys:
            params["rwk"] = len(keys) + 1
            keys += reward_keys
        cards.add_points_keys(keys, params, program.id, self.store.index_key)
        return keys, plan

    async def _reward_keys(self, req: Request, program: Program) -> list[str] | None:
        """The reward's keys of a claim, or of the claim a void or reversal undoes (its record
        keeps them, `rwk`: one read, on loyalty undos only), so the stock comes back too."""
        if req.reward and req.op is Op.REDEEM_POINTS:
            return rewardkeys.claim_keys(program.id, req.reward)
        if req.op in (Op.VOID, Op.REVERSAL) and program.is_loyalty and req.original_key:
            assert req.card is not None
            rwk = await self.store.command(
                "HGET", cards.record_key(cards.card_id(req.card), req.original_key), "rwk")
            return rewardkeys.keys_of(rwk.decode()) if rwk else None
        return None

    async def _card_outcome(self, req: Request, packed: bytes,
                            plan: CardPlan | None) -> dict[str, Any]:
        """A card script's response map; alerts for the card rules it tripped are queued."""
        res = msgpack.unpackb(packed)
        if plan is not None and res.get("vt"):
            await self._raise(self.velocity.card_trips(res, plan), req)
        return res

    async def _run_card(self, script: str, req: Request, program: Program, params: dict[str, Any],
                        original_key: str | None = None, velocity: bool = False,
                        reward_keys: list[str] | None = None) -> tuple[dict[str, Any], bool]:
        """One card script as a call of its own; also whether this call decided it (False: a
        replay of the stored answer)."""
        keys, plan = self._card_call(req, program, params, original_key, velocity, reward_keys)
        packed, fresh = await self.store.run(script, keys, [self._pack(params)])
        return await self._card_outcome(req, packed, plan), bool(fresh)

    async def _card_script(self, req: Request, program: Program,
                           velocity: bool = True) -> tuple[Result, str | None]:
        """The operation's card script; also the invoice number an undo freed, if any."""
        assert req.card is not None
        script = script_of(req)
        params = self.params(req, program, script, req.card)
        res, fresh = await self._run_card(script, req, program, params, req.original_key,
                                          velocity=velocity,
                                          reward_keys=await self._reward_keys(req, program))
        if fresh:
            opcounters.count(program.id, req, res)
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

    def _deadline(self) -> int:
        """A transfer step's deadline (`dl`, _prelude.lua `late`): Store.deadline_ms, as a
        number the script compares with Redis's clock."""
        return int(self.store.deadline_ms())

    async def _transfer(self, req: Request, program: Program, retransmission: bool = False,
                        by_operator: bool = False) -> Result:
        """Balance transfer across two slots (no single script can span them in a cluster).

        Check the target, then move everything out of the source and mark it lost
        (transfer_out), then credit the target (transfer_in); if the target refuses, the source
        gets it back (transfer_back) and the refusal is the answer. Every step is idempotent on
        the request key, so a retransmission replays, or finishes, the same transfer.
        `by_operator`: no PIN asked and no velocity rule counted (operator_transfer).
        """
        assert req.card is not None and req.target_card is not None
        waived: dict[str, Any] = {"pinreq": 0} if by_operator else {}
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
        try:
            out, _ = await self._run_card("transfer_out", req, program,
                                          self.params(req, program, "transfer_out", req.card,
                                                      dl=self._deadline(), **waived),
                                          velocity=not by_operator)
        except UnacknowledgedWrite as e:  # the source was emptied, the target never credited
            await self.compensator.refused(req, program.id, *card_reply(e.reply))
            raise
        if out["rc"] != RC.APPROVED:
            return to_result(out, program)
        moved, moved_points = out.get("amt", 0), out.get("ptsd", 0)
        tparams = self.params(req, tprog, "transfer_in", target, amount=moved,
                              points=moved_points, pinreq=0, dl=self._deadline())
        got, _ = await self._run_card("transfer_in", req, tprog, tparams)
        if got["rc"] == RC.APPROVED:
            return to_result(got, tprog)
        back, _ = await self._run_card("transfer_back", req, program, self.params(
            req, program, "transfer_back", req.card, rc=got["rc"],
            msg="target refused: " + got["rc"], dl=self._deadline(), **waived))
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



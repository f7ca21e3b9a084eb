"""Undo what a till was told was refused (durable acknowledgement, docs/scaling.md).

With `redis.acknowledge_after_replicas`, a batch whose writes did not reach enough replicas is
answered 96 ("system error, nothing was changed", HOST-SPEC 2.5), yet its scripts did run on the
primary. Two futures are possible: the primary survives (the writes stay, and would move value
the till was told did not move), or a failover loses them. A careful processor makes both end
the same way, with nothing moved: it queues a reversal of each such request key, sent again
until it is itself acknowledged. If the writes survived, the reversal undoes them exactly once;
if a failover lost them, the reversal finds no original and leaves its tombstone, so a late
retransmission of the request cannot apply it either (it is answered 05).

Only a request this call applied afresh is undone: the claim said "new" (0), the card script
approved, and the operation moves value. A retransmission (claim 1) of an earlier, acknowledged
approval is never reversed, and voids and reversals are never undone (a till repeats those
until answered, and a repeat changes nothing).

Each pending reversal is written to Redis before the 96 goes out and deleted once answered
(gateway/ledger/pendingundo.py), so a gateway killed meanwhile leaves it for the next start, or
worker 0's periodic pass (CompensationReplay), to send. A reversal is sent only while the store
answers with the replicas it needs (`Store.ping`): one sent without them would be refused in
turn. It is keyed (`<key>|undo`), so sending it twice reverses once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack

from gateway.ledger import pendingundo
from gateway.ledger.cards import card_id
from gateway.ledger.pendingundo import PendingUndo
from gateway.ledger.store import Store, StoreError
from gateway.metrics import families as metrics
from protocols.model import RC, Op, Request, Result, mask_card

log = logging.getLogger(__name__)

# What a refused request may have moved and a reversal can take back.
# A transfer only when its first step was refused (Processor._undo_transfer_out).
UNDOABLE = frozenset({Op.ACTIVATE, Op.ACTIVATE_PREVALUED, Op.RELOAD, Op.REDEEM, Op.REFUND,
                      Op.CASHOUT, Op.EARN, Op.ADD_POINTS, Op.RETURN, Op.REDEEM_POINTS,
                      Op.TRANSFER})


def claim_reply(reply: Any) -> tuple[bool, Any]:
    """A `claim+<op>` call's reply as (claimed by this call, the card script's packed
    response): the claim's answer is `0` (or a list starting with it) when this call claimed."""
    if not isinstance(reply, list) or len(reply) < 2:
        return False, None
    claim = reply[0][0] if isinstance(reply[0], list) else reply[0]
    return isinstance(claim, int) and claim == 0, reply[1]


def card_reply(reply: Any) -> tuple[bool, Any]:
    """A card script call's reply (`[response, 1 if this call applied it]`) as (applied by this
    call, its packed response if so)."""
    fresh = isinstance(reply, list) and len(reply) > 1 and reply[1] == 1
    return fresh, reply[0] if fresh else None


def applied_afresh(req: Request, fresh: bool, packed: Any) -> bool:
    """Whether a card script that ran for `req` applied it just now (`fresh`: this call decided
    it, not a replay) and approved it (`packed`: its response)."""
    if req.op not in UNDOABLE or not fresh or not isinstance(packed, bytes):
        return False
    try:
        outcome = msgpack.unpackb(packed)
    except (ValueError, msgpack.UnpackException):
        return False
    return isinstance(outcome, dict) and outcome.get("rc") in RC.APPROVALS


class Compensator:
    """Sends each compensating reversal until it is answered with anything but 96.

    `undo(pending)` sends one (Processor.undo_refused); `ready()` says whether the store
    answers with its replicas (Store.ping), checked before each attempt."""

    def __init__(self, undo: Callable[[PendingUndo], Awaitable[Result]], store: Store,
                 ready: Callable[[], Awaitable[bool]] | None = None,
                 first_delay: float = 0.2, max_delay: float = 5.0):
        self.undo = undo
        self.store = store
        self.ready = ready or store.ping
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.pending: dict[str, PendingUndo] = {}  # PendingUndo.field -> what is being undone
        self.done: dict[str, str] = {}  # reversal key -> its answer (for tests; last 1000)
        self._tasks: set[asyncio.Task[None]] = set()

    async def refused(self, req: Request, program: str, fresh: bool, packed: Any) -> None:
        """`req` (of `program`) was refused for want of replicas after the primary ran its card
        script: `fresh` when that call decided it, `packed` its response. Returns once the
        reversal to come is written to Redis (or that failed, logged): before the 96."""
        if not applied_afresh(req, fresh, packed):
            return
        assert req.card is not None
        pending = PendingUndo.of(req, card_id(req.card), program)
        if pending.field in self.pending:
            return
        self._start(pending)
        log.warning("%s of %s not acknowledged by replicas: answered 96, reversal queued",
                    req.op.value, mask_card(req.card))
        await pendingundo.save(self.store, pending)

    def adopt(self, found: list[PendingUndo]) -> int:
        """Take over compensations found in Redis (a gateway stopped before they were
        answered); those already under way here are left alone. Returns how many were new."""
        new = [pending for pending in found if pending.field not in self.pending]
        for pending in new:
            log.warning("compensating reversal of %s (%s %s) found pending in Redis: sending it",
                        pending.card, pending.op, pending.key)
            self._start(pending)
        return len(new)

    def _start(self, pending: PendingUndo) -> None:
        self.pending[pending.field] = pending
        metrics.COMPENSATIONS_PENDING.inc()
        task = asyncio.ensure_future(self._undo(pending))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _attempt(self, pending: PendingUndo) -> Result | None:
        """One try: the reversal's answer, or None (the store is not ready, or failed)."""
        try:
            if not await self.ready():
                return None
            result = await self.undo(pending)
        except StoreError:
            return None
        except Exception:
            log.exception("compensating reversal of %s failed", pending.card)
            return None
        return None if result.code == RC.SYSTEM_ERROR else result

    async def _undo(self, pending: PendingUndo) -> None:
        delay = self.first_delay
        while (result := await self._attempt(pending)) is None:
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_delay)
        await pendingundo.forget(self.store, pending)
        del self.pending[pending.field]
        metrics.COMPENSATIONS_PENDING.dec()
        metrics.COMPENSATIONS.labels("undone" if result.code == RC.APPROVED else "refused").inc()
        if len(self.done) >= 1000:
            self.done.pop(next(iter(self.done)))
        self.done[pending.reversal_key] = result.code
        level = logging.INFO if result.code == RC.APPROVED else logging.WARNING
        log.log(level, "compensating reversal of %s answered %s%s", pending.card,
                result.code, f" ({result.message})" if result.message else "")

    async def drain(self, timeout: float) -> bool:
        """Wait until no reversal is pending (True), or `timeout` seconds (False)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        return not self.pending

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()

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

Pending reversals live in memory: a gateway killed with some pending loses them (see the
limits in docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import msgpack

from gateway.metrics import families as metrics
from protocols.model import RC, Op, Request, Result, mask_card

log = logging.getLogger(__name__)

# What a refused request may have moved and a reversal can take back.
UNDOABLE = frozenset({Op.ACTIVATE, Op.ACTIVATE_PREVALUED, Op.RELOAD, Op.REDEEM, Op.REFUND,
                      Op.CASHOUT, Op.EARN, Op.ADD_POINTS, Op.RETURN, Op.REDEEM_POINTS})
UNDO_SUFFIX = "|undo"  # the compensating reversal's request key: the original's plus this
COMPENSATION = "compensation"  # Request.extras flag: the reversal of a request answered 96


def claim_reply(reply: Any) -> tuple[bool, Any]:
    """A `claim+<op>` call's reply as (claimed by this call, the card script's packed
    response): the claim's answer is `0` (or a list starting with it) when this call claimed."""
    if not isinstance(reply, list) or len(reply) < 2:
        return False, None
    claim = reply[0][0] if isinstance(reply[0], list) else reply[0]
    return isinstance(claim, int) and claim == 0, reply[1]


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


def reversal_of(req: Request) -> Request:
    """The reversal (HOST-SPEC 2.6, no field 4: the whole original) of `req`, from its till."""
    return replace(req, op=Op.REVERSAL, key=req.key + UNDO_SUFFIX, original_key=req.key,
                   original_op=req.op, amount=0, pin=None, pin_block=None, invoice=None,
                   reward=None, advice=True, repeat=False, extras={COMPENSATION: "1"})


class Compensator:
    """Sends each compensating reversal until it is answered with anything but 96."""

    def __init__(self, process: Callable[[Request], Awaitable[Result]],
                 first_delay: float = 0.2, max_delay: float = 5.0):
        self.process = process
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.pending: dict[str, Request] = {}  # reversal key -> reversal
        self.done: dict[str, str] = {}  # reversal key -> its answer (for tests; last 1000)
        self._tasks: set[asyncio.Task[None]] = set()

    def refused(self, req: Request, fresh: bool, packed: Any) -> None:
        """`req` was refused for want of replicas after the primary ran its card script:
        `fresh` when that call decided it, `packed` its response."""
        if not applied_afresh(req, fresh, packed):
            return
        reversal = reversal_of(req)
        if reversal.key in self.pending:
            return
        self.pending[reversal.key] = reversal
        metrics.COMPENSATIONS_PENDING.inc()
        log.warning("%s of %s not acknowledged by replicas: answered 96, reversal queued",
                    req.op.value, mask_card(req.card))
        task = asyncio.ensure_future(self._undo(reversal))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _undo(self, reversal: Request) -> None:
        delay = self.first_delay
        while True:
            result = await self.process(reversal)
            if result.code != RC.SYSTEM_ERROR:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_delay)
        del self.pending[reversal.key]
        metrics.COMPENSATIONS_PENDING.dec()
        metrics.COMPENSATIONS.labels("undone" if result.code == RC.APPROVED else "refused").inc()
        if len(self.done) >= 1000:
            self.done.pop(next(iter(self.done)))
        self.done[reversal.key] = result.code
        level = logging.INFO if result.code == RC.APPROVED else logging.WARNING
        log.log(level, "compensating reversal of %s answered %s%s", mask_card(reversal.card),
                result.code, f" ({result.message})" if result.message else "")

    async def drain(self, timeout: float) -> bool:
        """Wait until no reversal is pending (True), or `timeout` seconds (False)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        return not self.pending

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()

"""Running requests in batches across the Twisted/asyncio boundary (DESIGN.md, measured).

`submit()` only queues. Once per reactor turn the queue is started in the asyncio loop, every
request's coroutine in that turn (gateway/ledger/replies.py run_in_place, no Task), so the store
sends each phase's calls of the whole batch as one pipeline; each result is delivered as soon as
its own request is done (not when the slowest of its batch is), by a plain callback
(`submit_to`) or by firing the request's Deferred. The Deferred of a request always fires with a
Result and never errbacks: a store that cannot be reached answers 96, and nothing was changed by
that request.

The Processor (gateway/ledger/processor.py) is a BatchRunner whose `_process` is the flow of one
request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from twisted.internet.defer import Deferred

from gateway.ledger.replies import run_in_place
from gateway.ledger.store import Store, StoreError
from gateway.logrepeat import RepeatedLog
from protocols.model import RC, Request, Result, mask_card

log = logging.getLogger(__name__)
STORE_DOWN_LOG = RepeatedLog(log, "requests answered 96 (store unavailable)")


class BatchRunner:
    """Queues requests and runs each turn's batch in place; `_process` is the subclass's."""

    def __init__(self, store: Store):
        self.store = store
        self.in_flight = 0
        self._pending: list[tuple[Request, Callable[[Result], object]]] = []
        self._scheduled = False

    async def _process(self, request: Request) -> Result:
        raise NotImplementedError

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

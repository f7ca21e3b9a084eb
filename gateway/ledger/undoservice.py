"""Compensations left pending in Redis, sent again inside `tillgate serve` (worker 0 only with
`--workers`): at start, every one found (a gateway stopped or killed before they were answered),
then every `REPLAY_INTERVAL` seconds those older than `REPLAY_AGE` (another worker's, whose
process died; younger ones are still being sent by the worker that refused them). Sending one
twice reverses once: the reversal is keyed (gateway/ledger/compensate.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from gateway.ledger import pendingundo
from gateway.ledger.compensate import Compensator
from gateway.services import PeriodicPass

log = logging.getLogger(__name__)

REPLAY_INTERVAL = 30.0  # seconds between passes
REPLAY_AGE = 30.0  # a later pass takes those refused at least this long ago


class CompensationReplay(PeriodicPass):
    name = "compensation-replay"

    def __init__(self, reactor: Any, compensator_source: Callable[[], Compensator | None]):
        super().__init__(reactor)
        self.compensator_source = compensator_source  # the running processor's
        self.adopted = 0  # compensations taken over from Redis (what a test waits for)

    def interval(self) -> float:
        return REPLAY_INTERVAL

    def begin(self) -> Coroutine[Any, Any, int] | None:
        compensator = self.compensator_source()
        if compensator is None:  # the processor is not up yet: the next interval
            return None
        return self._pass(compensator, None if self.runs == 0 else time.time() - REPLAY_AGE)

    async def _pass(self, compensator: Compensator, older_than: float | None) -> int:
        return compensator.adopt(await pendingundo.find(compensator.store, older_than))

    def done(self, adopted: int) -> None:
        self.adopted += adopted
        if adopted:
            log.warning("%d compensating reversal(s) found pending in Redis are being sent",
                        adopted)

"""RepeatedLog: a run of the same error is one line, then one line per interval with a count."""

from __future__ import annotations

import asyncio
import logging

import pytest_twisted

from gateway.logrepeat import RepeatedLog
from gateway.reactor import deferred_from_coro


@pytest_twisted.ensureDeferred
async def test_a_run_is_logged_once_then_counted_per_interval(caplog):
    logger = logging.getLogger("tillgate.test.repeat")
    repeated = RepeatedLog(logger, "requests answered 96", interval=0.2)

    async def outage() -> None:
        for n in range(1000):
            repeated.note("store unavailable for %s", f"request {n}")
        await asyncio.sleep(0.3)  # the interval's end logs its count
        for n in range(1000, 1500):
            repeated.note("store unavailable for %s", f"request {n}")
        await asyncio.sleep(0.3)
        await asyncio.sleep(0.3)  # a quiet interval ends the run
        repeated.note("store unavailable for %s", "request 1500")

    with caplog.at_level(logging.WARNING, logger=logger.name):
        await deferred_from_coro(outage())
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "store unavailable for request 0 (repeats are counted: one line per 0.2 s)",
        "999 more requests answered 96 in 0.2 s; the last: store unavailable for request 999",
        "500 more requests answered 96 in 0.2 s; the last: store unavailable for request 1499",
        "store unavailable for request 1500 (repeats are counted: one line per 0.2 s)",
    ]

"""An ordered service tree with asynchronous start and stop (buildbot's util/service.py idea).

Children start one after another, each only once the previous one is up (the listeners must not
accept a till before the store answers), and stop in the reverse order (stop accepting, drain
in-flight work, then close the store). A failed start stops what had already started.

Stopping is bounded: given a reactor and a `stop_budget`, a child still stopping when the budget
is spent is cancelled and named in the log, and the tree goes on to stop the rest, so a stuck
part cannot keep the process alive until an init system kills it (and loses the Redis close).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Coroutine
from typing import Any

from twisted.internet import defer, task

from gateway.reactor import deferred_from_coro

log = logging.getLogger(__name__)


class AsyncService:
    """A part of the gateway with an async `start()` and `stop()`, run on the Twisted reactor."""

    name = "service"

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


class PeriodicPass(AsyncService):
    """A pass run once at the start and then every `interval()` seconds (0: never), one at a
    time: the points sweep, journal trimming. `begin()` gives the pass's coroutine, or None
    when what it needs is not up yet (tried again at the next interval); `done(result)` reports
    a pass, a failed pass is logged, and either way the next is scheduled. Stopping waits for
    a pass under way (each of its steps is one atomic call: it ends soon)."""

    def __init__(self, reactor: Any):
        self.reactor = reactor
        self._call: Any = None
        self._running: defer.Deferred[Any] | None = None
        self.runs = 0  # completed passes (what a test waits for)

    def interval(self) -> float:
        raise NotImplementedError

    def begin(self) -> Coroutine[Any, Any, Any] | None:
        raise NotImplementedError

    def done(self, result: Any) -> None:
        pass

    async def start(self) -> None:
        if self.interval():
            self._call = self.reactor.callLater(0, self._run)

    async def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if self._running is not None:
            await self._running

    def _run(self) -> None:
        self._call = None
        work = self.begin()
        if work is None:
            self._schedule()
            return
        self._running = deferred_from_coro(work)
        self._running.addCallbacks(self._done, self._failed)

    def _done(self, result: Any) -> None:
        self._running = None
        self.runs += 1
        self.done(result)
        self._schedule()

    def _failed(self, failure: Any) -> None:
        self._running = None
        log.error("%s failed (tried again in %s s): %s", self.name, self.interval(),
                  failure.getErrorMessage())
        self._schedule()

    def _schedule(self) -> None:
        interval = self.interval()
        if interval and self._call is None:
            self._call = self.reactor.callLater(interval, self._run)


class ServiceTree(AsyncService):
    name = "gateway"

    # Every child gets at least this long, even once the budget is spent: the store comes last
    # and closing Redis cleanly is worth a moment more.
    MIN_STOP_TIME = 2.0

    def __init__(self, children: list[AsyncService] | None = None, *, reactor: Any = None,
                 stop_budget: float | None = None):
        self.children: list[AsyncService] = list(children or [])
        self.reactor = reactor
        self.stop_budget = stop_budget
        self.stuck: list[str] = []  # children cancelled at the budget, for the exit status
        self.started: list[AsyncService] = []

    def add(self, child: AsyncService) -> AsyncService:
        self.children.append(child)
        return child

    async def start(self) -> None:
        for child in self.children:
            try:
                await child.start()
            except BaseException:
                await self.stop()
                raise
            self.started.append(child)
            log.debug("started %s", child.name)

    async def stop(self) -> None:
        bounded = self.reactor is not None and self.stop_budget is not None
        deadline = time.monotonic() + (self.stop_budget or 0.0)
        while self.started:
            child = self.started.pop()
            began = time.monotonic()
            stopping = defer.ensureDeferred(child.stop())
            if bounded:
                stopping.addTimeout(max(deadline - began, self.MIN_STOP_TIME), self.reactor)
            try:
                await stopping
            except defer.TimeoutError:
                log.error("%s did not stop within %.1f s; stopping the rest without it",
                          child.name, time.monotonic() - began)
                self.stuck.append(child.name)
                continue
            except Exception:
                log.exception("error while stopping %s", child.name)
            took = time.monotonic() - began
            # A slow stop is worth a line at INFO: it is where a hung shutdown shows first.
            log.log(logging.INFO if took >= 1.0 else logging.DEBUG, "stopped %s in %.2f s",
                    child.name, took)


async def drain(listener: Any, grace: float) -> None:
    """Let a listener's in-flight requests be answered (up to `grace` s), then close its
    connections. `listener` has `reactor`, `name`, `in_flight` and `connections` (each with a
    `transport`): every listener service of the gateway does."""
    deadline = time.monotonic() + grace
    while listener.in_flight and time.monotonic() < deadline:
        await task.deferLater(listener.reactor, 0.02, lambda: None)
    if listener.in_flight:
        log.warning("%s: %d requests still in flight at shutdown", listener.name,
                    listener.in_flight)
    for connection in list(listener.connections):
        connection.transport.loseConnection()

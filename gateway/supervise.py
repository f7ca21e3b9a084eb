"""Supervising the embedded redis-server: notice that it exited, restart it, say so.

The gateway looks at its child every CHECK_INTERVAL (and at once when a store call fails) with
a non-blocking waitpid, which also reaps it (no zombie). An exited child is started again on
the same data directory (the gateway still holds its lock, so nothing else started one there
meanwhile) after a back-off that doubles from `initial` up to `maximum` while restarts keep
failing, and starts again from `initial` once a server stayed up for STABLE_AFTER seconds.
A restart that answers is counted (tillgate_embedded_redis_restarts_total) and reported to
`on_restarted` (the gateway raises an alert). Nothing here waits on the reactor thread: the
restarted server's readiness is polled with the store's own asynchronous PING.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable

from twisted.internet import task

from gateway.embedded_redis import EmbeddedRedis, EmbeddedRedisError
from gateway.metrics import families as metrics
from gateway.security.alerts.service import Backoff

log = logging.getLogger(__name__)

CHECK_INTERVAL = 0.2
START_TIMEOUT = 30.0  # a restarted server loads its whole AOF before it answers PING
STABLE_AFTER = 60.0


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class EmbeddedSupervisor:
    def __init__(self, reactor, embedded: EmbeddedRedis, ping: Callable[[], Awaitable[bool]], *,
                 on_down: Callable[[str], object],
                 on_restarted: Callable[[int, str], Awaitable[object]],
                 initial: float = 0.1, maximum: float = 30.0):
        self.reactor = reactor
        self.embedded = embedded
        self.ping = ping  # the store's PING: True once the restarted server answers
        self.on_down = on_down
        self.on_restarted = on_restarted  # (restarts so far, why it had stopped)
        self.backoff = Backoff(initial, maximum)
        self.restarts = 0
        self._up_since = time.monotonic()
        self._loop: task.LoopingCall | None = None
        self._restarting: asyncio.Future[None] | None = None

    def start(self) -> None:
        self._loop = task.LoopingCall(self.check)
        self._loop.clock = self.reactor
        self._loop.start(CHECK_INTERVAL, now=False)

    async def stop(self) -> None:
        """Stop watching (before the server is stopped on purpose) and end a restart."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        restarting, self._restarting = self._restarting, None
        if restarting is not None and not restarting.done():
            restarting.cancel()
            await asyncio.gather(restarting, return_exceptions=True)

    @property
    def restarting(self) -> bool:
        return self._restarting is not None and not self._restarting.done()

    def check(self) -> None:
        """Has the child exited? Cheap (waitpid WNOHANG): called often, never blocks."""
        if self._loop is None or self.restarting:
            return
        code = self.embedded.exited()
        if code is None:
            return
        why = f"embedded redis-server {describe_exit(code)}"
        if code > 0:  # it stopped itself: it said why (a killed one said nothing)
            why += f" ({self.embedded.exit_reason()[-300:]})"
        log.error("%s; restarting it on %s", why, self.embedded.directory)
        self.on_down(why)
        if time.monotonic() - self._up_since >= STABLE_AFTER:
            self.backoff.succeeded()
        self._restarting = asyncio.ensure_future(self._restart(why))

    async def _restart(self, why: str) -> None:
        while True:
            await asyncio.sleep(self.backoff.failed())
            try:
                process = self.embedded.spawn()
            except (OSError, EmbeddedRedisError) as e:
                log.error("embedded redis-server could not be started: %s; trying again", e)
                continue
            if await self._answers(process):
                break
            log.error("restarted redis-server did not answer (%s); trying again",
                      self.embedded.exit_reason() if process.poll() is not None else
                      f"no PING answer in {START_TIMEOUT:.0f} s")
        self.restarts += 1
        self._up_since = time.monotonic()
        metrics.EMBEDDED_REDIS_RESTARTS.inc()
        log.warning("embedded redis-server restarted (pid %d, restart %d since start)",
                    process.pid, self.restarts)
        try:
            await self.on_restarted(self.restarts, why)
        except Exception:  # the alert is a report; the restart stands without it
            log.exception("reporting the restart of redis-server failed")

    async def _answers(self, process) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            if await self.ping():
                return True
            await asyncio.sleep(0.05)
        process.kill()
        while process.poll() is None:  # reaped without a blocking wait
            await asyncio.sleep(0.01)
        return False

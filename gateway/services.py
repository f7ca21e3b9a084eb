"""An ordered service tree with asynchronous start and stop (buildbot's util/service.py idea).

Children start one after another, each only once the previous one is up (the listeners must not
accept a till before the store answers), and stop in the reverse order (stop accepting, drain
in-flight work, then close the store). A failed start stops what had already started.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from twisted.internet import task

log = logging.getLogger(__name__)


class AsyncService:
    """A part of the gateway with an async `start()` and `stop()`, run on the Twisted reactor."""

    name = "service"

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


class ServiceTree(AsyncService):
    name = "gateway"

    def __init__(self, children: list[AsyncService] | None = None):
        self.children: list[AsyncService] = list(children or [])
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
        while self.started:
            child = self.started.pop()
            try:
                await child.stop()
            except Exception:
                log.exception("error while stopping %s", child.name)
            log.debug("stopped %s", child.name)


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

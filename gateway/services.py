"""An ordered service tree with asynchronous start and stop (buildbot's util/service.py idea).

Children start one after another, each only once the previous one is up (the listeners must not
accept a till before the store answers), and stop in the reverse order (stop accepting, drain
in-flight work, then close the store). A failed start stops what had already started.
"""

from __future__ import annotations

import logging

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

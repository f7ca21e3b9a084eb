"""Journal trimming inside `tillgate serve` (gateway/backoffice/trim.py): with `journal.trim =
true`, a pass over every card's journal at the start and then every `journal.trim_interval`
seconds (`tillgate journal trim` runs one by hand). It needs the back office's SQL, through the
engine the back office service opened and migrated: until that service has it (SQL down, or
still starting) a pass is skipped, and a pass that fails is logged; the next one tries again.
Nothing is folded that SQL has not confirmed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from twisted.internet.defer import Deferred

from gateway.backoffice.trim import JournalTrimmer, TrimReport
from gateway.config.model import Config
from gateway.ledger.store import Store
from gateway.ledger.trim import TrimPolicy
from gateway.reactor import deferred_from_coro
from gateway.services import AsyncService

log = logging.getLogger("tillgate.journal")


class JournalTrimService(AsyncService):
    name = "journal-trim"

    def __init__(self, reactor: Any, config: Config, store_source: Callable[[], Store | None],
                 engine: Callable[[], AsyncEngine | None]):
        self.reactor = reactor
        self.config = config  # [journal] is read at the start (a reload's change needs a restart)
        self.store_source = store_source
        self.engine = engine  # the back office service's engine once it opened it, else None
        self.clock: Callable[[], float] = time.time
        self._call: Any = None
        self._running: Deferred[Any] | None = None
        self.runs = 0  # completed passes (what a test waits for)
        self.last: TrimReport | None = None

    async def start(self) -> None:
        if self.config.journal.trim:
            self._call = self.reactor.callLater(0, self._run)

    async def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if self._running is not None:
            await self._running  # each card's fold is one atomic call: let the pass end

    def _run(self) -> None:
        self._call = None
        store, engine = self.store_source(), self.engine()
        if store is None or engine is None:  # the store restarting, SQL not open yet: later
            self._schedule()
            return
        self._running = deferred_from_coro(self._pass(store, engine))
        self._running.addCallbacks(self._done, self._failed)

    async def _pass(self, store: Store, engine: AsyncEngine) -> TrimReport:
        return await JournalTrimmer(store, engine, TrimPolicy.of(self.config), self.clock).run()

    def _done(self, report: TrimReport) -> None:
        self._running = None
        self.runs += 1
        self.last = report
        if report.trimmed or report.refused:
            log.info("journal trim: %d journals, %d trimmed, %d entries folded; %d waiting for "
                     "the back office", report.cards, report.trimmed, report.folded,
                     report.waiting)
        for line in report.refused:
            log.error("journal trim: not trimmed (run tillgate audit): %s", line)
        self._schedule()

    def _failed(self, failure: Any) -> None:
        self._running = None
        log.warning("journal trim failed (tried again in %d s): %s",
                    self.config.journal.trim_interval, failure.getErrorMessage())
        self._schedule()

    def _schedule(self) -> None:
        if self._call is None:
            self._call = self.reactor.callLater(self.config.journal.trim_interval, self._run)

"""Journal trimming inside `tillgate serve` (gateway/backoffice/trim.py): with `journal.trim =
true`, a pass over every card's journal at the start and then every `journal.trim_interval`
seconds (`tillgate journal trim` runs one by hand). It needs the back office's SQL, through the
engine the back office service opened and migrated: until that service has it (SQL down, or
still starting) a pass is skipped, and a pass that fails is logged; the next one tries again.
Nothing is folded that SQL has not confirmed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.backoffice.trim import JournalTrimmer, TrimReport
from gateway.config.model import Config
from gateway.ledger.store import Store
from gateway.ledger.trim import TrimPolicy
from gateway.services import PeriodicPass

log = logging.getLogger("tillgate.journal")


class JournalTrimService(PeriodicPass):
    name = "journal-trim"

    def __init__(self, reactor: Any, config: Config, store_source: Callable[[], Store | None],
                 engine: Callable[[], AsyncEngine | None]):
        super().__init__(reactor)
        self.config = config  # [journal] is read at the start (a reload's change needs a restart)
        self.store_source = store_source
        self.engine = engine  # the back office service's engine once it opened it, else None
        self.clock: Callable[[], float] = time.time
        self.last: TrimReport | None = None

    def interval(self) -> float:
        return self.config.journal.trim_interval if self.config.journal.trim else 0

    def begin(self) -> Coroutine[Any, Any, TrimReport] | None:
        store, engine = self.store_source(), self.engine()
        if store is None or engine is None:  # the store restarting, SQL not open yet: later
            return None
        return JournalTrimmer(store, engine, TrimPolicy.of(self.config), self.clock).run()

    def done(self, report: TrimReport) -> None:
        self.last = report
        if report.trimmed or report.refused:
            log.info("journal trim: %d journals, %d trimmed, %d entries folded; %d waiting for "
                     "the back office", report.cards, report.trimmed, report.folded,
                     report.waiting)
        for line in report.refused:
            log.error("journal trim: not trimmed (run tillgate audit): %s", line)

"""The points sweep inside `tillgate serve` (gateway/ledger/sweep.py): once at start, then every
`gateway.points_sweep_interval` seconds (0 = never; `tillgate points expire` runs it by hand).
A card's due points also go at its next request, so the sweep is for the cards nobody uses."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred

from gateway.config.model import Config
from gateway.ledger.store import Store
from gateway.ledger.sweep import SweepReport, sweep
from gateway.reactor import deferred_from_coro
from gateway.services import AsyncService

log = logging.getLogger("tillgate.points")


class PointsSweepService(AsyncService):
    name = "points-sweep"

    def __init__(self, reactor: Any, config_source: Callable[[], Config],
                 store_source: Callable[[], Store | None]):
        self.reactor = reactor
        self.config_source = config_source  # a reload's new programs apply at the next run
        self.store_source = store_source
        self._call: Any = None
        self._running: Deferred[Any] | None = None
        self.runs = 0  # completed runs (what a test waits for)

    async def start(self) -> None:
        if self.config_source().points_sweep_interval:
            self._call = self.reactor.callLater(0, self._run)

    async def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if self._running is not None:
            await self._running  # a card's sweep is one atomic call: let the current one end

    def _run(self) -> None:
        self._call = None
        store = self.store_source()
        if store is None:  # the store is restarting: try again at the next interval
            self._schedule()
            return
        self._running = deferred_from_coro(sweep(store, self.config_source(), time.time()))
        self._running.addCallbacks(self._done, self._failed)

    def _done(self, report: SweepReport) -> None:
        self._running = None
        self.runs += 1
        if report.cards:
            log.info("points sweep: %d cards, %d points expired on %d cards, %d tier changes",
                     report.cards, report.expired, report.expiries, report.tier_changes)
        self._schedule()

    def _failed(self, failure: Any) -> None:
        self._running = None
        log.error("points sweep failed (retried at the next interval): %s",
                  failure.getErrorMessage())
        self._schedule()

    def _schedule(self) -> None:
        interval = self.config_source().points_sweep_interval
        if interval and self._call is None:
            self._call = self.reactor.callLater(interval, self._run)

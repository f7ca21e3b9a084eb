"""The points sweep inside `tillgate serve` (gateway/ledger/sweep.py): once at start, then every
`gateway.points_sweep_interval` seconds (0 = never; `tillgate points expire` runs it by hand).
A card's due points also go at its next request, so the sweep is for the cards nobody uses.
The same pass settles a Redis Cluster's reward reservations a dead gateway left held
(gateway/ledger/rewardsweep.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from gateway.config.model import Config
from gateway.ledger.rewardsweep import ReservationReport, sweep_points_and_reservations
from gateway.ledger.store import Store
from gateway.ledger.sweep import SweepReport
from gateway.services import PeriodicPass

log = logging.getLogger("tillgate.points")


class PointsSweepService(PeriodicPass):
    name = "points-sweep"

    def __init__(self, reactor: Any, config_source: Callable[[], Config],
                 store_source: Callable[[], Store | None]):
        super().__init__(reactor)
        self.config_source = config_source  # a reload's new programs apply at the next run
        self.store_source = store_source

    def interval(self) -> float:
        return self.config_source().points_sweep_interval

    def begin(self) -> Coroutine[Any, Any, tuple[SweepReport, ReservationReport]] | None:
        store = self.store_source()
        if store is None:  # the store is restarting: try again at the next interval
            return None
        return sweep_points_and_reservations(store, self.config_source(), time.time())

    def done(self, reports: tuple[SweepReport, ReservationReport]) -> None:
        report, held = reports
        if held.claimed or held.returned:
            log.info("reward reservations settled: %d claimed, %d items given back",
                     held.claimed, held.returned)
        if report.cards:
            log.info("points sweep: %d cards, %d points expired on %d cards, %d tier changes",
                     report.cards, report.expired, report.expiries, report.tier_changes)


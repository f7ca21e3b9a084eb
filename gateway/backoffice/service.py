"""`BackofficeService`: the back office inside `tillgate serve` (docs/backoffice.md).

Started after the store and stopped before it. Its start never fails the gateway's: it returns
at once and, in the background, opens the database and migrates it (retrying with back-off while
SQL is down), then runs the feed consumer (unless `[backoffice] enabled = false`, where another
process runs `tillgate backoffice sync`; the service then only measures the lag). Till health
is Redis's: SQL being down shows in /healthz as `"backoffice": "down"` and never turns it 503.

`shared` holds the process's one SQL engine (gateway/backoffice/shared.py): the admin resources
of customers and reports take the `engine` getter, which opens it at once if this service has
not yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.backoffice.connect import BackofficeUnavailable, _reason
from gateway.backoffice.consumer import FeedConsumer
from gateway.backoffice.db import database_url, describe
from gateway.backoffice.feed import FeedReader, Lag
from gateway.backoffice.shared import SharedEngine
from gateway.backoffice.summaries import configured_zones
from gateway.config.model import Config
from gateway.ledger.store import Store
from gateway.metrics import families as metrics
from gateway.reactor import deferred_from_coro
from gateway.security.alerts.record import Alert
from gateway.security.alerts.service import Backoff
from gateway.services import AsyncService

log = logging.getLogger("tillgate.backoffice")

LAG_ALERT = "backoffice_lag"
LAG_ALERT_WINDOW = 3600  # one alert per hour while the lag stays past the threshold
# Caught up, the consumer waits this long before its next batch: fewer, larger batches take
# less of the process the tills share (docs/benchmarks.md section 15); the lag grows by as much.
LINGER = 0.25
STOP_WAIT = 5.0  # seconds a stop waits for the batch in hand before cancelling it


def consumer_name() -> str:
    """The consumer's name in the group: the host's, so a gateway started again on the same
    host reads its own pending entries first (another host's are claimed once stale)."""
    return socket.gethostname() or "tillgate"


class BackofficeService(AsyncService):
    name = "backoffice"

    def __init__(self, config: Config, store_source: Callable[[], Store | None],
                 raise_alert: Callable[[Alert, str, int], Any] | None = None,
                 *, block_ms: int = 1000, linger: float = LINGER, lag_interval: float = 1.0,
                 consume: bool = True):
        self.config = config
        # False in workers other than 0 of `serve --workers N`: worker 0 runs the consumer and
        # the migrations; this one measures the lag and opens the engine when a request needs it.
        self.consume = consume
        self.store_source = store_source
        self.raise_alert = raise_alert  # AlertQueue.raise_alert of the gateway, or None
        self.block_ms = block_ms
        self.linger = linger
        self.lag_interval = lag_interval  # how often the lag is measured (XLEN, one XRANGE)
        self.shared = SharedEngine(config)
        self.consumer: FeedConsumer | None = None
        self.lag: Lag | None = None  # not measured yet (health says null, not 0)
        self.state = ("disabled" if not config.backoffice.enabled else
                      "down" if consume else "worker 0")
        self._stopping = False
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._alerting: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._stopping = False
        self._wake = asyncio.Event()
        self._task = asyncio.ensure_future(self._run())

    async def engine(self) -> AsyncEngine:
        """The process's engine, opened now if it is not yet; BackofficeUnavailable if SQL
        cannot be reached (what the customer and report resources are given)."""
        return await self.shared.engine()

    async def stop(self) -> None:
        await deferred_from_coro(self._stop())
        await self.shared.stop()  # after the consumer: disposes the engine
        metrics.BACKOFFICE_UP.set(0)

    async def _stop(self) -> None:
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            done, _ = await asyncio.wait([task], timeout=STOP_WAIT)
            if not done:  # a batch stuck on SQL: cancelled, its entries stay pending
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._alerting:
            await asyncio.wait(list(self._alerting), timeout=STOP_WAIT)

    def health(self) -> dict[str, object]:
        """For /healthz: the back office's state and lag; never part of the gateway's 200/503."""
        lag = self.lag
        return {"backoffice": self.state,
                "backoffice_lag_entries": None if lag is None else lag.entries,
                "backoffice_lag_seconds": None if lag is None else round(lag.seconds, 1)}

    def _stopping_now(self) -> bool:
        return self._stopping

    async def _sleep(self, seconds: float) -> None:
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _run(self) -> None:
        try:
            store = self.store_source()
            assert store is not None, "the store starts first"
            reader = FeedReader(store, consumer_name())
            while not self._stopping:
                try:
                    await reader.ensure_group()
                    break
                except Exception as e:  # Redis down at this moment: the store recovers it
                    log.warning("back office: cannot create the feed's group: %s", e)
                    await self._sleep(1.0)
            # The lag is measured from Redis alone, so it shows while SQL is down too.
            lag_task = asyncio.ensure_future(self._measure(reader))
            try:
                if self.consume and await self._open() and self.config.backoffice.enabled:
                    engine = self.shared.opened
                    assert engine is not None
                    self.consumer = FeedConsumer(reader, engine, block_ms=self.block_ms,
                                                 linger=self.linger,
                                                 zones=configured_zones(self.config.programs))
                    await self.consumer.run(self._stopping_now, self._sleep)
            finally:
                await lag_task
        except Exception:
            log.exception("back office: the service stopped on an error; tills are not affected")

    async def _open(self) -> bool:
        """The engine, migrated; retried with back-off until it works or the service stops."""
        where = describe(database_url(self.config))
        backoff = Backoff(1.0, 60.0)
        while not self._stopping:
            try:
                await self.shared.engine()
            except Exception as e:  # unreachable (BackofficeUnavailable), or a failed migration
                self._set_sql(False)
                why = str(e) if isinstance(e, BackofficeUnavailable) else \
                    f"back office {where}: cannot open it: {_reason(e)}"
                log.warning("%s; tills are served, the feed keeps the entries; trying again", why)
                await self._sleep(backoff.failed())
                continue
            self._set_sql(True)
            log.info("back office %s: migrated, feed consumer %s", where,
                     "running" if self.config.backoffice.enabled else "off (enabled = false)")
            return True
        return False

    def _set_sql(self, up: bool) -> None:
        metrics.BACKOFFICE_UP.set(1 if up else 0)
        if self.config.backoffice.enabled:
            self.state = "up" if up else "down"

    async def _measure(self, reader: FeedReader) -> None:
        while not self._stopping:
            try:
                self._lag_measured(await reader.lag())
            except Exception as e:  # Redis down: the lag is unknown, the figures stay
                log.debug("back office: lag not measured: %s", e)
            await self._sleep(self.lag_interval)

    def _lag_measured(self, lag: Lag) -> None:
        self.lag = lag
        metrics.BACKOFFICE_LAG_ENTRIES.set(lag.entries)
        metrics.BACKOFFICE_LAG_SECONDS.set(lag.seconds)
        if self.consumer is not None and self.consumer.sql_up is not None:
            self._set_sql(self.consumer.sql_up)
        threshold = self.config.backoffice.lag_alert_seconds
        if lag.seconds > threshold and self.raise_alert is not None:
            now = time.time()
            alert = Alert.for_gateway(
                LAG_ALERT, f"the back office is {int(lag.seconds)} s behind the ledger "
                f"({lag.entries} entries in the feed; threshold {threshold} s)", now)
            # de-duplicated per (rule, value, window start): one alert per hour, not per second
            start = int(now) // LAG_ALERT_WINDOW * LAG_ALERT_WINDOW
            alert = dataclasses.replace(alert, window=LAG_ALERT_WINDOW, window_start=start)
            task = asyncio.ensure_future(self._alert(alert, "feed"))
            self._alerting.add(task)
            task.add_done_callback(self._alerting.discard)

    async def _alert(self, alert: Alert, key: str) -> None:
        assert self.raise_alert is not None
        try:
            await self.raise_alert(alert, key, LAG_ALERT_WINDOW)
        except Exception as e:
            log.warning("back office: lag alert not queued: %s", e)

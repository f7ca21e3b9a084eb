"""The feed consumer: feed entries into SQL, then acknowledged (gateway/backoffice/feed.py and
ingest.py), in a loop that outlives outages.

Each turn reads a batch (waiting up to `block_ms` for one, so a stop is noticed within that),
writes it in one SQL transaction, and acknowledges it after the commit. A failure of either side
leaves the batch pending in the feed: the consumer waits (0.5 s, doubling up to 30 s), reads its
pending entries again and retries. Tills never wait for any of this; the feed keeps the entries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.backoffice.connect import _reason
from gateway.backoffice.feed import FedEntry, FeedReader, Lag
from gateway.backoffice.ingest import ingest
from gateway.ledger.store import StoreError
from gateway.logrepeat import RepeatedLog
from gateway.metrics import families as metrics
from gateway.security.alerts.service import Backoff

log = logging.getLogger("tillgate.backoffice")


class FeedConsumer:
    def __init__(self, reader: FeedReader, engine: AsyncEngine, *, block_ms: int = 1000,
                 linger: float = 0.0, backoff: Backoff | None = None,
                 zones: Mapping[str, str] | None = None):
        self.reader = reader
        self.engine = engine
        # program id -> its configured time zone: the days of the summaries (summaries.py)
        self.zones = dict(zones or {})
        self.block_ms = block_ms
        # After a batch that was not full (caught up), wait this long before reading again:
        # under a steady load the next batch is then one of a few hundred entries, not a few,
        # and the per-batch costs (a commit, five Redis calls) are shared by more entries.
        self.linger = linger
        self.backoff = backoff or Backoff(0.5, 30.0)
        self.sql_up: bool | None = None  # None: not tried yet
        self.lag = Lag(0, 0.0)
        self.ingested = 0  # entries written by this consumer (a replayed one counts again)
        self._failures = RepeatedLog(log, "back office: feed batch failures", interval=60.0)

    async def step(self, block_ms: int | None) -> int:
        """One batch read, written and acknowledged; how many entries it had (0: none came)."""
        return len(await self._step(block_ms))

    async def _step(self, block_ms: int | None) -> list[FedEntry]:
        batch = await self.reader.read(block_ms)
        if not batch:
            return batch
        started = time.monotonic()
        try:
            written = await ingest(self.engine, batch, self.zones)
        except BaseException:
            self.reader.reread_pending()
            raise
        self.sql_up = True
        metrics.BACKOFFICE_UP.set(1)
        await self.reader.ack(batch)
        metrics.BACKOFFICE_BATCH.observe(time.monotonic() - started)
        metrics.BACKOFFICE_INGESTED.inc(written)
        self.ingested += written
        return batch

    async def drain(self) -> int:
        """Ingest what the feed holds now and return (`backoffice sync --once`): entries added
        after the start are left for the next run, so a steady load cannot keep it going.
        Raises on a failure, leaving the rest pending for the next run."""
        ends = await self.reader.newest()  # stream -> id of its newest entry, now
        total = 0
        while ends and (batch := await self._step(None)):
            total += len(batch)
            for entry in batch:
                if entry.stream in ends and _id(entry.id) >= _id(ends[entry.stream]):
                    del ends[entry.stream]
        await self.measure_lag()
        return total

    async def run(self, stopping: Callable[[], bool],
                  sleep: Callable[[float], Awaitable[object]]) -> None:
        """Until `stopping()`: batches, with back-off on failures. `sleep(seconds)` waits (and
        returns early when the consumer is told to stop)."""
        while not stopping():
            try:
                n = await self.step(self.block_ms)
            except Exception as e:  # SQL or Redis down, or a batch SQL refuses: all retried
                if stopping():
                    return
                cause = "redis" if isinstance(e, RedisError | StoreError) else "sql"
                self._failed(cause, f"{type(e).__name__}: {_reason(e)}")
            else:
                self.backoff.succeeded()
                if n < self.reader.count:  # caught up: a moment to measure the lag
                    await self._measure_quietly()
                    if n and self.linger:
                        await sleep(self.linger)
                continue
            await self._measure_quietly()
            await sleep(self.backoff.failed())

    def _failed(self, cause: str, why: str) -> None:
        metrics.BACKOFFICE_FAILURES.labels(cause).inc()
        if cause == "sql":
            self.sql_up = False
            metrics.BACKOFFICE_UP.set(0)
        self._failures.note("back office: feed batch not written (%s); retrying, the feed keeps "
                            "the entries", why)

    async def measure_lag(self) -> Lag:
        self.lag = await self.reader.lag()
        metrics.BACKOFFICE_LAG_ENTRIES.set(self.lag.entries)
        metrics.BACKOFFICE_LAG_SECONDS.set(self.lag.seconds)
        return self.lag

    async def _measure_quietly(self) -> None:
        try:
            await self.measure_lag()
        except Exception as e:  # Redis down: the lag is unknown, the gauges keep their value
            log.debug("back office: lag not measured: %s", e)


def _id(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)

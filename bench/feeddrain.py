"""Drain the journal feed of a Redis into a fresh back-office database with the consumer, as
`tillgate serve` does, and measure it: bench_backoffice.py's `ingest` runs it as a child per
drain, its `gateway` this checkout's or (`--against`) another commit's copy. So nothing of the
project is imported before `drain_into` runs: the child's PYTHONPATH decides the tree measured.

    python bench/feeddrain.py REDIS_URL SQL_URL   # prints: entries seconds cpu_seconds
"""

from __future__ import annotations

import asyncio
import sys
import time


async def drain_into(redis_url: str, sql_url: str) -> tuple[int, float, float]:
    """Drain the feed into a fresh database: entries, seconds, this process's CPU seconds."""
    from sqlalchemy.engine import make_url

    from gateway.backoffice.consumer import FeedConsumer
    from gateway.backoffice.db import create_engine
    from gateway.backoffice.feed import FeedReader
    from gateway.backoffice.migrate import upgrade
    from gateway.ledger.store import Store

    url = make_url(sql_url)
    url = url.set(drivername={"sqlite": "sqlite+aiosqlite",
                              "postgresql": "postgresql+asyncpg"}[url.get_backend_name()])
    engine = create_engine(url)
    await upgrade(engine)
    store = await Store.connect(redis_url)
    try:
        reader = FeedReader(store, "bench")
        await reader.ensure_group()
        consumer = FeedConsumer(reader, engine)
        started, cpu = time.perf_counter(), time.process_time()
        n = await consumer.drain()
        return n, time.perf_counter() - started, time.process_time() - cpu
    finally:
        await store.close()
        await engine.dispose()


if __name__ == "__main__":
    print(*asyncio.run(drain_into(sys.argv[1], sys.argv[2])))

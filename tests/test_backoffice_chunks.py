"""Multi-row statements in a few fixed row counts (gateway/backoffice/chunks.py).

The 30-minute soak found the gateway's RSS growing as the feed's batches came in new sizes:
one INSERT statement per row count, each kept (its text cached, the driver's prepared form
too: sqlite3 keeps 128 a connection, about 0.5 MB each at 1,000 rows). Ingesting batches of
many sizes into a real SQLite or PostgreSQL back office must build a few statements, not one
per size.
"""

from __future__ import annotations

import random

import msgpack
import pytest_twisted
from sqlalchemy import func, select
from test_backoffice_schema import config_for

from gateway.backoffice import schema, summaries
from gateway.backoffice.chunks import chunk_sizes, chunked
from gateway.backoffice.db import create_engine, database_url
from gateway.backoffice.feed import FedEntry
from gateway.backoffice.ingest import CHUNK, ingest, insert_entries
from gateway.backoffice.migrate import upgrade
from gateway.reactor import deferred_from_coro

SIZES = {CHUNK, *(1 << n for n in range(CHUNK.bit_length()))}  # 1000, 512, 256, ..., 1


def test_any_count_goes_in_a_few_fixed_sizes_in_order():
    for count in range(0, 2 * CHUNK + 3):
        sizes = list(chunk_sizes(count, CHUNK))
        assert sum(sizes) == count and set(sizes) <= SIZES, count
        assert sizes == sorted(sizes, reverse=True), count
        assert len(sizes) <= count // CHUNK + CHUNK.bit_length(), count
    rows = list(range(1234))
    assert [x for chunk in chunked(rows, CHUNK) for x in chunk] == rows


def _entry(card: int, n: int) -> FedEntry:
    e = {"ch": f"card{card:05d}", "n": n, "op": "reload", "card": f"6039*{card:05d}",
         "dv": 100, "dp": 0, "bal": 100 * n, "pts": 0, "term": "TILL0001",
         "merch": "STORE0000000001", "key": f"k{card}-{n}", "t": 1_796_000_000 + n}
    return FedEntry("feed", f"{card}-{n}", {b"e": msgpack.packb(e), b"j": f"{n}-0".encode(),
                                             b"p": b"gift"})


@pytest_twisted.ensureDeferred
async def test_batches_of_many_sizes_build_a_few_statements(backoffice_url, tmp_path):
    async def scenario():
        engine = create_engine(database_url(config_for(backoffice_url, tmp_path)))
        try:
            await upgrade(engine)
            insert_entries.cache_clear()
            summaries._stretches_insert.cache_clear()
            counts = random.Random(20).sample(range(1, 2 * CHUNK), 24)
            for card, count in enumerate(counts):  # each card's entries: one batch
                assert await ingest(engine, [_entry(card, n) for n in range(1, count + 1)]) \
                    == count
            async with engine.connect() as conn:
                total = (await conn.execute(select(func.count()).select_from(
                    schema.journal_entries))).scalar()
            assert total == sum(counts)  # every entry written, once
            # One statement per row count used: 24 batch sizes, a few counts (were 24 and more)
            assert insert_entries.cache_info().currsize <= len(SIZES)
            assert summaries._stretches_insert.cache_info().currsize <= len(SIZES)
        finally:
            await engine.dispose()

    await deferred_from_coro(scenario())

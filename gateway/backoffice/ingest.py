"""Writing feed entries into SQL: journal_entries and cards (gateway/backoffice/schema.py).

One batch is one transaction. Entries are inserted with ON CONFLICT DO NOTHING on their key
(card id, entry id), so a batch read again after a crash between the commit and the feed's
acknowledgement inserts nothing twice; RETURNING names the entries actually inserted, and only
those are summed into the per-day summaries (summaries.py), in the same transaction. A card's
row takes the balance and points of its entry with the highest `seq`, and only from an entry
newer than the one it holds (the upsert's WHERE), so replaying an older entry never turns a
card back.

The statements are SQL text run with the driver's executemany (sqlite3's, asyncpg's prepared
one), not Core constructs: SQLAlchemy's per-row parameter processing was a third of the
consumer's CPU, and the consumer shares its process with the till path. SQLite and PostgreSQL
spell ON CONFLICT alike; only the placeholders differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import msgpack
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.backoffice import summaries
from gateway.backoffice.chunks import chunked
from gateway.backoffice.feed import FedEntry
from gateway.backoffice.schema import cards, journal_entries

ENTRY_COLUMNS = ("card_id", "entry_id", "seq", "op", "card_mask", "program", "dv", "dp", "bal",
                 "pts", "terminal", "merchant", "request_key", "t", "undo", "opid", "reward",
                 "tier", "tier_from")
CARD_COLUMNS = ("card_id", "card_mask", "program", "balance", "points", "seq", "first_t",
                "last_t")
CARD_UPDATED = ("card_mask", "program", "balance", "points", "seq", "last_t")
# The column's width: an operator's `cli:<user>` has no bound of its own, and a row the database
# refuses would stop the consumer on that batch for good.
OPID_CHARS = 64
assert journal_entries.c.opid.type.length == OPID_CHARS  # type: ignore[attr-defined]
assert set(ENTRY_COLUMNS) == set(journal_entries.c.keys()), "schema.py changed: ingest too"
assert set(CARD_COLUMNS) == set(cards.c.keys()), "schema.py changed: ingest too"
SUMMARISED_AT = tuple(ENTRY_COLUMNS.index(name) for name in summaries.SUMMARISED)
CHUNK = 1000  # entries per INSERT (19 values each: under SQLite's 32,766 and asyncpg's 32,767)


def _placeholders(dialect: str, count: int) -> str:
    if dialect == "postgresql":  # asyncpg's own
        return ", ".join(f"${i}" for i in range(1, count + 1))
    return ", ".join("?" * count)


@cache
def insert_entries(dialect: str, rows: int) -> str:
    """The insert of `rows` entries in one statement, answering the keys of those inserted."""
    one = f"({_placeholders(dialect, len(ENTRY_COLUMNS))})"
    if dialect == "postgresql":
        numbers = iter(range(1, rows * len(ENTRY_COLUMNS) + 1))
        values = ", ".join("(" + ", ".join(f"${next(numbers)}" for _ in ENTRY_COLUMNS) + ")"
                           for _ in range(rows))
    else:
        values = ", ".join([one] * rows)
    return (f"INSERT INTO {journal_entries.name} ({', '.join(ENTRY_COLUMNS)}) VALUES {values} "
            "ON CONFLICT (card_id, entry_id) DO NOTHING RETURNING card_id, entry_id")


@cache
def upsert_cards(dialect: str) -> str:
    """The cards' upsert, for `dialect` (sqlite or postgresql)."""
    updated = ", ".join(f"{c} = excluded.{c}" for c in CARD_UPDATED)
    upsert = (f"INSERT INTO {cards.name} ({', '.join(CARD_COLUMNS)}) VALUES "
              f"({_placeholders(dialect, len(CARD_COLUMNS))}) "
              f"ON CONFLICT (card_id) DO UPDATE SET {updated} "
              f"WHERE {cards.name}.seq < excluded.seq")
    return upsert


def entry_row(fields: dict[bytes, bytes]) -> tuple[Any, ...]:
    """A journal_entries row (ENTRY_COLUMNS) from a feed entry's fields (e, j, p:
    gateway/ledger/feed.py)."""
    e = msgpack.unpackb(fields[b"e"])
    undo = e.get("undo")
    return (e["ch"], fields[b"j"].decode(), int(e.get("n", 0)), e["op"], e.get("card", ""),
            fields.get(b"p", b"").decode() or None, int(e["dv"]), int(e["dp"]), int(e["bal"]),
            int(e["pts"]), e.get("term", ""), e.get("merch", ""), e.get("key", ""),
            int(e.get("t", 0)), undo.decode() if isinstance(undo, bytes) else undo,
            (e.get("opid") or "")[:OPID_CHARS] or None, e.get("rw") or None,
            e.get("tier") or None, e.get("tier_from") or None)


def _newest_per_card(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    newest: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        held = newest.get(row[0])
        if held is None or row[2] > held[2]:
            newest[row[0]] = row
    # card_id, card_mask, program, balance, points, seq, first_t, last_t
    return [(r[0], r[4], r[5], r[8], r[9], r[2], r[13], r[13]) for r in newest.values()]


async def ingest(engine: AsyncEngine, batch: list[FedEntry],
                 zones: Mapping[str, str] | None = None) -> int:
    """Write a batch in one transaction; the number of its entries (trimmed ones have none).
    `zones`: program id -> configured time zone, the days of a program's first summaries."""
    rows = [entry_row(entry.fields) for entry in batch if entry.fields is not None]
    if not rows:
        return 0
    dialect = engine.dialect.name
    async with engine.begin() as conn:
        inserted: set[tuple[Any, ...]] = set()
        for chunk in chunked(rows, CHUNK):  # a few row counts: few statements (chunks.py)
            answer = await conn.exec_driver_sql(insert_entries(dialect, len(chunk)),
                                                tuple(v for row in chunk for v in row))
            inserted.update(tuple(r) for r in answer.all())
        await conn.exec_driver_sql(upsert_cards(dialect), _newest_per_card(rows))
        new = [tuple(row[i] for i in SUMMARISED_AT) for row in rows
               if (row[0], row[1]) in inserted]
        await conn.run_sync(summaries.add, new, zones or {})
    return len(rows)

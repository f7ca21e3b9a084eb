"""Writing feed entries into SQL: journal_entries and cards (gateway/backoffice/schema.py).

One batch is one transaction. Entries are inserted with ON CONFLICT DO NOTHING on their key
(card id, entry id), so a batch read again after a crash between the commit and the feed's
acknowledgement inserts nothing twice. A card's row takes the balance and points of its entry
with the highest `seq`, and only from an entry newer than the one it holds (the upsert's WHERE),
so replaying an older entry never turns a card back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.backoffice.feed import FedEntry
from gateway.backoffice.schema import cards, journal_entries

# Both dialects spell ON CONFLICT alike (SQLAlchemy gives each its own Insert).
DIALECT_INSERT: dict[str, Callable[..., Any]] = {
    "sqlite": sqlite.insert, "postgresql": postgresql.insert}


def entry_row(fields: dict[bytes, bytes]) -> dict[str, Any]:
    """A journal_entries row from a feed entry's fields (e, j, p: gateway/ledger/feed.py)."""
    e = msgpack.unpackb(fields[b"e"])
    undo = e.get("undo")
    return {
        "card_id": e["ch"], "entry_id": fields[b"j"].decode(), "seq": int(e.get("n", 0)),
        "op": e["op"], "card_mask": e.get("card", ""),
        "program": fields.get(b"p", b"").decode() or None,
        "dv": int(e["dv"]), "dp": int(e["dp"]), "bal": int(e["bal"]), "pts": int(e["pts"]),
        "terminal": e.get("term", ""), "merchant": e.get("merch", ""),
        "request_key": e.get("key", ""), "t": int(e.get("t", 0)),
        "undo": undo.decode() if isinstance(undo, bytes) else undo,
    }


def _newest_per_card(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    newest: dict[str, dict[str, Any]] = {}
    for row in rows:
        held = newest.get(row["card_id"])
        if held is None or row["seq"] > held["seq"]:
            newest[row["card_id"]] = row
    return [{"card_id": r["card_id"], "card_mask": r["card_mask"], "program": r["program"],
             "balance": r["bal"], "points": r["pts"], "seq": r["seq"], "first_t": r["t"],
             "last_t": r["t"]} for r in newest.values()]


async def ingest(engine: AsyncEngine, batch: list[FedEntry]) -> int:
    """Write a batch in one transaction; the number of its entries (trimmed ones have none)."""
    rows = [entry_row(entry.fields) for entry in batch if entry.fields is not None]
    if not rows:
        return 0
    insert = DIALECT_INSERT[engine.dialect.name]
    entries = insert(journal_entries).on_conflict_do_nothing(
        index_elements=[journal_entries.c.card_id, journal_entries.c.entry_id])
    upsert = insert(cards)
    upsert = upsert.on_conflict_do_update(
        index_elements=[cards.c.card_id],
        set_={"card_mask": upsert.excluded.card_mask, "program": upsert.excluded.program,
              "balance": upsert.excluded.balance, "points": upsert.excluded.points,
              "seq": upsert.excluded.seq, "last_t": upsert.excluded.last_t},
        where=cards.c.seq < upsert.excluded.seq)
    async with engine.begin() as conn:
        await conn.execute(entries, rows)
        await conn.execute(upsert, _newest_per_card(rows))
    return len(rows)

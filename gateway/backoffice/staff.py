"""A staff member's recent interactions, from the journal in SQL (journal_entries.opid, fed from
the ledger's entries): the cards (masked) they served and the entries they made in the last N
days. `tillgate staff recent` and `GET /v1/staff/<opid>/recent` answer with `recent`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.backoffice.schema import journal_entries as je

MAX_DAYS = 366
MAX_ENTRIES = 1000


def _when(t: int) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def recent(engine: AsyncEngine, opid: str, days: int, now: float) -> dict[str, Any]:
    """The entries `opid` made since `days` days before `now`, newest first (at most
    MAX_ENTRIES), and the cards they touched with a count and the last time each."""
    since = int(now) - days * 86400
    query = (select(je.c.card_id, je.c.card_mask, je.c.program, je.c.op, je.c.dv, je.c.dp,
                    je.c.terminal, je.c.merchant, je.c.reward, je.c.t)
             .where(je.c.opid == opid, je.c.t >= since)
             .order_by(je.c.t.desc(), je.c.entry_id.desc()).limit(MAX_ENTRIES))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    found: list[dict[str, Any]] = []
    cards: dict[str, dict[str, Any]] = {}
    for row in rows:
        r = row._mapping  # (a Row's own `.t` is the row as a tuple, not the column)
        found.append({"time": _when(r["t"]), "card": r["card_mask"], "program": r["program"],
                      "op": r["op"], "dv": r["dv"], "dp": r["dp"], "terminal": r["terminal"],
                      "merchant": r["merchant"], "reward": r["reward"]})
        # by the card's key id: two cards may share a mask (first 6, last 4)
        # `ch`, the key id (a hash of the number), lets the portal reopen the card
        card = cards.setdefault(r["card_id"], {"card": r["card_mask"], "ch": r["card_id"],
                                              "program": r["program"], "entries": 0,
                                              "last": _when(r["t"])})
        card["entries"] += 1
    return {"operator": opid, "since": _when(since), "days": days,
            "cards": list(cards.values()), "entries": found}

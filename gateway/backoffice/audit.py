"""The back office's half of `tillgate audit`: SQL's journal_entries against each card's journal
in Redis (gateway/ledger/audit.py hands over the cards a page at a time).

For every card, each journal entry must be in SQL with the same figures, SQL must hold no entry
the journal lacks, and SQL's sums of dv and dp and its last entry's balance and points must equal
the journal's. An entry SQL lacks because the consumer is behind is lag, not a difference: the
feed still holds it. To tell the two apart without a race, the audit reads in this order:

1. the Redis server's clock, the *horizon*;
2. the feed (every entry not yet acknowledged: gateway/backoffice/feed.py trims the rest);
3. each card's journal, then SQL's rows of those cards.

A journal entry older than the horizon was written before the feed was read, so it was then
either in the feed (lag, if SQL still lacks it) or trimmed, hence acknowledged, hence committed
before SQL is read: missing from SQL, it is a difference. Entries from the horizon on are newer
than the audit and left for the next one (on both sides).

A trimmed journal (gateway/ledger/trim.py) starts with a checkpoint that stands for the entries
folded into it, which SQL held when they were folded: SQL's entries up to the checkpoint's seq
must be as many as it counts and add up to its balance and points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.backoffice.schema import journal_entries
from gateway.ledger.audit import AuditReport, CardJournal
from gateway.ledger.journal import Entry
from gateway.ledger.store import Store

FEED_PAGE = 1000
SQL_CARDS_PER_QUERY = 500


def _ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


@dataclass(slots=True)
class BackofficeAudit:
    store: Store
    engine: AsyncEngine
    report: AuditReport
    horizon_ms: int = 0
    in_feed: set[tuple[str, str]] = field(default_factory=set)  # (card id, journal entry id)
    compared: int = 0  # journal entries found in SQL with the same figures
    lagging: int = 0  # journal entries not in SQL yet, still in the feed
    newer: int = 0  # journal entries written after the audit began (not compared)

    async def begin(self) -> None:
        """Steps 1 and 2: the horizon, then what the feed holds."""
        seconds, micros = await self.store.command("TIME")
        self.horizon_ms = int(seconds) * 1000 + int(micros) // 1000
        for stream in await self.store.feed_streams():
            start = "-"
            while True:
                page: Any = await self.store.command("XRANGE", stream, start, "+", "COUNT",
                                                     FEED_PAGE)
                for _id, fields in page:
                    fields = _fields(fields)
                    e = msgpack.unpackb(fields[b"e"])
                    self.in_feed.add((e["ch"], fields[b"j"].decode()))
                if len(page) < FEED_PAGE:
                    break
                start = "(" + page[-1][0].decode()

    async def check_page(self, page: list[CardJournal]) -> None:
        """Step 3 for a page of cards (their journals already read)."""
        for at in range(0, len(page), SQL_CARDS_PER_QUERY):
            cards = page[at:at + SQL_CARDS_PER_QUERY]
            rows = await self._sql_rows([c.cid for c in cards])
            for card in cards:
                self._check_card(card, rows.get(card.cid, {}))

    async def _sql_rows(self, cids: list[str]) -> dict[str, dict[str, tuple[int, ...]]]:
        t = journal_entries.c
        found: dict[str, dict[str, tuple[int, ...]]] = {}
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(t.card_id, t.entry_id, t.seq, t.dv, t.dp, t.bal, t.pts)
                .where(t.card_id.in_(cids)))
            for cid, entry_id, seq, dv, dp, bal, pts in result:
                found.setdefault(cid, {})[entry_id] = (seq, dv, dp, bal, pts)
        return found

    def _check_card(self, card: CardJournal, sql: dict[str, tuple[int, ...]]) -> None:
        out = self.report.differences
        held = card.entries
        if held and held[0].is_checkpoint:  # trimmed: SQL's older entries against it
            sql = self._check_checkpoint(card, held[0], sql)
            held = held[1:]
        journal = [e for e in held if _ms(e.id) < self.horizon_ms]
        self.newer += len(held) - len(journal)
        sql = {i: row for i, row in sql.items() if _ms(i) < self.horizon_ms}
        expected: list[Entry] = []
        for e in journal:
            row = sql.get(e.id)
            if row is None:
                if (card.cid, e.id) in self.in_feed:
                    self.lagging += 1
                else:
                    out.append(f"back office: {card.mask}: entry {e.id} ({e.op}) is in the "
                               "journal, not in SQL, and no longer in the feed")
                continue
            expected.append(e)
            if row != (e.n, e.dv, e.dp, e.bal, e.pts):
                out.append(f"back office: {card.mask}: entry {e.id} ({e.op}) is seq {e.n} dv "
                           f"{e.dv} dp {e.dp} balance {e.bal} points {e.pts} in the journal, "
                           f"{' '.join(map(str, row))} in SQL")
            else:
                self.compared += 1
        known = {e.id for e in journal}
        for entry_id in sorted(set(sql) - known):
            out.append(f"back office: {card.mask}: entry {entry_id} is in SQL, not in the "
                       "journal")
        sums_sql = (sum(r[1] for r in sql.values()), sum(r[2] for r in sql.values()))
        sums_ledger = (sum(e.dv for e in expected), sum(e.dp for e in expected))
        if sql and sums_sql != sums_ledger:
            out.append(f"back office: {card.mask}: SQL sums to {sums_sql[0]} / {sums_sql[1]}, "
                       f"the journal's same entries to {sums_ledger[0]} / {sums_ledger[1]}")
        if sql and len(expected) == len(held):  # caught up: SQL's figures are the card's
            last = max(sql.values())
            if (last[3], last[4]) != (card.bal, card.pts):
                out.append(f"back office: {card.mask}: SQL's last entry says balance {last[3]} "
                           f"points {last[4]}, the ledger {card.bal} / {card.pts}")

    def _check_checkpoint(self, card: CardJournal, checkpoint: Entry,
                          sql: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
        """SQL's entries up to the checkpoint (seq up to its n) are those it was folded from:
        as many as it counts, summing to its balance and points, the last one its figures.
        Returns SQL's other entries, compared with the journal's as before."""
        folded = {i: row for i, row in sql.items() if row[0] <= checkpoint.n}
        rest = {i: row for i, row in sql.items() if row[0] > checkpoint.n}
        sums = (sum(r[1] for r in folded.values()), sum(r[2] for r in folded.values()))
        last = max(folded.values(), default=None)
        if (len(folded) != checkpoint.count or sums != (checkpoint.bal, checkpoint.pts)
                or last is None or last != (checkpoint.n, last[1], last[2], checkpoint.bal,
                                            checkpoint.pts)):
            self.report.differences.append(
                f"back office: {card.mask}: checkpoint {checkpoint.id} stands for "
                f"{checkpoint.count} entries to seq {checkpoint.n} summing to balance "
                f"{checkpoint.bal} points {checkpoint.pts}; SQL has {len(folded)} to seq "
                f"{last[0] if last else 0} summing to {sums[0]} / {sums[1]}")
        else:
            self.compared += checkpoint.count
        return rest


def _fields(raw: Any) -> dict[bytes, bytes]:
    """XRANGE through the store's batcher gives a flat list; redis-py's callback a dict."""
    if isinstance(raw, dict):
        return raw
    return dict(zip(raw[::2], raw[1::2], strict=True))

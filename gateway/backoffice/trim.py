"""Journal trimming, the deciding side: a card's journal in Redis is folded into a checkpoint
(gateway/ledger/trim.py) only as far as SQL holds its entries.

For each card whose journal is longer than the policy's tail, the oldest entries old enough to
fold (gateway/ledger/trim.py `TrimPolicy`) are looked up in SQL's journal_entries, by card and
seq; the cut is the last of the longest run, from the oldest, of entries SQL holds with the same
seq, dv, dp, balance and points. An entry SQL lacks (the consumer is behind, or died before its
commit) or holds with other figures stops the run there: nothing after it is folded this time.
The feed's acknowledgement comes after the SQL commit (gateway/backoffice/consumer.py), so an
entry found in SQL is committed; if its acknowledgement is still to come, the feed holds it
too and ingesting it again writes nothing.

SQL is read before Redis is written, without a lock between: safe, because the entries up to a
cut never change once written (new ones go after them), and the fold itself is atomic in Redis,
recomputing the checkpoint from what the journal holds at that moment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.backoffice.schema import journal_entries
from gateway.ledger.journal import Entry
from gateway.ledger.store import Store
from gateway.ledger.trim import (
    JOURNAL_KEYS,
    SCAN_COUNT,
    TrimPolicy,
    fold,
    fold_heads,
    journal_cid,
)

SQL_CARDS_PER_QUERY = 200  # three parameters each: under SQLite's old limit of 999


@dataclass(slots=True)
class TrimReport:
    cards: int = 0  # journals looked at
    trimmed: int = 0  # journals folded by this run
    folded: int = 0  # entries folded into checkpoints by this run
    waiting: int = 0  # journals with old entries SQL does not hold yet (left for a next run)
    refused: list[str] = field(default_factory=list)  # journals the script would not fold


class JournalTrimmer:
    def __init__(self, store: Store, engine: AsyncEngine, policy: TrimPolicy,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.engine = engine
        self.policy = policy
        self.clock = clock

    async def run(self, report: TrimReport | None = None) -> TrimReport:
        """One pass over every card's journal."""
        report = report if report is not None else TrimReport()
        # a SCAN page at a time, on every primary of a Redis Cluster (Store.scan)
        async for keys in self.store.scan(JOURNAL_KEYS, SCAN_COUNT):
            await self.trim_keys([k.decode() for k in keys], report)
        return report

    async def trim_keys(self, keys: list[str], report: TrimReport) -> None:
        report.cards += len(keys)
        now = self.clock()
        heads = await fold_heads(self.store, keys, self.policy.keep_entries)
        old = {key: self.policy.foldable(head, now) for key, head in heads.items()}
        old = {key: head for key, head in old.items()
               if any(not e.is_checkpoint for e in head)}
        for at in range(0, len(old), SQL_CARDS_PER_QUERY):
            chunk = dict(list(old.items())[at:at + SQL_CARDS_PER_QUERY])
            in_sql = await self._sql_figures(chunk)
            cuts = {key: _cut(head, in_sql.get(journal_cid(key), {}))
                    for key, head in chunk.items()}
            for key, cut in cuts.items():
                if cut is None or cut.is_checkpoint or cut is not chunk[key][-1]:
                    report.waiting += 1  # an old entry SQL lacks: the rest waits for it
            folding = {key: cut for key, cut in cuts.items()
                       if cut is not None and not cut.is_checkpoint}
            # every fold of the chunk in flight at once: one pipeline (each is atomic alone)
            done = await asyncio.gather(*(fold(self.store, key, cut.id, self.policy.keep_entries)
                                          for key, cut in folding.items()))
            for key, outcome in zip(folding, done, strict=True):
                if outcome.entries:
                    report.trimmed += 1
                    report.folded += outcome.entries
                elif outcome.detail.startswith("fault:"):
                    report.refused.append(
                        f"{chunk[key][0].card or journal_cid(key)}: {outcome.detail}")

    async def _sql_figures(self, heads: dict[str, list[Entry]]
                           ) -> dict[str, dict[str, tuple[int, ...]]]:
        """SQL's (seq, dv, dp, bal, pts) of each card's entries in the seq range of its head."""
        t = journal_entries.c
        ranges = []
        for key, head in heads.items():
            seqs = [e.n for e in head if not e.is_checkpoint]
            ranges.append(and_(t.card_id == journal_cid(key), t.seq >= min(seqs),
                               t.seq <= max(seqs)))
        found: dict[str, dict[str, tuple[int, ...]]] = {}
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(t.card_id, t.entry_id, t.seq, t.dv, t.dp, t.bal, t.pts)
                .where(or_(*ranges)))
            for cid, entry_id, *figures in result:
                found.setdefault(cid, {})[entry_id] = tuple(figures)
        return found


def _cut(head: list[Entry], in_sql: dict[str, tuple[int, ...]]) -> Entry | None:
    """The last entry of the longest run of `head`, from its start, that SQL holds as the
    journal does (a checkpoint stands for entries SQL was checked for before)."""
    cut = None
    for e in head:
        if not e.is_checkpoint and in_sql.get(e.id) != (e.n, e.dv, e.dp, e.bal, e.pts):
            break
        cut = e
    return cut

"""Audit: recompute every card's balance and points from its journal and report differences.

Each card's state (`{c:<id>}:s`) must equal the sum of its journal deltas, and every entry's
`bal`/`pts` must equal the running sum up to it. A trimmed journal (gateway/ledger/trim.py)
starts with a `checkpoint` entry: the sums start from its `bal`/`pts` instead of zero, and a
checkpoint anywhere but first is a difference. Used by `tillgate audit` (exit 1 on any
difference). Cards are found with SCAN, on each primary of a Redis Cluster (`Store.shards`).

A page of cards at a time, with their journals, can also be handed to another check
(`check_page`): the back office's (gateway/backoffice/audit.py) compares SQL with them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from gateway.ledger.journal import Entry, entries
from gateway.ledger.store import Store


@dataclass(slots=True)
class AuditReport:
    cards: int = 0
    entries: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


@dataclass(frozen=True, slots=True)
class CardJournal:
    """One audited card: its key id, masked number, state figures and journal, oldest first."""

    cid: str
    mask: str
    bal: int
    pts: int
    entries: list[Entry]


async def audit(store: Store, report: AuditReport | None = None, *,
                check_page: Callable[[list[CardJournal]], Awaitable[None]] | None = None
                ) -> AuditReport:
    report = report if report is not None else AuditReport()
    async for keys in store.scan("{c:*}:s", 500):  # a Redis Cluster: on every primary
        page = [await _audit_card(store, key.decode(), report) for key in keys]
        if check_page is not None:
            await check_page(page)
    return report


async def _audit_card(store: Store, state_key: str, report: AuditReport) -> CardJournal:
    raw = await store.command("HMGET", state_key, "bal", "pts", "mask")
    bal, pts = int(raw[0] or 0), int(raw[1] or 0)
    mask = (raw[2] or b"?").decode()
    report.cards += 1
    sum_v = sum_p = 0
    journal = state_key[:-2] + ":j"
    found = []
    async for e in entries(store, journal):
        found.append(e)
        report.entries += 1
        if e.is_checkpoint:
            if len(found) > 1:
                report.differences.append(f"{mask}: entry {e.id} is a checkpoint after the "
                                          "first entry")
            sum_v, sum_p = e.bal, e.pts  # what the entries folded into it summed to
            continue
        sum_v += e.dv
        sum_p += e.dp
        if e.bal != sum_v or e.pts != sum_p:
            report.differences.append(
                f"{mask}: entry {e.id} ({e.op}) says balance {e.bal} points {e.pts}, "
                f"journal sums to {sum_v} / {sum_p}")
    if sum_v != bal or sum_p != pts:
        report.differences.append(
            f"{mask}: balance {bal} points {pts}, journal sums to {sum_v} / {sum_p}")
    return CardJournal(state_key[3:-3], mask, bal, pts, found)

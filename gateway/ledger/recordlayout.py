"""Which layout a ledger's request records are written in (docs/ledger.md "Request records"):
a mark in Redis that every gateway on it follows, as a message format version is followed by
every broker of a cluster that upgrades one machine at a time.

- `packed`: the stored response, its code and one msgpack field `u` with the rest (cheaper to
  write: 8 % of the server's instructions per earn, and fewer bytes per record).
- `fields`: each value a field of its own, the layout every version of the gateway reads.

A gateway of this version reads both, one before the packed layout reads only `fields`. So a
ledger that this version starts (no card in it yet) is marked `packed`; one that already holds
cards and has no mark was written by an earlier version, whose gateways may still be running:
it is marked `fields` until an operator, every gateway upgraded, runs
`tillgate ledger records packed`. `redis.packed_records = true | false` in the config overrides
the mark for one gateway (a test, a benchmark, a rollback).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol


class Ledger(Protocol):
    """What of a store (gateway/ledger/store.py, which reads the mark at connect) this needs."""

    def command(self, *args: Any) -> Awaitable[Any]: ...

    def scan(self, pattern: str, count: int = 1000) -> AsyncIterator[list[bytes]]: ...

LAYOUT_KEY = "tillgate:records-layout"
PACKED, FIELDS = "packed", "fields"
LAYOUTS = (PACKED, FIELDS)
CARD_STATES = "{c:*}:s"  # cards.state_key's pattern


async def ledger_layout(store: Ledger) -> str:
    """The ledger's mark, made here if it has none: `packed` for a ledger without cards, else
    `fields`. SET NX, so two gateways starting together on a new ledger agree."""
    mark = await store.command("GET", LAYOUT_KEY)
    if mark is None:
        layout = FIELDS if await _holds_cards(store) else PACKED
        await store.command("SET", LAYOUT_KEY, layout, "NX")
        mark = await store.command("GET", LAYOUT_KEY)
    layout = mark.decode() if isinstance(mark, bytes) else str(mark)
    # a mark this version does not know (a later one's layout) is never written in
    return layout if layout in LAYOUTS else FIELDS


async def set_layout(store: Ledger, layout: str) -> str:
    """Mark the ledger's layout (`tillgate ledger records`); returns the mark it had."""
    if layout not in LAYOUTS:
        raise ValueError(f"records layout must be one of {', '.join(LAYOUTS)}")
    before = await ledger_layout(store)
    await store.command("SET", LAYOUT_KEY, layout)
    return before


async def _holds_cards(store: Ledger) -> bool:
    # a ledger with cards finds one on the first page; only one without scans to its end
    async for _keys in store.scan(CARD_STATES):
        return True
    return False

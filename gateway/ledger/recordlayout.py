"""Which layout a ledger's request records are written in (docs/ledger.md "Request records"):
a mark in Redis that every gateway on it follows, as a message format version is followed by
every broker of a cluster that upgrades one machine at a time.

- `packed`: the stored response, its code and one msgpack field `u` with the rest (cheaper to
  write: 8 % of the server's instructions per earn).
- `fields`: each value a field of its own, the layout every version of the gateway reads.

A gateway of this version reads both, one before the packed layout reads only `fields`. So a
ledger that this version starts (no card in it yet) is marked `packed`; one that already holds
cards and has no mark was written by an earlier version, whose gateways may still be running:
it is marked `fields` until an operator, every gateway upgraded, runs
`tillgate ledger records packed`. `redis.packed_records = true | false` in the config overrides
the mark for one gateway (a test, a benchmark, a rollback).

A mark of `packed` is followed only where the server keeps a packed record compact: `u` is about
110 bytes, and a hash with a value longer than `hash-max-ziplist-value` (64 by default; 7.x
calls it hash-max-listpack-value) becomes a hash table, 504 bytes a record instead of 344 (35
days of them). The embedded redis-server is started with COMPACT_VALUE_BYTES; on another
server whose setting is below PACKED_NEEDS_BYTES, or that refuses CONFIG GET, the records are
written as fields and the gateway says so in its log each time it connects.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol

log = logging.getLogger(__name__)

LAYOUT_KEY = "tillgate:records-layout"
PACKED, FIELDS = "packed", "fields"
LAYOUTS = (PACKED, FIELDS)
CARD_STATES = "{c:*}:s"  # cards.state_key's pattern
PACKED_NEEDS_BYTES = 128  # the hash value length a packed record needs to stay compact
COMPACT_VALUE_BYTES = 256  # the embedded server's hash-max-ziplist-value: room to spare


class Ledger(Protocol):
    """What of a store (gateway/ledger/store.py, which reads the mark at connect) this needs."""

    def command(self, *args: Any) -> Awaitable[Any]: ...

    def scan(self, pattern: str, count: int = 1000) -> AsyncIterator[list[bytes]]: ...


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


async def writes_packed(store: Ledger) -> bool:
    """Whether a gateway on `store` with redis.packed_records "auto" writes packed records: the
    ledger is marked so and the server keeps such a record compact."""
    if await ledger_layout(store) != PACKED:
        return False
    limit = await compact_value_bytes(store)
    if limit is not None and limit >= PACKED_NEEDS_BYTES:
        return True
    log.info("request records written as fields, though the ledger is marked packed: this "
             "Redis keeps hash values compact up to %s bytes (hash-max-ziplist-value), a "
             "packed record needs %d (docs/ledger.md \"Request records\")",
             "an unknown number of" if limit is None else limit, PACKED_NEEDS_BYTES)
    return False


async def compact_value_bytes(store: Ledger) -> int | None:
    """The server's hash-max-ziplist-value, or None where CONFIG GET is refused (a managed
    Redis may rename or forbid it)."""
    try:
        reply = await store.command("CONFIG", "GET", "hash-max-ziplist-value")
    except Exception:  # an error reply, whatever its kind: unknown
        return None
    values = list(reply.values()) if isinstance(reply, dict) else list(reply)[1::2]
    try:
        return int(values[0])
    except (IndexError, TypeError, ValueError):
        return None

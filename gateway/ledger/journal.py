"""The journal: one append-only Redis stream per card (`{c:<id>}:j`), one msgpack entry per change.

Entry fields (written by `apply` in gateway/ledger/lua/_prelude.lua):
  op     activate | reload | redeem | refund | cashout | earn | add_points | return |
         redeem_points | transfer_out | transfer_in | transfer_back | void | reversal | rollback |
         expire (due points lots, dp < 0) | tier (a change of rank, zero-value, with `tier`) |
         convert (a combined card's points to money: dp < 0, dv > 0)
  card   the masked number (first 6 / last 4), ch: the card's key id (a hash of the number)
  dv dp  change of money (minor units) and of points, signed
  bal pts  balance and points after the change
  term merch key  terminal, merchant and request key of the change
  t      epoch seconds; n: the card's change counter (1, 2, ...)
  undo   for void, reversal, rollback and transfer_back: the stream id of the entry undone
  opid   the staff member or operator who made it (field 63 OP, TGL opid, admin token), if any
  rw     the reward a claim was for (also on the void / reversal / rollback that undid it)
  promo  the promotions applied to an earn or a load, ids joined by commas (bonus included)
  tier   for `tier`: the card's new tier; tier_from: the one it had
Nothing is ever rewritten: an undo is a new entry with the opposite deltas. The one exception is
trimming (gateway/ledger/trim.py), once the back office holds the entries: the oldest are folded
into one `checkpoint` entry, first in the stream and under the id of the last entry it stands
for, with dv = dp = 0, bal / pts / n / t of that entry, cnt = how many entries it stands for
(those of an earlier checkpoint included) and tier = the card's tier by then (if it had one).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgpack

from gateway.ledger.store import Store

PAGE = 500
CHECKPOINT = "checkpoint"  # the op of the entry trimming leaves first (gateway/ledger/trim.py)


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    op: str
    card: str
    dv: int
    dp: int
    bal: int
    pts: int
    terminal: str
    merchant: str
    key: str
    t: int
    n: int
    undo: str | None
    operator: str = ""
    reward: str = ""
    promotions: str = ""
    tier: str | None = None
    tier_from: str | None = None
    count: int = 0  # a checkpoint's: the entries it stands for

    @property
    def is_checkpoint(self) -> bool:
        return self.op == CHECKPOINT

    @classmethod
    def decode(cls, entry_id: bytes | str, packed: bytes) -> Entry:
        e: dict[str, Any] = msgpack.unpackb(packed)
        undo = e.get("undo")
        return cls(
            id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id, op=e["op"],
            card=e.get("card", ""), dv=int(e["dv"]), dp=int(e["dp"]), bal=int(e["bal"]),
            pts=int(e["pts"]), terminal=e.get("term", ""), merchant=e.get("merch", ""),
            key=e.get("key", ""), t=int(e.get("t", 0)), n=int(e.get("n", 0)),
            undo=undo.decode() if isinstance(undo, bytes) else undo,
            operator=e.get("opid", ""), reward=e.get("rw", ""),
            promotions=e.get("promo", ""), tier=e.get("tier"), tier_from=e.get("tier_from"),
            count=int(e.get("cnt", 0)),
        )


    def as_dict(self) -> dict[str, Any]:
        """For `cards history --json` and the admin API: the time as ISO 8601 UTC as well."""
        when = dt.datetime.fromtimestamp(self.t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"id": self.id, "time": when, "op": self.op, "dv": self.dv, "dp": self.dp,
                "bal": self.bal, "pts": self.pts, "terminal": self.terminal,
                "merchant": self.merchant, "key": self.key, "undo": self.undo,
                "operator": self.operator, "reward": self.reward,
                "promotions": self.promotions,
                **({"tier": self.tier, "tier_from": self.tier_from} if self.tier else {}),
                **({"count": self.count} if self.is_checkpoint else {})}


async def latest(store: Store, key: str, count: int) -> list[Entry]:
    """The last `count` entries of one card's journal, oldest first."""
    page = await store.command("XREVRANGE", key, "+", "-", "COUNT", count)
    return [Entry.decode(entry_id, fields[b"e"]) for entry_id, fields in reversed(page)]


async def newest_before(store: Store, key: str, before: str | None,
                        count: int) -> tuple[list[Entry], str | None]:
    """One page of a card's journal, newest first: up to `count` entries older than the entry
    id `before` (None: from the newest), and the id to ask the next page before (None: this
    page reached the first entry). One XREVRANGE of count + 1, whatever the journal's length."""
    start = "(" + before if before else "+"
    page = await store.command("XREVRANGE", key, start, "-", "COUNT", count + 1)
    found = [Entry.decode(entry_id, fields[b"e"]) for entry_id, fields in page[:count]]
    return found, (found[-1].id if len(page) > count else None)


async def entries(store: Store, key: str) -> AsyncIterator[Entry]:
    """Every entry of one card's journal stream, oldest first, read in pages."""
    start = "-"
    while True:
        page = await store.command("XRANGE", key, start, "+", "COUNT", PAGE)
        for entry_id, fields in page:
            yield Entry.decode(entry_id, fields[b"e"])
        if len(page) < PAGE:
            return
        last = page[-1][0].decode()
        start = "(" + last

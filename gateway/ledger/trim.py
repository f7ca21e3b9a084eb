"""Journal trimming, the Redis side: fold the oldest entries of a card's journal into one
`checkpoint` entry (gateway/ledger/lua/journal_trim.lua), so Redis holds a bounded tail of each
card's history while the back office's SQL keeps all of it.

What may be folded is decided by the caller (gateway/backoffice/trim.py, which asks SQL); here
are the parts that need Redis only: the cards whose journals are long enough to trim, the head
of a journal that could be folded, the policy's time rule, and the atomic call. docs/ledger.md,
"Journal trimming", has the rules and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config.model import Config
from gateway.ledger.journal import Entry
from gateway.ledger.params import record_ttl
from gateway.ledger.store import Store

SCAN_COUNT = 500
JOURNAL_KEYS = "{c:*}:j"  # the SCAN pattern of every card's journal
MAX_FOLD = 10_000  # entries of one journal read for one pass: a long one is folded over several


@dataclass(frozen=True, slots=True)
class TrimPolicy:
    """What stays in Redis: at least `keep_entries` entries after the checkpoint, and every
    entry younger than `keep_seconds` (never less than a request record's life, the time
    within which a void, reversal or rollback can still name an entry)."""

    keep_entries: int
    keep_seconds: int

    @classmethod
    def of(cls, config: Config) -> TrimPolicy:
        journal = config.journal
        return cls(journal.keep_entries, max(journal.keep_days * 86400, record_ttl(config)))

    def foldable(self, head: list[Entry], now: float) -> list[Entry]:
        """The oldest run of `head` (a journal's oldest entries, oldest first) old enough to
        fold: it stops at the first entry within `keep_seconds` of `now`."""
        edge = now - self.keep_seconds
        for i, entry in enumerate(head):
            if entry.t > edge:
                return head[:i]
        return head


@dataclass(frozen=True, slots=True)
class Folded:
    entries: int  # entries folded into the checkpoint by this call (0: nothing changed)
    detail: str  # the checkpoint's id, or why nothing changed


def journal_cid(key: str) -> str:
    """The card id of a journal key `{c:<id>}:j`."""
    return key[3:-3]


async def fold_heads(store: Store, keys: list[str], keep_entries: int
                     ) -> dict[str, list[Entry]]:
    """For each journal long enough to fold anything (more than a checkpoint and the tail),
    the entries that could be folded, oldest first; one pipeline for the lengths and one for
    the heads."""
    lengths = [await reply for reply in [store.command("XLEN", k) for k in keys]]
    long = [(k, min(int(n) - keep_entries, MAX_FOLD)) for k, n in zip(keys, lengths, strict=True)
            if int(n) - keep_entries > 1]
    pages = [store.command("XRANGE", k, "-", "+", "COUNT", count) for k, count in long]
    heads = {}
    for (key, _), reply in zip(long, pages, strict=True):
        heads[key] = [Entry.decode(entry_id, _fields(fields)[b"e"])
                      for entry_id, fields in await reply]
    return heads


async def fold(store: Store, key: str, upto: str, keep_entries: int) -> Folded:
    """Fold the entries of journal `key` up to and including `upto` into its checkpoint, if at
    least `keep_entries` stay after it. Idempotent: a second call finds the checkpoint."""
    folded, detail = await store.run("journal_trim", [key], [upto, str(keep_entries)])
    return Folded(int(folded), detail.decode() if isinstance(detail, bytes) else str(detail))


def _fields(raw: object) -> dict[bytes, bytes]:
    """XRANGE through the store's batcher gives a flat list; redis-py's callback a dict."""
    if isinstance(raw, dict):
        return raw
    assert isinstance(raw, list)
    return dict(zip(raw[::2], raw[1::2], strict=True))

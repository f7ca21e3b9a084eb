"""The journal feed: where the back office reads every card's journal entries from.

Every card script that journals (`apply` in gateway/ledger/lua/_prelude.lua) appends the same
entry to the card's journal stream and to a feed stream, in the same atomic call: one XADD more,
with fields

  e  the journal entry, the very msgpack bytes of the journal's (gateway/ledger/journal.py)
  j  the entry's id in the card's journal stream (the back office's key, with the card id `ch`)
  p  the card's program

The back office (gateway/backoffice/consumer.py) reads the feed with a consumer group, so the
ledger never scans cards and never waits for SQL. The feed's name is a function of the card id
(`feed_key`), passed to the scripts in their KEYS (KEYS[5]), so its layout is decided here only:

- One Redis (today): one stream, `FEED_STREAM`, for every card.
- Redis Cluster: a script may only touch keys of one hash slot, the card's. The feed is then one
  stream per slot, `cluster_feed_key(cid)`, named with a hash tag (`SLOT_TAGS`) that CRC16 maps to
  the card's slot; switching is a change of `feed_key` (and of `feed_streams`, the consumer's
  list), not of the scripts. docs/ledger.md, "The feed".
"""

from __future__ import annotations

import binascii
from functools import cache

FEED_STREAM = "{feed}:q"
SLOTS = 16384  # Redis Cluster's hash slots


def feed_key(cid: str) -> str:
    """The feed stream a card's scripts append to (one Redis: the same for every card)."""
    return FEED_STREAM


def feed_streams() -> list[str]:
    """Every feed stream, for the consumer to read (one Redis: one)."""
    return [FEED_STREAM]


# -- the Cluster form ---------------------------------------------------------------------------

def crc16(data: bytes) -> int:
    """CRC16-CCITT (XModem), the checksum Redis Cluster maps keys to slots with: binascii's, in
    C (0.6 us for a card key; the table-driven loop in Python took 25 us, per store call on a
    cluster)."""
    return binascii.crc_hqx(data, 0)


def key_slot(key: str) -> int:
    """The hash slot of a key, as Redis Cluster computes it: of the hash tag if it has one."""
    data = key.encode()
    start = data.find(b"{")
    if start >= 0:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1:end]
    return crc16(data) % SLOTS


@cache
def slot_tags() -> tuple[str, ...]:
    """For every slot, the first tag `feed:<n>` (n = 0, 1, ...) CRC16 maps to it: about 150,000
    tries to cover the 16,384 slots, computed once (under a second)."""
    tags: list[str | None] = [None] * SLOTS
    missing, n = SLOTS, 0
    while missing:
        tag = f"feed:{n}"
        slot = crc16(tag.encode()) % SLOTS
        if tags[slot] is None:
            tags[slot] = tag
            missing -= 1
        n += 1
    return tuple(t for t in tags if t is not None)


def card_slot_tag(cid: str) -> str:
    """The tag of the card's slot (its `{c:<id>}` keys'), for the per-slot keys beside them."""
    return slot_tags()[key_slot(f"{{c:{cid}}}")]


def cluster_feed_key(cid: str) -> str:
    """The Cluster form of `feed_key`: the feed of the card's own slot (`{c:<id>}` keys)."""
    return "{" + card_slot_tag(cid) + "}:q"


CLUSTER_FEED_PATTERN = "{feed:*}:q"  # a SCAN pattern matching every `cluster_feed_key`


def cluster_feed_streams() -> list[str]:
    """The Cluster form of `feed_streams`: one stream per slot (a consumer per primary reads
    those of its own slots)."""
    return ["{" + tag + "}:q" for tag in slot_tags()]

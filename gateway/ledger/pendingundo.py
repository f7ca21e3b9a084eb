"""Compensating reversals that outlive the gateway (durable acknowledgement, docs/ledger.md
"Pending compensations").

A request answered 96 for want of replicas after the primary applied it is undone by a
compensating reversal (gateway/ledger/compensate.py). What must be undone is written to Redis
before the 96 goes out, and deleted once the reversal is answered, so a gateway killed in
between leaves it for the next start (or worker 0's periodic pass) to finish:

  {feed}:undo          hash   one Redis: "<card id>:<request key>" -> PendingUndo (msgpack)
  {feed:<n>}:undo      hash   a Redis Cluster: the same, one per slot, beside the slot's feed

The hash is in the card's slot (the feed's hash tag, gateway/ledger/feed.py), so it is written on
the primary that ran the request's script: a failover that loses the mark loses the refused
writes with it (replication keeps order), and the two cannot part. It holds no card number: the
card's key id, its program and the number masked (for logs and alerts) are enough to reverse it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace

import msgpack

from gateway.ledger.replicaack import unwaited
from gateway.ledger.store import Store, StoreError, UnacknowledgedWrite
from protocols.model import Op, Request, mask_card

log = logging.getLogger(__name__)

UNDO_SUFFIX = "|undo"  # the compensating reversal's request key: the original's plus this
COMPENSATION = "compensation"  # Request.extras flag: the reversal of a request answered 96
PENDING_PATTERN = "{feed*}:undo"  # a SCAN pattern matching `pending_key` on one Redis or many


def pending_key(store: Store, cid: str) -> str:
    """The hash of pending compensations beside the card's feed stream, in the card's slot."""
    return store.feed_key(cid).removesuffix(":q") + ":undo"


@dataclass(frozen=True, slots=True)
class PendingUndo:
    """A request answered 96 whose writes are to be reversed."""

    cid: str  # the card's key id (gateway/ledger/cards.py card_id)
    program: str
    key: str  # the refused request's key
    op: str  # its operation (Op value)
    terminal: str
    merchant: str
    card: str  # the number masked: for logs and alerts only
    channel: str
    at: float  # when it was refused (epoch seconds)

    @classmethod
    def of(cls, req: Request, cid: str, program: str, now: float | None = None) -> PendingUndo:
        return cls(cid, program, req.key, req.op.value, req.terminal, req.merchant,
                   mask_card(req.card), req.channel, time.time() if now is None else now)

    @property
    def field(self) -> str:
        return f"{self.cid}:{self.key}"

    @property
    def reversal_key(self) -> str:
        return self.key + UNDO_SUFFIX

    def pack(self) -> bytes:
        return msgpack.packb(asdict(self))

    @classmethod
    def unpack(cls, data: bytes) -> PendingUndo:
        return cls(**msgpack.unpackb(data))

    def original(self) -> Request:
        """The refused request as far as its undo needs it. Its card is the masked number:
        the processor finds the card by `cid`."""
        return Request(op=Op(self.op), terminal=self.terminal, merchant=self.merchant,
                       key=self.key, card=self.card, channel=self.channel)

    def reversal(self) -> Request:
        """The reversal (HOST-SPEC 2.6, no field 4: the whole original), from the original's
        till, marked as a compensation (its original's retransmission gets 05)."""
        return replace(self.original(), op=Op.REVERSAL, key=self.reversal_key,
                       original_key=self.key, original_op=Op(self.op), advice=True,
                       extras={COMPENSATION: "1"})


async def save(store: Store, pending: PendingUndo) -> bool:
    """Write the mark on the primary, without waiting for replicas (which just refused a batch:
    a WAIT would hold the till's 96 back for nothing). False if the primary did not take it."""
    try:
        await unwaited(store.command("HSET", pending_key(store, pending.cid), pending.field,
                                     pending.pack()))
    except UnacknowledgedWrite:  # the primary ran it, which is what a gateway restart needs
        return True
    except StoreError as e:
        log.error("compensation of %s not written to Redis (%s): kept in memory only",
                  pending.card, e)
        return False
    return True


async def forget(store: Store, pending: PendingUndo) -> None:
    """Delete the mark of a compensation that was answered. A failure leaves it for the next
    pass, whose reversal then replays its recorded answer and deletes it."""
    try:
        await store.command("HDEL", pending_key(store, pending.cid), pending.field)
    except StoreError as e:
        log.warning("mark of the compensation of %s not deleted: %s", pending.card, e)


async def find(store: Store, older_than: float | None = None) -> list[PendingUndo]:
    """Every pending compensation in Redis (every primary's), or those refused before
    `older_than` (epoch seconds). A mark that cannot be read is logged and left."""
    found: list[PendingUndo] = []
    async for page in store.scan(PENDING_PATTERN):
        for key in page:
            marks = await store.command("HGETALL", key)
            for field, data in marks.items():
                try:
                    pending = PendingUndo.unpack(data)
                except (ValueError, TypeError, msgpack.UnpackException) as e:
                    log.error("unreadable pending compensation %r in %r: %s", field, key, e)
                    continue
                if older_than is None or pending.at < older_than:
                    found.append(pending)
    return found

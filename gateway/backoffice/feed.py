"""The reading side of the journal feed (gateway/ledger/feed.py writes it): a Redis consumer
group, `backoffice`, on every feed stream.

An entry is read (XREADGROUP), written to SQL, and only then acknowledged (XACK), so an entry
read but not acknowledged stays pending in the group: a consumer that starts again reads its own
pending entries first (id 0), and takes over those of a consumer that died (XAUTOCLAIM, once
they have been idle `claim_idle_ms`). The ingest is idempotent, so reading an entry twice writes
it once.

Acknowledging trims the stream to the group's oldest entry not yet acknowledged (XTRIM MINID,
exact), in the same script call (gateway/ledger/lua/feed_ack.lua): the feed holds what SQL has
not confirmed, and nothing else, so its length is the lag. The card scripts never trim it (a
MAXLEN there could drop what SQL never saw); a back office down for days makes the feed grow by
its entries (about 210 bytes each) until it is back, watched by `tillgate_backoffice_lag_*` and
the alert `backoffice_lag`.

On a Redis Cluster the feed is one stream per slot (gateway/ledger/feed.py): the reader reads
those that exist (`Store.feed_streams`, a SCAN of every primary), looks again for new ones every
`rescan_s` seconds, and reads each stream with a command of its own (one command may not name
keys of two slots), all at once, waiting `block_ms` itself when none had anything.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from gateway.ledger.store import Store, StoreError

GROUP = "backoffice"


@dataclass(frozen=True, slots=True)
class FedEntry:
    """One feed entry: its stream and id there, and the fields of gateway/ledger/feed.py."""

    stream: str
    id: str
    fields: dict[bytes, bytes] | None  # None: trimmed away since it was read (nothing to write)


@dataclass(frozen=True, slots=True)
class Lag:
    entries: int  # in the feed, not yet acknowledged
    seconds: float  # age of the oldest of them (0 when none)


class FeedReader:
    """The group's reads, acknowledgements and trims on the feed streams, for one consumer."""

    def __init__(self, store: Store, consumer: str, *, streams: list[str] | None = None,
                 count: int = 2000, claim_idle_ms: int = 60_000, rescan_s: float = 5.0):
        self.store = store
        self.consumer = consumer
        self._given = streams  # None: the store's feed streams, found in ensure_group
        self.streams = list(streams) if streams is not None else []
        self.count = count
        self.claim_idle_ms = claim_idle_ms
        self.rescan_s = rescan_s
        self._found_at: float | None = None  # when the store's streams were last looked for
        self._own_pending = True  # read this consumer's pending entries first (after a restart)

    async def ensure_group(self) -> None:
        """The group, created at the start of each stream (id 0): the back office gets every
        entry the feed holds, including those written before it first started."""
        if self._given is None:
            self.streams = await self.store.feed_streams()
            self._found_at = time.monotonic()
        await self._create_groups(self.streams)

    async def _rescan(self) -> None:
        """The store's streams the first time, then a cluster's new per-slot streams (a first
        card in a slot) every `rescan_s`; each with the group."""
        if self._given is not None or (self._found_at is not None and
                                       time.monotonic() - self._found_at < self.rescan_s):
            return
        self._found_at = time.monotonic()
        known = set(self.streams)
        new = [s for s in await self.store.feed_streams() if s not in known]
        if new:
            await self._create_groups(new)
            self.streams += new

    async def _create_groups(self, streams: list[str]) -> None:
        for stream in streams:
            try:
                await self.store.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except ResponseError as e:
                if "BUSYGROUP" not in str(e):
                    raise

    async def read(self, block_ms: int | None) -> list[FedEntry]:
        """The next batch: this consumer's pending entries while it has any, then stale ones of
        a dead consumer, then new ones (waiting up to `block_ms` for them; None: not at all).

        With `redis.acknowledge_after_replicas`, a batch is handed over only once it is on
        that many replicas: SQL must not keep an entry that a failover then loses (the tills
        were refused it, and its compensating reversal finds nothing to undo). On a cluster,
        each primary a batch's streams are on is asked about its own replicas. Until then the
        batch stays pending, read again at the next try (StoreError: the consumer backs off)."""
        batch = await self._read(block_ms)
        if batch and not await self.store.replicated({entry.stream for entry in batch}):
            self._own_pending = True
            raise StoreError("feed entries not yet on the replicas "
                             "redis.acknowledge_after_replicas wants")
        return batch

    async def _read(self, block_ms: int | None) -> list[FedEntry]:
        await self._rescan()
        if self._own_pending:
            batch = await self._read_group("0", None)
            if batch:
                return batch
            self._own_pending = False
        batch = await self._claim_stale()
        if batch:
            return batch
        return await self._read_group(">", block_ms)

    def reread_pending(self) -> None:
        """After a failed ingest: the entries read are pending; read them again first."""
        self._own_pending = True

    async def _read_group(self, start: str, block_ms: int | None) -> list[FedEntry]:
        if self.store.cross_slot or len(self.streams) <= 1:  # one command for all streams
            return _entries(await self.store.client.xreadgroup(
                GROUP, self.consumer, dict.fromkeys(self.streams, start), count=self.count,
                block=block_ms))
        replies = await asyncio.gather(*(  # a cluster: a command per stream (slot), at once
            self.store.client.xreadgroup(GROUP, self.consumer, {stream: start},
                                         count=self.count)
            for stream in self.streams))
        found = [entry for reply in replies for entry in _entries(reply)]
        if not found and block_ms:
            await asyncio.sleep(block_ms / 1000)
        return found

    async def _claim_stale(self) -> list[FedEntry]:
        out: list[FedEntry] = []
        for stream in self.streams:
            reply: Any = await self.store.client.xautoclaim(
                stream, GROUP, self.consumer, self.claim_idle_ms, "0-0", count=self.count)
            out += [FedEntry(stream, _text(entry_id), fields or None)
                    for entry_id, fields in reply[1] if entry_id]
        if out:
            self._own_pending = True  # claimed entries are ours now: read them as pending
        return out

    async def ack(self, batch: list[FedEntry]) -> int:
        """Acknowledge a batch SQL has committed and trim each stream to what is left, one call
        per stream (gateway/ledger/lua/feed_ack.lua); the entries left in the streams read."""
        by_stream: dict[str, list[str]] = {}
        for entry in batch:
            by_stream.setdefault(entry.stream, []).append(entry.id)
        left = 0
        for stream, ids in by_stream.items():
            left += int(await self.store.run("feed_ack", [stream], [GROUP, *ids]))
        return left

    async def newest(self) -> dict[str, str]:
        """Each non-empty stream's newest entry id, now."""
        await self._rescan()
        found = {}
        for stream in self.streams:
            last: Any = await self.store.client.xrevrange(stream, "+", "-", count=1)
            if last:
                found[stream] = _text(last[0][0])
        return found

    async def lag(self, now: float | None = None) -> Lag:
        """What the feed holds (all of it unacknowledged, the consumer trims the rest) and the
        age of its oldest entry: an entry id is its time of writing in milliseconds."""
        now = time.time() if now is None else now
        await self._rescan()
        entries, oldest = 0, None
        for stream in self.streams:
            entries += int(await self.store.client.xlen(stream))
            first: Any = await self.store.client.xrange(stream, "-", "+", count=1)
            if first:
                ms = int(_text(first[0][0]).split("-")[0])
                oldest = ms if oldest is None else min(oldest, ms)
        seconds = max(0.0, now - oldest / 1000) if oldest is not None else 0.0
        return Lag(entries, seconds)


def _entries(reply: Any) -> list[FedEntry]:
    """The entries of an XREADGROUP reply."""
    return [FedEntry(_text(stream), _text(entry_id), fields or None)
            for stream, entries in reply or [] for entry_id, fields in entries]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

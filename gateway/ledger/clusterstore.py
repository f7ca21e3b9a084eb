"""The store on a Redis Cluster: `redis.url = "redis+cluster://HOST:PORT[,HOST:PORT...]"`.

A `Store` (gateway/ledger/store.py) per primary does what it does on one Redis: each loop
turn's calls to that node go as one pipelined write on its own connection, replies matched in
order, NOSCRIPT answered by loading the script on that node and resending. This class only
routes: a call goes to the primary serving the hash slot of its first key (CRC16,
gateway/ledger/feed.py `key_slot`), read from CLUSTER SLOTS.

When the cluster changes under it (a resharding, a failover):

- MOVED <slot> <node>: the slot lives elsewhere now. The slot is pointed at that node at once,
  the call resent there, and the whole map read again (once at a time).
- ASK <slot> <node>: the slot is being migrated and this key is already on the target: the call
  is resent once to that node, preceded by ASKING in the same pipeline; the map stays.
- A call redirected more than `MAX_REDIRECTS` times fails (a cluster that does not settle).
- A primary that cannot be reached fails its calls (the tills get 96) and makes the map be read
  again: once the cluster has promoted its replica, calls go there.

Scripts must touch one slot: every key a script touches is in its KEYS and shares the first
key's hash tag (the card's `{c:<id>}`, the merchant's `{m:<id>}`), and a card's journal feed is
its slot's (`feed_key`). Where the claim and the card script are in two slots the processor
makes them two calls (`same_slot`). `client` is redis-py's RedisCluster, for the uses off the
hot path (streams, tokens, sessions); SCANs go to every primary through `shards()`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisError

from gateway.ledger import feed, loyalty
from gateway.ledger.replies import Reply
from gateway.ledger.store import Store, StoreError, _Call

log = logging.getLogger(__name__)

SCHEME = "redis+cluster://"
MAX_REDIRECTS = 5


def parse_cluster_url(url: str) -> list[tuple[str, int]]:
    """The seed nodes of a `redis+cluster://HOST:PORT[,HOST:PORT...]` URL; ValueError if bad."""
    if not url.startswith(SCHEME):
        raise ValueError(f"not a {SCHEME} URL")
    seeds = []
    for part in url[len(SCHEME):].rstrip("/").split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{part!r} is not HOST:PORT")
        seeds.append((host, int(port)))
    return seeds


class ClusterStore(Store):
    """Batched access to a Redis Cluster. Build it with `await ClusterStore.connect(url)`."""

    feed_key = staticmethod(feed.cluster_feed_key)
    index_key = staticmethod(loyalty.cluster_index_key)
    cross_slot = False

    def __init__(self, client: RedisCluster, url: str, timeout: float, pool_size: int,
                 acknowledge: tuple[int, int] = (0, 1000)):
        super().__init__(client, url, timeout)  # type: ignore[arg-type]  # its API, in a cluster
        self.pool_size = pool_size
        # redis.acknowledge_after_replicas and its time-out: each primary's store sends one
        # WAIT per batch to its own node (gateway/ledger/replicaack.py)
        self.acknowledge = acknowledge
        self.nodes: dict[str, Store] = {}  # "host:port" -> that primary's store
        self.slots: list[str] = []  # slot -> "host:port" of the primary serving it
        self._refreshing: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, url: str, pool_size: int = 64, timeout: float = 5.0,
                      acknowledge_after_replicas: int = 0,
                      acknowledge_timeout_ms: int = 1000) -> ClusterStore:
        try:
            seeds = parse_cluster_url(url)
        except ValueError as e:
            raise StoreError(f"bad redis url {url!r}: {e}") from None
        client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in seeds],
                              max_connections=pool_size, socket_timeout=timeout,
                              socket_connect_timeout=timeout)
        store = cls(client, url, timeout, pool_size,
                    (acknowledge_after_replicas, acknowledge_timeout_ms))
        try:
            async with asyncio.timeout(timeout):
                await client.initialize()
                await store._read_slots(seeds)
                await store.ping()  # each primary's clock (deadline_ms)
                await store.read_record_layout()
        except (TimeoutError, RedisError, OSError, StoreError) as e:
            await store.close()
            raise StoreError(f"redis cluster at {url} does not answer: "
                             f"{e or type(e).__name__}") from None
        return store

    # -- the slot map ----------------------------------------------------------------------

    def node(self, address: str) -> Store:
        """The store of the primary at "host:port" (made on first use: it connects lazily)."""
        store = self.nodes.get(address)
        if store is None:
            store = Store.open(f"redis://{address}/0", self.pool_size, self.timeout,
                               *self.acknowledge)
            store.on_redirect = self._redirected
            store.failure_listeners.append(self._node_failed)
            self.nodes[address] = store
        return store

    async def _read_slots(self, seeds: list[tuple[str, int]] | None = None) -> None:
        """Read CLUSTER SLOTS from the first node that answers (known primaries, then seeds)."""
        candidates = list(self.nodes) or [f"{h}:{p}" for h, p in seeds or []]
        last: Exception | None = None
        for address in candidates:
            try:
                reply = await self.node(address).command("CLUSTER", "SLOTS")
            except StoreError as e:
                last = e
                continue
            slots = [""] * feed.SLOTS
            for start, end, primary, *_replicas in reply:
                address = f"{primary[0].decode()}:{primary[1]}"
                self.node(address)
                slots[start:end + 1] = [address] * (end + 1 - start)
            if "" in slots:
                raise StoreError(f"redis cluster at {self.url}: slot {slots.index('')} "
                                 "is not served")
            self.slots = slots
            return
        raise StoreError(f"redis cluster at {self.url}: no node answers CLUSTER SLOTS: {last}")

    def _refresh(self) -> None:
        """Read the map again, in the background (one read at a time)."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresh_now())

    async def _refresh_now(self) -> None:
        try:
            await self._read_slots()
        except StoreError as e:  # the next MOVED tries again; calls were resent anyway
            log.warning("cluster slot map not refreshed: %s", e)

    def _redirected(self, call: _Call, answer: str) -> None:
        """A node answered MOVED or ASK: resend the call where it says."""
        kind, slot, address = answer.split()[:3]
        call.redirects += 1
        if call.redirects > MAX_REDIRECTS:
            call.set_exception(StoreError(f"redis cluster at {self.url}: {call.name} "
                                          f"redirected {MAX_REDIRECTS} times, last {answer}"))
            return
        target = self.node(address)
        if kind == "MOVED":
            self.slots[int(slot)] = address
            self._refresh()
        else:  # ASK: the slot is migrating; ASKING lets the target answer this one call
            target.command("ASKING")
        target._enqueue(call)

    def _node_failed(self, error: StoreError) -> None:
        """A primary did not answer: maybe failed over, and a dead node sends no MOVED, so the
        map is read again (from a node that answers)."""
        self._refresh()
        for listener in self.failure_listeners:
            listener(error)

    # -- the calls -------------------------------------------------------------------------

    def run(self, name: str, keys: list[str], argv: list[Any]) -> Reply:
        return self.nodes[self.slots[feed.key_slot(keys[0])]].run(name, keys, argv)

    def command(self, *args: Any) -> Reply:
        """A command on its first key's primary (one with no key: on any primary)."""
        if len(args) > 1:
            key = args[1]
            address = self.slots[feed.key_slot(key.decode() if isinstance(key, bytes)
                                               else str(key))]
        else:
            address = self.slots[0]
        return self.nodes[address].command(*args)

    def shards(self) -> list[Store]:
        return [self.nodes[address] for address in dict.fromkeys(self.slots)]

    async def feed_streams(self) -> list[str]:
        """The per-slot feed streams that exist (a slot's first journaled card makes its)."""
        return [key.decode() async for page in self.scan(feed.CLUSTER_FEED_PATTERN)
                for key in page]

    async def index_keys(self, program_id: str, what: str) -> list[str]:
        """The program's indexes that exist, one per slot that holds cards with one: found with
        SCAN on every primary (`loyalty.cluster_index_key` names them)."""
        pattern = loyalty.cluster_index_pattern(program_id, what)
        return [key.decode() async for page in self.scan(pattern) for key in page]

    def same_slot(self, key: str, other: str) -> bool:
        return feed.key_slot(key) == feed.key_slot(other)

    async def ping(self) -> bool:
        results = await asyncio.gather(*(s.ping() for s in self.shards()))
        # A call's deadline is made before its node is known: the primaries' clocks differ
        # by their NTP error, and the one furthest ahead is taken, so that no node refuses a
        # call as late while the gateway still waits for it (a node behind gives a late call
        # that much longer).
        self.clock_offset = max((s.clock_offset for s in self.shards()), default=0.0)
        return bool(results) and all(results)

    def short_of_replicas(self) -> list[str]:
        return [address for address in dict.fromkeys(self.slots)
                if self.nodes[address].unreplicated]

    async def replicated(self, keys: Iterable[str]) -> bool:
        """Each primary holding one of `keys` asked on its own (WAIT counts its replicas)."""
        primaries = {self.slots[feed.key_slot(key)] for key in keys}
        return all(await asyncio.gather(*(self.nodes[a].replicated(()) for a in primaries)))

    async def close(self) -> None:
        if self._refreshing is not None:
            await asyncio.gather(self._refreshing, return_exceptions=True)
        for store in self.nodes.values():
            await store.close()
        await self.client.aclose()

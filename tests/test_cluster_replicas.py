"""Durable acknowledgement on a Redis Cluster (issue 20, docs/scaling.md): `/healthz` asks each
primary whether a write reaches its replicas, and the back office's feed waits for the replicas
of the primary its entries came from. The session's local cluster (3 primaries, 3 replicas);
one primary's replica paused with SIGSTOP (it stays connected, acknowledging nothing), then
continued."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import pytest_twisted
import redis

from gateway.backoffice.feed import FeedReader
from gateway.embedded_cluster import EmbeddedCluster
from gateway.ledger import feed
from gateway.ledger.clusterstore import ClusterStore
from gateway.ledger.store import StoreError
from gateway.reactor import deferred_from_coro

# 1,000 ms: the setup's writes are confirmed on a loaded machine too
ACK = {"acknowledge_after_replicas": 1, "acknowledge_timeout_ms": 1000}
SLOT = 0  # the slot whose primary's replica is paused


@contextmanager
def paused_replicas(cluster: EmbeddedCluster, slot: int) -> Iterator[str]:
    """SIGSTOP every replica of the primary serving `slot` (yields its address); SIGCONT them
    after, and wait until a write reaches one again."""
    primary = cluster.node_of_slot(slot)
    info = primary.call("INFO", "replication")
    ports = {int(p) for p in re.findall(r"slave\d+:ip=[^,]+,port=(\d+)", info)}
    replicas = [n for n in cluster.nodes if n.port in ports and n.process is not None]
    assert replicas, f"{primary.address} has no replica"
    for node in replicas:
        node.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
    try:
        yield primary.address
    finally:
        for node in replicas:
            node.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
        deadline = time.monotonic() + 30
        with redis.Redis(port=primary.port) as client:
            while client.publish("probe", b"") is not None and client.wait(1, 500) < 1:
                assert time.monotonic() < deadline, "the replica did not catch up"


def _until(condition, timeout: float, what: str):
    async def wait():
        deadline = time.monotonic() + timeout
        while not (found := await condition()):
            assert time.monotonic() < deadline, f"no {what} within {timeout} s"
            await asyncio.sleep(0.1)
        return found
    return deferred_from_coro(wait())


def _health(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.loads(e.read())


@pytest_twisted.ensureDeferred
async def test_healthz_names_the_primary_whose_replica_does_not_acknowledge(
        tillgate_inprocess_factory, tillgate_cluster, tillgate_cluster_url):
    gw = (await tillgate_inprocess_factory(redis_url=tillgate_cluster_url,
                                           redis_settings=ACK)).gateway
    port = gw.http.port.getHost().port

    async def health() -> tuple[int, dict]:
        return await asyncio.to_thread(_health, port)

    code, body = await deferred_from_coro(health())
    assert (code, body["redis"], body["replicas"]) == (200, "up", "ok")
    with paused_replicas(tillgate_cluster, SLOT) as address:
        async def short() -> dict | None:
            code, body = await health()
            return body if code == 503 else None
        body = await _until(short, 20, "503 from /healthz")  # the next probe (5 s) sees it
        assert body["redis"] == "down"
        assert body["replicas"] == f"short on {address}"  # that primary, and only it

    async def healthy() -> bool:
        return (await health())[0] == 200
    await _until(healthy, 20, "200 from /healthz once the replica is back")


@pytest_twisted.ensureDeferred
async def test_the_feed_holds_a_primary_entries_until_its_replica_has_them(
        tillgate_cluster, tillgate_cluster_url):
    store = await deferred_from_coro(ClusterStore.connect(tillgate_cluster_url,
                                                          **ACK))
    # a stream in SLOT's primary, of this test only (the feed's streams are named alike)
    stream = "{" + feed.slot_tags()[SLOT] + "}:q:" + uuid.uuid4().hex[:8]
    reader = FeedReader(store, "test", streams=[stream])
    try:
        await deferred_from_coro(reader.ensure_group())
        primary = tillgate_cluster.node_of_slot(SLOT)
        with paused_replicas(tillgate_cluster, SLOT):
            with redis.Redis(port=primary.port) as client:
                client.xadd(stream, {"e": b"entry"})
            with pytest.raises(StoreError, match="not yet on the replicas"):
                await deferred_from_coro(reader.read(None))
        batch = await deferred_from_coro(reader.read(None))  # read again, pending: handed over
        assert [(e.stream, e.fields) for e in batch] == [(stream, {b"e": b"entry"})]
        await deferred_from_coro(reader.ack(batch))
    finally:
        await deferred_from_coro(store.client.delete(stream))
        await deferred_from_coro(store.close())

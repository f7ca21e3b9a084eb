"""Sentinel and durable acknowledgement (docs/scaling.md): the redis+sentinel URL, the store
following a failover, one WAIT per batch that writes, refusals when replicas lag, and the
compensating reversal of what a refused request did. Real processes: a primary, a replica and
a Sentinel per test (`tillgate_sentinel`), stopped (SIGSTOP) or killed (SIGKILL) for real."""

from __future__ import annotations

import asyncio
import signal
import tomllib

import pytest
import pytest_twisted
import redis
from test_ledger_support import Ledger, ledger_config

from gateway.config.model import parse_config
from gateway.config.redisurl import BadRedisURL, parse_sentinel_url
from gateway.config.sections import ConfigError
from gateway.embedded_redis import EmbeddedRedis, free_port
from gateway.embedded_sentinel import LocalSentinelSet
from gateway.ledger import cards
from gateway.ledger.rewardsweep import sweep_points_and_reservations
from gateway.ledger.store import Store, StoreError, UnacknowledgedWrite
from gateway.metrics.families import REGISTRY
from gateway.reactor import deferred_from_coro
from protocols.model import RC, Op


def _config(redis_table: str):
    with open("config/tillgate.toml", "rb") as f:
        data = tomllib.load(f)
    data["redis"] = tomllib.loads(redis_table)
    return parse_config(data, "test.toml")


def test_sentinel_url_and_acknowledgement_settings_are_read():
    config = _config('url = "redis+sentinel://10.0.0.1:26379,[::1]:26380/pay/2"\n'
                     "acknowledge_after_replicas = 1\nacknowledge_timeout_ms = 250")
    assert config.redis.acknowledge_after_replicas == 1
    assert config.redis.acknowledge_timeout_ms == 250
    target = parse_sentinel_url(config.redis.url)
    assert target.sentinels == (("10.0.0.1", 26379), ("::1", 26380))
    assert (target.primary, target.db) == ("pay", 2)
    default = _config("")
    assert default.redis.acknowledge_after_replicas == 0  # the default answers at once


@pytest.mark.parametrize("table, error", [
    ('url = "redis+sentinel://h:1"', "redis.url: needs /PRIMARY_NAME[/db]"),
    ('url = "redis+sentinel://h/pay"', "redis.url: Sentinel 'h' is not HOST:PORT"),
    ('url = "redis+sentinel://h:1/pay/x"', "redis.url: db 'x' is not a number"),
    ('url = "redis+sentinel://u:pw@h:1/pay"', "redis.url: a password or query string"),
    ("acknowledge_after_replicas = -1", "redis.acknowledge_after_replicas: must be"),
    ("acknowledge_after_replicas = 1", "redis.acknowledge_after_replicas: needs redis.url"),
    ("acknowledge_timeout_ms = 5000", "redis.acknowledge_timeout_ms: must be less than "
                                      "redis.timeout (5 s)"),
])
def test_bad_settings_are_named_with_their_path(table, error):
    with pytest.raises(ConfigError) as raised:
        _config(table)
    assert any(e.startswith(error) for e in raised.value.errors), raised.value.errors


def test_a_bad_sentinel_url_is_a_value_error_for_the_store():
    with pytest.raises(BadRedisURL):
        parse_sentinel_url("redis://h:1/0")


def _stats(node_url: str, command: str) -> int:
    """How often the server ran `command` (INFO commandstats)."""
    with redis.Redis.from_url(node_url) as client:
        stats = client.info("commandstats").get(f"cmdstat_{command}")
    return int(stats["calls"]) if stats else 0


def _redis_errors(kind: str) -> float:
    return REGISTRY.get_sample_value("tillgate_redis_errors_total", {"kind": kind}) or 0.0


async def _gather(*calls):
    return await asyncio.gather(*calls, return_exceptions=True)


async def _one(call):
    return await call


@pytest_twisted.ensureDeferred
async def test_one_wait_per_batch_that_writes_and_none_without(tillgate_sentinel):
    nodes: LocalSentinelSet = tillgate_sentinel
    primary = nodes.node_url(nodes.primary)
    store = await deferred_from_coro(Store.connect(nodes.url, acknowledge_after_replicas=1))
    try:
        await deferred_from_coro(_one(store.command("PING")))
        waits = _stats(primary, "wait")
        got = await deferred_from_coro(_gather(*(store.command("INCR", f"w{n}")
                                                 for n in range(40))))
        assert got == [1] * 40
        assert _stats(primary, "wait") == waits + 1  # forty writes, one WAIT
        await deferred_from_coro(_gather(*(store.command("GET", f"w{n}") for n in range(40))))
        assert _stats(primary, "wait") == waits + 1  # reads only: no WAIT
    finally:
        await deferred_from_coro(store.close())
    plain = await deferred_from_coro(Store.connect(nodes.url))  # N = 0: never a WAIT
    try:
        await deferred_from_coro(_one(plain.command("INCR", "w0")))
        assert _stats(primary, "wait") == waits + 1
    finally:
        await deferred_from_coro(plain.close())


@pytest_twisted.ensureDeferred
async def test_a_lagging_replica_refuses_the_batch_with_the_primary_reply(tillgate_sentinel):
    nodes: LocalSentinelSet = tillgate_sentinel
    store = await deferred_from_coro(Store.connect(nodes.url, acknowledge_after_replicas=1,
                                                   acknowledge_timeout_ms=1000))
    try:
        assert await deferred_from_coro(_one(store.command("SET", "k", "1"))) is True
        before = _redis_errors("unacknowledged")
        nodes.replica.signal(signal.SIGSTOP)  # the replica copies nothing now
        try:
            got = await deferred_from_coro(_gather(store.command("INCR", "n"),
                                                   store.command("SET", "k", "2")))
        finally:
            nodes.replica.signal(signal.SIGCONT)
        assert all(isinstance(e, UnacknowledgedWrite) for e in got)
        assert [e.reply for e in got] == [1, b"OK"]  # what the primary did, for undoing it
        assert "reached 0 of 1 replicas within 1000 ms" in str(got[0])
        assert _redis_errors("unacknowledged") == before + 2
        # the replica catches up: a later batch is acknowledged, on the same pipe
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            try:
                assert await deferred_from_coro(_one(store.command("GET", "n"))) == b"1"
                assert await deferred_from_coro(_one(store.command("SET", "k", "3"))) is True
                break
            except UnacknowledgedWrite:
                assert asyncio.get_running_loop().time() < deadline
    finally:
        await deferred_from_coro(store.close())


@pytest_twisted.ensureDeferred
async def test_the_store_follows_a_failover_and_reloads_its_scripts(tillgate_sentinel):
    nodes: LocalSentinelSet = tillgate_sentinel
    ledger = Ledger(ledger_config(), await deferred_from_coro(Store.connect(nodes.url,
                                                                            timeout=2)))
    try:
        card = await ledger.issue("gift", activate=1000)
        assert (await ledger.send(Op.REDEEM, card, 100)).code == RC.APPROVED
        old = nodes.primary_port()
        with redis.Redis.from_url(nodes.node_url(nodes.primary)) as client:
            client.wait(1, 2000)  # the redeem is on the replica before the primary dies
        nodes.kill_primary()
        # in flight during the failover: refused with 96, the gateway does not crash
        assert (await ledger.send(Op.REDEEM, card, 100)).code == RC.SYSTEM_ERROR
        new = await deferred_from_coro(asyncio.to_thread(nodes.wait_for_failover, old))
        with redis.Redis.from_url(nodes.node_url(new)) as client:
            client.script_flush()  # a promoted replica need not have the scripts cached
        noscript = _redis_errors("noscript")
        result = await ledger.send(Op.REDEEM, card, 100)
        assert (result.code, result.balance) == (RC.APPROVED, 800)
        assert _redis_errors("noscript") == noscript + 1
        assert new.port != old
    finally:
        await deferred_from_coro(ledger.store.close())


@pytest_twisted.ensureDeferred
async def test_a_demoted_primary_is_left_for_the_new_one(tillgate_sentinel):
    """A coordinated failover (SENTINEL FAILOVER) demotes the primary under an open pipe: its
    READONLY answers (or the connection it closes) fail the calls, and the next batch goes to
    the new primary the Sentinel names."""
    nodes: LocalSentinelSet = tillgate_sentinel
    store = await deferred_from_coro(Store.connect(nodes.url, timeout=2))
    try:
        assert await deferred_from_coro(_one(store.command("SET", "k", "1"))) is True
        old = nodes.primary_port()
        nodes.failover()
        new = await deferred_from_coro(asyncio.to_thread(nodes.wait_for_failover, old))
        deadline = asyncio.get_running_loop().time() + 10
        while True:  # calls on the demoted primary fail until the pipe is reopened
            try:
                assert await deferred_from_coro(_one(store.command("SET", "k", "2"))) is True
                break
            except StoreError:
                assert asyncio.get_running_loop().time() < deadline
                await deferred_from_coro(asyncio.sleep(0.1))
        with redis.Redis.from_url(nodes.node_url(new)) as client:
            assert client.get("k") == b"2"
    finally:
        await deferred_from_coro(store.close())


@pytest_twisted.ensureDeferred
async def test_a_refused_redeem_is_reversed_and_its_retransmission_declined(tillgate_sentinel):
    nodes: LocalSentinelSet = tillgate_sentinel
    store = await deferred_from_coro(Store.connect(nodes.url, acknowledge_after_replicas=1,
                                                   acknowledge_timeout_ms=1000))
    ledger = Ledger(ledger_config(), store)
    try:
        card = await ledger.issue("gift", activate=1000)
        earlier = ledger.request(Op.REDEEM, card, 50)
        assert (await ledger.processor.submit(earlier)).code == RC.APPROVED
        redeem = ledger.request(Op.REDEEM, card, 100)
        nodes.replica.signal(signal.SIGSTOP)
        try:
            assert (await ledger.processor.submit(redeem)).code == RC.SYSTEM_ERROR
            # a retransmission of an acknowledged approval, refused now: never reversed
            assert (await ledger.processor.submit(earlier)).code == RC.SYSTEM_ERROR
        finally:
            nodes.replica.signal(signal.SIGCONT)
        compensator = ledger.processor.compensator
        assert await deferred_from_coro(compensator.drain(10))
        assert compensator.done == {redeem.key + "|undo": RC.APPROVED}
        assert (await ledger.show(card)).balance == 950  # the refused 100 came back
        # the till retransmits the redeem it was refused: the tombstone answers 05
        assert (await ledger.processor.submit(redeem)).code == RC.DO_NOT_HONOUR
        assert (await ledger.show(card)).balance == 950
        record = await deferred_from_coro(_one(store.command(
            "HGET", cards.record_key(cards.card_id(card), redeem.key), "undone")))
        assert record is not None
    finally:
        await deferred_from_coro(store.close())


@pytest_twisted.ensureDeferred
async def test_a_readonly_answer_closes_the_pipe_and_the_next_batch_reconnects(tmp_path):
    """A primary turned replica under an open pipe answers writes READONLY. The pipe is then
    dropped, so the next batch opens a new connection (through Sentinel: to the new primary)
    instead of writing to the replica for ever."""
    server = EmbeddedRedis(tmp_path / "r", port=free_port(), appendonly=False)
    server.start()
    store = await deferred_from_coro(Store.connect(server.url, timeout=2))
    try:
        first = await deferred_from_coro(_one(store.command("CLIENT", "ID")))
        with redis.Redis.from_url(server.url) as client:
            client.replicaof("127.0.0.1", str(free_port()))  # a replica now (of nobody there)
            try:
                with pytest.raises(StoreError, match="READONLY"):
                    await deferred_from_coro(_one(store.command("SET", "k", "1")))
            finally:
                client.replicaof("NO", "ONE")
        second = await deferred_from_coro(_one(store.command("CLIENT", "ID")))
        assert second != first  # a new connection
        assert await deferred_from_coro(_one(store.command("SET", "k", "1"))) is True
    finally:
        await deferred_from_coro(store.close())
        server.stop()


@pytest_twisted.async_yield_fixture
async def acknowledging(tillgate_sentinel):
    """(nodes, store, failures): a store on a private primary and replica whose writes wait
    for the replica, and the failures it reports (what /healthz hears at once). 1,000 ms: the
    first probe must be confirmed, and a loaded machine's replica (perhaps still resyncing
    after the test before killed it) took longer than 300 once."""
    nodes: LocalSentinelSet = tillgate_sentinel
    store = await deferred_from_coro(Store.connect(nodes.url, acknowledge_after_replicas=1,
                                                   acknowledge_timeout_ms=1000))
    failures: list[StoreError] = []
    store.failure_listeners.append(failures.append)
    yield nodes, store, failures
    await deferred_from_coro(store.close())


@pytest_twisted.ensureDeferred
async def test_the_health_probe_wants_the_replicas_acknowledgement_needs(acknowledging):
    nodes, store, failures = acknowledging
    assert await deferred_from_coro(store.ping())
    nodes.replica.kill()
    with pytest.raises(UnacknowledgedWrite):  # no replica: the write is refused...
        await deferred_from_coro(_one(store.command("SET", "k", "1")))
    assert len(failures) == 1  # ...and /healthz told at once
    assert not await deferred_from_coro(store.ping())  # and the probe agrees


@pytest_twisted.ensureDeferred
async def test_reads_are_answered_while_no_replica_acknowledges(acknowledging):
    # The points sweep reads its indexes with ZRANGEBYSCORE: counted as a write, it waited for
    # the replica, was refused, and reported the store down with nothing written (CI, once,
    # on a cluster whose replica a test had paused). Reads need no WAIT; writes still do.
    nodes, store, failures = acknowledging
    nodes.replica.kill()
    assert await deferred_from_coro(_one(store.command(
        "ZRANGEBYSCORE", "{x:loyalty}:due", "-inf", "+inf"))) == []
    assert await deferred_from_coro(_one(store.command(
        "CONFIG", "GET", "hash-max-ziplist-value")))
    points, held = await deferred_from_coro(sweep_points_and_reservations(
        store, ledger_config(), 1_800_000_000))
    assert (points.cards, held.claimed, held.returned) == (0, 0, 0)
    assert failures == []
    with pytest.raises(UnacknowledgedWrite):
        await deferred_from_coro(_one(store.command("SET", "k", "1")))

"""The ledger on a Redis Cluster (gateway/ledger/clusterstore.py), over the session's local
cluster of 3 primaries and 3 replicas (gateway/embedded_cluster.py): every operation, the
claim and the card script as two calls, MOVED, ASK and NOSCRIPT, and a gateway over TCP."""

from __future__ import annotations

import asyncio
import time

import pytest
import pytest_twisted
from isohelpers import in_thread, new_card
from test_ledger_support import Ledger, ledger_config, random_number

from gateway.config.model import parse_config
from gateway.config.sections import ConfigError
from gateway.ledger import cards, feed
from gateway.ledger.audit import audit
from gateway.ledger.clusterstore import ClusterStore, parse_cluster_url
from gateway.ledger.sweep import sweep
from gateway.metrics import families as metrics
from gateway.reactor import deferred_from_coro
from gateway.sim.isoclient import IsoClient
from protocols.isobuild import StanCounter, request_fields
from protocols.model import RC, Op

TILL = {"terminal": "TILL0001", "merchant": "STORE0000000001"}


async def _flush_all(store: ClusterStore) -> None:
    for shard in store.shards():
        await shard.command("FLUSHALL")


@pytest_twisted.async_yield_fixture
async def cledger(tillgate_cluster_url):
    store = await deferred_from_coro(ClusterStore.connect(tillgate_cluster_url, pool_size=8))
    await deferred_from_coro(_flush_all(store))  # request keys restart at 1 in every Ledger
    yield Ledger(ledger_config(), store)
    await deferred_from_coro(store.close())


def card_slot(card: str) -> int:
    return feed.key_slot(cards.state_key(cards.card_id(card)))


async def cards_on_two_primaries(ledger: Ledger, program: str, count: int,
                                 **kw: object) -> list[str]:
    """At least `count` new cards, issued until they are on two primaries or more."""
    issued: list[str] = []
    while len(issued) < count or len({ledger.store.slots[card_slot(c)] for c in issued}) < 2:
        issued.append(await ledger.issue(program, **kw))
    return issued


def test_cluster_url_is_checked_and_named():
    assert parse_cluster_url("redis+cluster://10.0.0.1:7000,redis-b:7001") == [
        ("10.0.0.1", 7000), ("redis-b", 7001)]
    with open("config/tillgate.toml", "rb") as f:
        import tomllib
        data = tomllib.load(f)
    data["redis"] = {"url": "redis+cluster://10.0.0.1:7000,redis-b:7001"}
    assert parse_config(data, "t").redis.url == "redis+cluster://10.0.0.1:7000,redis-b:7001"
    for bad in ("redis+cluster://", "redis+cluster://host", "redis+cluster://h:1,:2"):
        data["redis"] = {"url": bad}
        with pytest.raises(ConfigError, match=r"redis\.url.*redis\+cluster://HOST:PORT"):
            parse_config(data, "t")


@pytest_twisted.ensureDeferred
async def test_gift_operations_and_audit_on_every_primary(cledger):
    ledger = cledger
    issued = await cards_on_two_primaries(ledger, "gift", 6, activate=2000)
    card = issued[0]
    sale = ledger.key()
    r = await ledger.send(Op.REDEEM, card, 500, key=sale)
    assert (r.code, r.balance) == ("00", 1500)
    assert (await ledger.send(Op.RELOAD, card, 250)).balance == 1750
    r = await ledger.send(Op.REVERSAL, card, original_key=sale)
    assert (r.code, r.balance) == ("00", 2250)
    r = await ledger.send(Op.TRANSFER, card, target_card=issued[1])
    assert (r.code, r.balance) == ("00", 4250)
    assert (await ledger.show(card)).status == "lost"
    report = await ledger.call(audit(ledger.store))
    assert report.ok and report.cards == len(issued)
    assert report.entries == len(issued) + 4 + 1


@pytest_twisted.ensureDeferred
async def test_claim_and_card_script_are_two_calls_where_slots_differ(cledger):
    ledger = cledger
    card = await ledger.issue("gift", activate=1000)
    assert not ledger.store.same_slot(cards.state_key(cards.card_id(card)),
                                      cards.claim_key(TILL["merchant"], "k"))
    key = ledger.key()
    first = await ledger.send(Op.REDEEM, card, 300, key=key)
    again = await ledger.send(Op.REDEEM, card, 300, key=key, repeat=True)  # a retransmission
    assert first.code == again.code == "00" and first.balance == again.balance == 700
    assert (await ledger.send(Op.REDEEM, card, 999, key=key)).code == RC.DUPLICATE  # reused
    assert (await ledger.show(card)).balance == 700


@pytest_twisted.ensureDeferred
async def test_loyalty_earn_redeem_and_undo(cledger):
    ledger = cledger
    card = await ledger.issue("loyalty", activate=0)
    earn = ledger.key()
    assert (await ledger.send(Op.EARN, card, 12_345, key=earn)).points == 123
    spend = ledger.key()
    r = await ledger.send(Op.REDEEM_POINTS, card, 100, key=spend)
    assert (r.code, r.points) == ("00", 23)
    assert (await ledger.send(Op.REVERSAL, card, original_key=spend)).points == 123
    assert (await ledger.send(Op.VOID, card, original_key=earn)).points == 0
    assert (await ledger.call(audit(ledger.store))).ok


@pytest_twisted.ensureDeferred
async def test_moved_slot_is_followed_and_the_map_refreshed(cledger, tillgate_cluster):
    ledger = cledger
    card = await ledger.issue("gift", activate=1000)
    slot = card_slot(card)
    before = ledger.store.slots[slot]
    target = next(n for n in tillgate_cluster.primaries if n.address != before)
    await in_thread(tillgate_cluster.move_slot, slot, target)
    assert ledger.store.slots[slot] == before  # the store's map is stale now
    r = await ledger.send(Op.REDEEM, card, 100)
    assert (r.code, r.balance) == ("00", 900)
    assert ledger.store.slots[slot] == target.address
    assert (await ledger.show(card)).balance == 900
    assert (await ledger.call(audit(ledger.store))).ok


@pytest_twisted.ensureDeferred
async def test_ask_during_a_migration_is_resent_with_asking(cledger, tillgate_cluster):
    ledger = cledger
    config = ledger.config
    card = random_number(config, "gift")
    slot = card_slot(card)
    target = next(n for n in tillgate_cluster.primaries
                  if n.address != ledger.store.slots[slot])
    source = await in_thread(tillgate_cluster.begin_move, slot, target)
    try:
        # The card's keys do not exist yet: the source answers ASK, the target takes the call.
        assert await ledger.call(cards.issue_card(ledger.store, config.programs["gift"], card,
                                                  None, 0))
        assert source.call("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
        assert target.call("CLUSTER", "COUNTKEYSINSLOT", slot) > 0
        assert ledger.store.slots[slot] == source.address  # ASK leaves the map as it is
    finally:
        await in_thread(tillgate_cluster.finish_move, slot, source, target)
    r = await ledger.send(Op.ACTIVATE, card, 700)
    assert (r.code, r.balance) == ("00", 700)


@pytest_twisted.ensureDeferred
async def test_noscript_on_a_primary_loads_the_script_there(cledger, tillgate_cluster):
    ledger = cledger
    card = await ledger.issue("gift", activate=1000)
    for node in tillgate_cluster.primaries:
        node.call("SCRIPT", "FLUSH")
    noscript = metrics.REDIS_ERRORS.labels("noscript")
    before = noscript._value.get()
    r = await ledger.send(Op.REDEEM, card, 100)
    assert (r.code, r.balance) == ("00", 900)
    assert noscript._value.get() > before


@pytest.fixture
def cluster_gateway(tillgate_inprocess_factory, tillgate_cluster_url):
    return tillgate_inprocess_factory(redis_url=tillgate_cluster_url)


@pytest_twisted.ensureDeferred
async def test_iso_till_over_tcp_on_the_cluster(cluster_gateway):
    gw = (await cluster_gateway).gateway
    card, _ = await new_card(gw)
    stans = StanCounter()

    def session():
        with IsoClient("127.0.0.1", gw.listeners[0].bound_port) as c:
            return [c.exchange(request_fields(op, card=card, amount=amount, stan=stans.next(),
                                              currency="840", **TILL))
                    for op, amount in ((Op.ACTIVATE, 5000), (Op.REDEEM, 1250), (Op.BALANCE, 0))]

    activate, redeem, balance = await in_thread(session)
    assert activate["39"] == redeem["39"] == balance["39"] == "00"
    assert balance["54"].endswith("C000000003750")


@pytest_twisted.ensureDeferred
async def test_sweep_finds_the_due_indexes_of_every_primary(cledger):
    ledger = cledger
    day0 = 20_500
    ledger.processor.clock = lambda: day0 * 86400 + 12 * 3600
    issued = await cards_on_two_primaries(ledger, "loyalty", 2, activate=0)
    for card in issued:
        assert (await ledger.send(Op.EARN, card, 10_000)).points == 100
    report = await ledger.call(sweep(ledger.store, ledger.config, (day0 + 366) * 86400))
    assert (report.expired, report.expiries) == (100 * len(issued), len(issued))
    for card in issued:
        assert (await ledger.show(card)).points == 0
    assert (await ledger.call(audit(ledger.store))).ok


@pytest_twisted.ensureDeferred
async def test_back_office_reads_the_feed_of_every_slot(cledger, tmp_path):
    from test_backoffice_feed import migrated, sql_entries

    from gateway.backoffice.consumer import FeedConsumer
    from gateway.backoffice.feed import FeedReader

    ledger = cledger
    issued = await cards_on_two_primaries(ledger, "gift", 3, activate=1000)
    for card in issued:
        assert (await ledger.send(Op.REDEEM, card, 100)).code == "00"

    async def drain():
        engine = await migrated(f"sqlite:///{tmp_path / 'bo.sqlite3'}", tmp_path)
        try:
            reader = FeedReader(ledger.store, "gw")
            await reader.ensure_group()
            consumer = FeedConsumer(reader, engine)
            return reader.streams, await consumer.drain(), await sql_entries(engine), \
                consumer.lag
        finally:
            await engine.dispose()

    streams, drained, rows, lag = await deferred_from_coro(drain())
    assert set(streams) == {ledger.store.feed_key(cards.card_id(c)) for c in issued}
    assert drained == len(rows) == 2 * len(issued)  # activation and sale of each card
    assert {r[0] for r in rows} == {cards.card_id(c) for c in issued}
    assert (lag.entries, lag.seconds) == (0, 0.0)


@pytest_twisted.ensureDeferred
async def test_durable_acknowledgement_waits_on_each_primary(tillgate_cluster_url):
    # redis.acknowledge_after_replicas on a cluster: each primary's store sends one WAIT per
    # batch to its own node (its replica acknowledges), so approvals wait for the replicas of
    # the primary that holds the card, wherever it is.
    store = await deferred_from_coro(ClusterStore.connect(
        tillgate_cluster_url, pool_size=8, acknowledge_after_replicas=1,
        acknowledge_timeout_ms=2000))
    try:
        await deferred_from_coro(_flush_all(store))
        ledger = Ledger(ledger_config(), store)

        async def waits() -> int:
            stats = [await shard.client.info("commandstats") for shard in store.shards()]
            return sum(int(s.get("cmdstat_wait", {}).get("calls", 0)) for s in stats)

        before = await deferred_from_coro(waits())
        issued = await cards_on_two_primaries(ledger, "gift", 4, activate=1000)
        for card in issued:
            assert (await ledger.send(Op.REDEEM, card, 100)).code == RC.APPROVED
        primaries = {store.slots[card_slot(c)] for c in issued}
        assert len(primaries) >= 2
        assert await deferred_from_coro(waits()) - before >= len(primaries)
        assert all(shard.replica_ack is not None for shard in store.shards())
    finally:
        await deferred_from_coro(store.close())


@pytest_twisted.ensureDeferred
async def test_a_killed_primary_is_followed_to_its_promoted_replica(cledger, tillgate_cluster):
    """Last in this file: it changes the session cluster's roles (the killed primary comes
    back as a replica)."""
    ledger = cledger
    card = await ledger.issue("gift", activate=1000)
    slot = card_slot(card)
    victim = tillgate_cluster.node_of_slot(slot)
    assert victim.process is not None
    victim.process.kill()  # SIGKILL: no goodbye to the cluster
    try:
        deadline = time.monotonic() + 30
        codes = []
        while True:  # 96 while the cluster fails over, then approved on the promoted replica
            r = await ledger.send(Op.REDEEM, card, 100)
            codes.append(r.code)
            if r.code == "00" or time.monotonic() > deadline:
                break
            await deferred_from_coro(asyncio.sleep(0.2))
        assert codes[-1] == "00" and set(codes) <= {"00", "96"}, codes
        assert ledger.store.slots[slot] != victim.address
        assert (await ledger.show(card)).balance == 1000 - 100
    finally:
        await in_thread(tillgate_cluster.restart, victim)

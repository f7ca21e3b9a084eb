"""The store's own pipelined connection: replies matched in order across batches in flight,
an overdue reply failing its calls (and only then), a lost server, and recovery after each."""

from __future__ import annotations

import asyncio

import pytest
import pytest_twisted

from gateway.embedded_redis import EmbeddedRedis, free_port
from gateway.ledger.store import Store, StoreError, UnacknowledgedWrite
from gateway.metrics.families import REGISTRY
from gateway.reactor import deferred_from_coro


async def _batches_in_flight(store: Store) -> list[list[bytes]]:
    """Three batches written in three loop turns before any reply is read."""
    sent = []
    for turn in range(3):
        sent.append([store.command("ECHO", f"{turn}-{n}") for n in range(50)])
        await asyncio.sleep(0)  # the batch is written in this turn; the next one follows
    return [list(await asyncio.gather(*batch)) for batch in sent]


@pytest_twisted.ensureDeferred
async def test_batches_in_flight_get_their_own_replies(redis_url):
    store = await deferred_from_coro(Store.connect(redis_url))
    try:
        await deferred_from_coro(_await(store.command("PING")))  # the pipe is open
        before = store.pipelines_sent
        got = await deferred_from_coro(_batches_in_flight(store))
        assert got == [[f"{t}-{n}".encode() for n in range(50)] for t in range(3)]
        assert store.pipelines_sent - before == 3
        # replies keep redis-py's shapes for plain commands
        await deferred_from_coro(_await(store.command("HSET", "pipe:h", "a", "1")))
        assert await deferred_from_coro(_await(store.command("HGETALL", "pipe:h"))) == {
            b"a": b"1"}
    finally:
        await deferred_from_coro(store.close())


async def _await(future):
    return await future


def redis_errors(kind: str) -> float:
    return REGISTRY.get_sample_value("tillgate_redis_errors_total", {"kind": kind}) or 0.0


@pytest_twisted.ensureDeferred
async def test_an_overdue_reply_fails_its_calls_and_the_next_call_reconnects(redis_url):
    store = await deferred_from_coro(Store.connect(redis_url, timeout=0.3))
    timeouts = redis_errors("timeout")
    try:
        with pytest.raises(StoreError, match="no reply within 0.3 s"):
            await deferred_from_coro(_await(store.command("BLPOP", "pipe:nothing", "0.8")))
        assert redis_errors("timeout") == timeouts + 1
        await deferred_from_coro(asyncio.sleep(0.6))  # the server is done blocking
        assert await deferred_from_coro(_await(store.command("PING"))) is True
    finally:
        await deferred_from_coro(store.close())


@pytest_twisted.ensureDeferred
async def test_a_call_behind_an_overdue_one_keeps_its_own_deadline(redis_url):
    """A call written while an earlier one stalls the connection is not failed with it: the
    server may still run it (and here does, in time), so failing it would answer 96 for a
    change that happens. Its own deadline still holds: a pipe retired this way takes no new
    batch, and the next call goes on a new connection."""
    store = await deferred_from_coro(Store.connect(redis_url, timeout=1.0))
    try:
        await deferred_from_coro(_await(store.command("DEL", "pipe:late")))
        stalled = store.command("BLPOP", "pipe:nothing", "1.4")  # answers after 1.4 s
        await deferred_from_coro(asyncio.sleep(0.7))
        behind = store.command("SET", "pipe:late", "1")  # its deadline: 1.7 s
        with pytest.raises(StoreError, match="no reply within 1.0 s"):
            await deferred_from_coro(_await(stalled))
        assert not behind.done()  # still waiting at the first one's deadline
        assert await deferred_from_coro(_await(behind)) is True
        assert await deferred_from_coro(_await(store.command("GET", "pipe:late"))) == b"1"
        assert len(store._open_pipes) == 1  # the retired one closed after its last reply
    finally:
        await deferred_from_coro(store.close())


@pytest_twisted.ensureDeferred
async def test_an_overdue_wait_refuses_the_writes_it_held_at_its_own_deadline(redis_url):
    """With acknowledge_after_replicas, a batch's replies are held until its WAIT answers. A
    WAIT overdue while a later batch still has time must refuse the writes it held then (as
    unacknowledged: the processor undoes them), not leave them waiting for the later batch's
    deadline, which kept a till waiting past its 96."""
    store = await deferred_from_coro(Store.connect(redis_url, timeout=0.6,
                                                   acknowledge_after_replicas=1,
                                                   acknowledge_timeout_ms=3000))
    try:  # no replica here: each WAIT blocks its 3 s, past the store's 0.6 s
        first = store.command("SET", "pipe:held", "1")
        await deferred_from_coro(asyncio.sleep(0.4))
        second = store.command("SET", "pipe:later", "1")  # its deadline: 0.4 s after
        with pytest.raises(UnacknowledgedWrite) as refused:
            await deferred_from_coro(_await(first))
        assert refused.value.reply == b"OK"  # the primary's answer, for the undo
        assert not second.done()  # the later batch keeps its own deadline
        with pytest.raises(StoreError, match="no reply within"):  # never ran: WAIT blocks
            await deferred_from_coro(_await(second))
    finally:
        await deferred_from_coro(store.close())


@pytest_twisted.ensureDeferred
async def test_a_lost_server_fails_the_calls_and_a_restarted_one_serves_them(tmp_path):
    server = EmbeddedRedis(tmp_path / "r", port=free_port(), appendonly=False)
    server.start()
    store = await deferred_from_coro(Store.connect(server.url, timeout=1.0))
    try:
        assert await deferred_from_coro(_await(store.command("SET", "k", "v"))) is True
        server.stop()
        lost = redis_errors("connection")
        with pytest.raises(StoreError):
            await deferred_from_coro(_await(store.command("GET", "k")))
        assert redis_errors("connection") == lost + 1
        server.start()
        assert await deferred_from_coro(_await(store.command("PING"))) is True
    finally:
        await deferred_from_coro(store.close())
        server.stop()


@pytest_twisted.ensureDeferred
async def test_an_error_reply_is_counted_and_fails_only_its_call(redis_url):
    store = await deferred_from_coro(Store.connect(redis_url))
    before = redis_errors("error_reply")
    try:
        await deferred_from_coro(_await(store.command("HSET", "pipe:h", "a", "1")))
        with pytest.raises(StoreError, match="WRONGTYPE"):
            await deferred_from_coro(_await(store.command("INCR", "pipe:h")))
        assert redis_errors("error_reply") == before + 1
        assert await deferred_from_coro(_await(store.command("PING"))) is True
    finally:
        await deferred_from_coro(store.close())


@pytest_twisted.ensureDeferred
async def test_a_deadline_is_set_in_redis_time_whatever_our_clock_says(redis_url, monkeypatch):
    """The claim's deadline (`LATE` when Redis runs it later) is checked by Redis's clock. It
    was our clock plus the time-out: a gateway host 10 s behind Redis's made every call late,
    every till answered 96. It is now our clock plus the measured offset (read_clock)."""
    import time as real_time

    from test_ledger_support import Ledger, ledger_config

    from gateway.ledger import store as store_module
    from protocols.model import RC, Op

    class Behind:  # this host's clock, 10 s behind the Redis host's
        @staticmethod
        def time() -> float:
            return real_time.time() - 10

    monkeypatch.setattr(store_module, "time", Behind)
    store = await deferred_from_coro(Store.connect(redis_url, timeout=2))
    try:
        assert 9.5 < store.clock_offset < 10.5
        ledger = Ledger(ledger_config(), store)
        card = await ledger.issue("gift")
        result = await ledger.send(Op.ACTIVATE, card, 1000)
        assert result.code == RC.APPROVED, result
    finally:
        await deferred_from_coro(store.close())

"""The journal feed into SQL (gateway/backoffice/feed.py, ingest.py, consumer.py) on a real
redis-server and a real SQLite and PostgreSQL: every entry once, in order per card, through
replays, crashes between commit and ack, and a database that is down for a while."""

from __future__ import annotations

import asyncio
import time

import pytest_twisted
from sqlalchemy import select
from test_backoffice_schema import config_for
from test_ledger_support import ledger  # noqa: F401  (fixture)

from gateway.backoffice import schema
from gateway.backoffice.consumer import FeedConsumer
from gateway.backoffice.db import create_engine, database_url
from gateway.backoffice.feed import GROUP, FeedReader
from gateway.backoffice.migrate import upgrade
from gateway.embedded_redis import free_port
from gateway.ledger import cards, feed
from gateway.ledger.journal import entries
from gateway.metrics import families as metrics
from gateway.reactor import deferred_from_coro
from gateway.security.alerts.service import Backoff
from protocols.model import Op


async def some_traffic(ledger) -> list[str]:  # noqa: F811
    """Two cards with every kind of entry: loads, sales, a replay, a void, a transfer, a
    status change; the card numbers."""
    a = await ledger.issue("gift", activate=5000)
    b = await ledger.issue("gift", activate=700)
    sale = ledger.key()
    for key in (sale, sale):  # the second is a retransmission: no entry
        assert (await ledger.send(Op.REDEEM, a, 1250, key=key)).code == "00"
    assert (await ledger.send(Op.RELOAD, a, 300)).code == "00"
    assert (await ledger.send(Op.VOID, a, 1250, original_key=sale)).code == "00"
    assert (await ledger.send(Op.TRANSFER, b, 0, target_card=a)).code == "00"
    assert (await ledger.call(cards.set_card_status(ledger.store, a, "suspended")))["rc"] == "00"
    return [a, b]


async def migrated(url: str, tmp_path):
    engine = create_engine(database_url(config_for(url, tmp_path)))
    await upgrade(engine)
    return engine


async def drained_then(ledger, backoffice_url, tmp_path, query):  # noqa: F811
    """Migrate a fresh back office, drain the whole feed into it, and run `query` there."""
    engine = await migrated(backoffice_url, tmp_path)
    try:
        reader = FeedReader(ledger.store, "gw")
        await reader.ensure_group()
        drained = await FeedConsumer(reader, engine).drain()
        async with engine.connect() as conn:
            return drained, (await conn.execute(query)).all()
    finally:
        await engine.dispose()


async def sql_entries(engine) -> list[tuple]:
    t = schema.journal_entries.c
    async with engine.connect() as conn:
        return list((await conn.execute(
            select(t.card_id, t.entry_id, t.seq, t.op, t.dv, t.dp, t.bal, t.pts, t.program,
                   t.card_mask, t.undo).order_by(t.card_id, t.seq))).all())


async def sql_cards(engine) -> dict[str, tuple]:
    c = schema.cards.c
    async with engine.connect() as conn:
        rows = (await conn.execute(select(c.card_id, c.balance, c.points, c.seq))).all()
    return {r[0]: tuple(r[1:]) for r in rows}


async def redis_journals(store, numbers: list[str]) -> list[tuple]:
    out = []
    for number in numbers:
        cid = cards.card_id(number)
        async for e in entries(store, cards.journal_key(cid)):
            out.append((cid, e.id, e.n, e.op, e.dv, e.dp, e.bal, e.pts, "gift", e.card, e.undo))
    return sorted(out, key=lambda r: (r[0], r[2]))


@pytest_twisted.ensureDeferred
async def test_every_entry_reaches_sql_once_in_order(ledger, backoffice_url, tmp_path):  # noqa: F811
    numbers = await some_traffic(ledger)

    async def check():
        engine = await migrated(backoffice_url, tmp_path)
        try:
            reader = FeedReader(ledger.store, "c1", count=3)  # several batches
            await reader.ensure_group()
            before = await reader.lag(now=time.time() + 5)
            consumer = FeedConsumer(reader, engine)
            first = await consumer.drain()
            again = await FeedConsumer(FeedReader(ledger.store, "c1"), engine).drain()
            return (before, first, again, await sql_entries(engine), await sql_cards(engine),
                    await redis_journals(ledger.store, numbers), consumer.lag,
                    await ledger.store.client.xlen(feed.FEED_STREAM))
        finally:
            await engine.dispose()

    before, first, again, rows, by_card, journals, lag, left = await deferred_from_coro(check())
    assert before.entries == 8 and before.seconds >= 5  # the lag before: every entry, aged
    assert (first, again) == (8, 0)
    assert rows == journals  # every entry, once, as the ledger journaled it
    for number in numbers:
        view = await ledger.show(number)
        journal = [r for r in journals if r[0] == cards.card_id(number)]
        assert by_card[cards.card_id(number)] == (view.balance, view.points, journal[-1][2])
    assert (lag.entries, lag.seconds, left) == (0, 0.0, 0)  # acked and trimmed


@pytest_twisted.ensureDeferred
async def test_a_crash_between_commit_and_ack_doubles_nothing(ledger, backoffice_url,  # noqa: F811
                                                            tmp_path):
    numbers = await some_traffic(ledger)

    async def crash_then_resume():
        engine = await migrated(backoffice_url, tmp_path)
        try:
            from gateway.backoffice.ingest import ingest

            crashed = FeedReader(ledger.store, "gateway-a", count=4)
            await crashed.ensure_group()
            batch = await crashed.read(None)
            await ingest(engine, batch)  # committed, never acked: the process died here
            # the same consumer started again reads its pending entries first
            resumed = FeedConsumer(FeedReader(ledger.store, "gateway-a", count=2), engine)
            assert await resumed.drain() == 8
            # a consumer on another host takes over what a dead one left pending
            await some_more(ledger)
            dead = FeedReader(ledger.store, "gateway-b")
            stale = await dead.read(None)
            await ingest(engine, stale)
            other = FeedConsumer(FeedReader(ledger.store, "gateway-c", claim_idle_ms=0), engine)
            claimed = await other.drain()
            pending = await ledger.store.client.xpending(feed.FEED_STREAM, GROUP)
            return (len(batch), len(stale), claimed, pending["pending"], await sql_entries(engine),
                    await redis_journals(ledger.store, numbers))
        finally:
            await engine.dispose()

    async def some_more(ledger):  # noqa: F811
        # asyncio-native calls, as this runs in the loop
        redeem = ledger.request(Op.REDEEM, numbers[1], 100)  # the card is lost: no entry
        assert (await ledger.processor.process(redeem)).code != "00"
        assert (await cards.set_card_status(ledger.store, numbers[0], "reinstate"))["rc"] == "00"

    first, stale, claimed, pending, rows, journals = await deferred_from_coro(crash_then_resume())
    assert (first, stale, claimed, pending) == (4, 1, 1, 0)
    assert rows == journals


@pytest_twisted.ensureDeferred
async def test_sql_down_then_back_loses_nothing(ledger, backoffice_url, tmp_path):  # noqa: F811
    numbers = await some_traffic(ledger)
    down_url = f"postgresql+asyncpg://tillgate@127.0.0.1:{free_port()}/nothing"

    async def outage():
        from sqlalchemy.engine import make_url
        down = create_engine(make_url(down_url))
        engine = await migrated(backoffice_url, tmp_path)
        try:
            reader = FeedReader(ledger.store, "gw")
            await reader.ensure_group()
            consumer = FeedConsumer(reader, down, block_ms=50, backoff=Backoff(0.01, 0.05))
            failures = metrics.BACKOFFICE_FAILURES.labels("sql")
            failed_before = failures._value.get()
            stopped = asyncio.Event()
            task = asyncio.ensure_future(consumer.run(stopped.is_set, asyncio.sleep))
            await wait_for(lambda: failures._value.get() >= failed_before + 3)
            during = (consumer.sql_up, (await reader.lag()).entries)
            # while SQL is down, tills are answered and their entries wait in the feed
            assert (await cards.set_card_status(ledger.store, numbers[0], "reinstate"))["rc"] \
                == "00"
            consumer.engine = engine  # the database is back
            await wait_for(lambda: consumer.lag.entries == 0 and consumer.ingested == 9)
            stopped.set()
            await task
            return during, consumer.sql_up, await sql_entries(engine), \
                await redis_journals(ledger.store, numbers)
        finally:
            await down.dispose()
            await engine.dispose()

    during, up_after, rows, journals = await deferred_from_coro(outage())
    assert during == (False, 8)
    assert up_after is True
    assert rows == journals and len(rows) == 9


async def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def audited(store, engine):
    from gateway.backoffice.audit import BackofficeAudit
    from gateway.ledger.audit import AuditReport, audit

    report = AuditReport()
    check = BackofficeAudit(store, engine, report)
    await check.begin()
    await audit(store, report, check_page=check.check_page)
    return report.differences, (check.compared, check.lagging)


@pytest_twisted.ensureDeferred
async def test_audit_tells_lag_from_differences(ledger, backoffice_url, tmp_path):  # noqa: F811
    numbers = await some_traffic(ledger)
    a = cards.card_id(numbers[0])

    async def scenario():
        from sqlalchemy import delete, insert, update

        engine = await migrated(backoffice_url, tmp_path)
        t = schema.journal_entries
        try:
            found = {"nothing ingested": await audited(ledger.store, engine)}
            reader = FeedReader(ledger.store, "gw", count=5)
            await reader.ensure_group()
            await FeedConsumer(reader, engine).step(None)  # 5 of 8 in SQL, 3 still in the feed
            found["half ingested"] = await audited(ledger.store, engine)
            await FeedConsumer(reader, engine).drain()
            found["caught up"] = await audited(ledger.store, engine)
            rows = await sql_entries(engine)
            first, second = [r for r in rows if r[0] == a][:2]
            async with engine.begin() as conn:
                await conn.execute(delete(t).where(t.c.card_id == a, t.c.entry_id == first[1]))
                await conn.execute(update(t).where(t.c.card_id == a, t.c.entry_id == second[1])
                                   .values(dv=1))
                await conn.execute(insert(t).values(
                    card_id=a, entry_id="1-0", seq=99, op="redeem", card_mask="x", dv=0, dp=0,
                    bal=0, pts=0, terminal="", merchant="", request_key="", t=0))
            found["tampered"] = await audited(ledger.store, engine)
            return found, second
        finally:
            await engine.dispose()

    found, second = await deferred_from_coro(scenario())
    assert found["nothing ingested"] == ([], (0, 8))  # lag, not differences
    assert found["half ingested"] == ([], (5, 3))
    assert found["caught up"] == ([], (8, 0))
    differences, _ = found["tampered"]
    text = "\n".join(differences)
    assert "is in the journal, not in SQL, and no longer in the feed" in text
    assert f"entry {second[1]} (redeem) is seq 2 dv -1250 dp 0 balance 3750 points 0 in the " \
        "journal, 2 1 0 3750 0 in SQL" in text
    assert "entry 1-0 is in SQL, not in the journal" in text
    assert "SQL sums to" in text and "SQL's last entry" not in text
    assert len(differences) == 4, text


@pytest_twisted.ensureDeferred
async def test_drain_stops_at_what_the_feed_held_when_it_began(ledger, tmp_path):  # noqa: F811
    numbers = await some_traffic(ledger)  # 8 entries
    busy = await ledger.issue("gift", activate=100)  # 9

    class UnderLoad(FeedReader):
        reads = 0

        async def read(self, block_ms):
            # a till reloads the card before every read: the feed never empties
            self.reads += 1
            assert self.reads < 50, "drain does not stop under a steady load"
            reload = ledger.request(Op.RELOAD, busy, 1)
            assert (await ledger.processor.process(reload)).code == "00"
            return await super().read(block_ms)

    async def drain():
        engine = await migrated(f"sqlite:///{tmp_path / 'bo.sqlite3'}", tmp_path)
        try:
            reader = UnderLoad(ledger.store, "gw", count=2)
            await reader.ensure_group()
            return await FeedConsumer(reader, engine).drain(), await sql_entries(engine)
        finally:
            await engine.dispose()

    drained, rows = await deferred_from_coro(drain())
    assert 9 <= drained < 9 + 9  # what was there, and what came with its batches, no more
    assert len(rows) == drained and numbers


@pytest_twisted.ensureDeferred
async def test_an_operators_long_name_reaches_sql_whole(ledger, backoffice_url,  # noqa: F811
                                                        tmp_path):
    # Operators act as "token:<id>" (a token made at run time is rt- and 8 hex digits), longer
    # than a till's 8-character terminal: PostgreSQL refused it and the consumer stalled.
    card = await ledger.issue("gift", activate=100)
    operator = "token:rt-0123abcd-and-a-config-token-id-of-some-length"
    res = await ledger.call(cards.set_card_status(ledger.store, card, "suspended", operator))
    assert res["rc"] == "00"

    t = schema.journal_entries.c
    n, rows = await deferred_from_coro(drained_then(
        ledger, backoffice_url, tmp_path, select(t.terminal).order_by(t.seq)))
    assert (n, [terminal for (terminal,) in rows]) == (2, ["TILL0001", operator])


@pytest_twisted.ensureDeferred
async def test_the_staff_member_reaches_sql(ledger, backoffice_url, tmp_path):  # noqa: F811
    # Field 63 OP / TGL opid is on the journal entry (opid); the feed carries it into the
    # column `tillgate staff recent` reads.
    card = await ledger.issue("gift", activate=1000)
    assert (await ledger.send(Op.REDEEM, card, 250, operator="ANNA")).code == "00"

    t = schema.journal_entries.c
    _n, rows = await deferred_from_coro(drained_then(
        ledger, backoffice_url, tmp_path, select(t.op, t.opid).order_by(t.seq)))
    assert rows == [("activate", None), ("redeem", "ANNA")]


@pytest_twisted.ensureDeferred
async def test_a_tier_change_reaches_sql_with_its_ranks(ledger, backoffice_url,  # noqa: F811
                                                        tmp_path):
    # The default loyalty program (HOST-SPEC 1.1 section 6): SILVER from 500 points earned.
    card = await ledger.issue("loyalty", activate=0)
    assert (await ledger.send(Op.EARN, card, 60_000)).code == "00"

    t = schema.journal_entries.c
    _n, rows = await deferred_from_coro(drained_then(
        ledger, backoffice_url, tmp_path,
        select(t.op, t.tier_from, t.tier).where(t.op == "tier")))
    assert rows == [("tier", "BRONZE", "SILVER")]

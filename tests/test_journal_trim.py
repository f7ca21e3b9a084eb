"""Journal trimming (gateway/ledger/trim.py, gateway/backoffice/trim.py, journal_trim.lua) on the
session's redis-server and a real SQLite (and PostgreSQL where the test takes `backoffice_url`):
folding into a checkpoint never changes a balance, never folds an entry SQL lacks, is
idempotent, runs beside live traffic, and both audits read a trimmed journal."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import msgpack
import pytest
import pytest_twisted
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from test_backoffice_schema import config_for
from test_ledger_support import MERCH, TERM, ledger, ledger_config, random_number  # noqa: F401
from twisted.internet import reactor
from twisted.internet.task import deferLater

from gateway.backoffice import schema
from gateway.backoffice.audit import BackofficeAudit
from gateway.backoffice.consumer import FeedConsumer
from gateway.backoffice.db import create_engine, database_url
from gateway.backoffice.feed import FedEntry, FeedReader
from gateway.backoffice.ingest import ingest
from gateway.backoffice.migrate import upgrade
from gateway.backoffice.trim import JournalTrimmer, TrimReport
from gateway.config.model import parse_config
from gateway.config.sections import ConfigError
from gateway.ledger import cards
from gateway.ledger.audit import AuditReport, audit
from gateway.ledger.journal import Entry, entries
from gateway.ledger.processor import Processor
from gateway.ledger.store import Store
from gateway.ledger.trim import TrimPolicy, fold
from protocols.model import Op, Request

ALL_OLD = TrimPolicy(keep_entries=2, keep_seconds=0)  # with a clock ahead: every entry is old


def in_thread(coro):
    """Run an asyncio coroutine on its own loop (the Processor, Store and SQLAlchemy are
    asyncio-native; no Twisted is needed here)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@dataclass
class World:
    store: Store
    processor: Processor
    engine: object
    gift: list[str]
    loyalty: list[str]
    keys = itertools.count(1)

    async def send(self, op: Op, card: str, amount: int = 0, **kw) -> str:
        kw.setdefault("key", f"T:{TERM}:{MERCH}:{next(self.keys)}:20260101")
        req = Request(op=op, card=card, amount=amount, terminal=TERM, merchant=MERCH, **kw)
        return (await self.processor.process(req)).code

    def trimmer(self, policy: TrimPolicy = ALL_OLD) -> JournalTrimmer:
        return JournalTrimmer(self.store, self.engine, policy,  # type: ignore[arg-type]
                              clock=lambda: time.time() + 60)

    async def drain(self) -> int:
        reader = FeedReader(self.store, "gw", claim_idle_ms=0)
        await reader.ensure_group()
        return await FeedConsumer(reader, self.engine).drain()  # type: ignore[arg-type]

    async def journal(self, card: str):
        return [e async for e in entries(self.store, cards.journal_key(cards.card_id(card)))]

    async def audits(self) -> AuditReport:
        report = AuditReport()
        backoffice = BackofficeAudit(self.store, self.engine, report)  # type: ignore[arg-type]
        await backoffice.begin()
        await audit(self.store, report, check_page=backoffice.check_page)
        return report

    async def sql_ids(self, card: str) -> set[str]:
        t = schema.journal_entries.c
        async with self.engine.connect() as conn:  # type: ignore[attr-defined]
            rows = await conn.execute(select(t.entry_id).where(
                t.card_id == cards.card_id(card)))
            return {r[0] for r in rows}


async def make_world(redis_url: str, backoffice_url: str, tmp_path, *, gift=2, loyalty=1,
                     rng=None) -> World:
    config = ledger_config()
    store = await Store.connect(redis_url, pool_size=4)
    engine = create_engine(database_url(config_for(backoffice_url, tmp_path)))
    await upgrade(engine)
    rng = rng or random.Random(5)
    world = World(store, Processor(config, store), engine,
                  [random_number(config, "gift", rng) for _ in range(gift)],
                  [random_number(config, "loyalty", rng) for _ in range(loyalty)])
    for program, numbers in (("gift", world.gift), ("loyalty", world.loyalty)):
        for number in numbers:
            await cards.issue_card(store, config.programs[program], number)
    for number in world.gift:
        assert await world.send(Op.ACTIVATE, number, 10_000) == "00"
    for number in world.loyalty:
        assert await world.send(Op.ACTIVATE, number) == "00"
    return world


async def close_world(world: World) -> None:
    await world.store.close()
    await world.engine.dispose()  # type: ignore[attr-defined]


async def traffic(world: World, rounds: int) -> None:
    for i in range(rounds):
        for number in world.gift:
            assert await world.send(Op.REDEEM, number, 100 + i) == "00"
            assert await world.send(Op.RELOAD, number, 50) == "00"
        for number in world.loyalty:
            assert await world.send(Op.EARN, number, 1000 + i) == "00"


# -- folding ------------------------------------------------------------------------------------

def test_trim_folds_what_sql_holds_into_a_checkpoint_and_both_audits_read_it(
        redis_url, backoffice_url, tmp_path):
    async def run():
        world = await make_world(redis_url, backoffice_url, tmp_path)
        try:
            await traffic(world, 5)
            await world.drain()
            card = world.gift[0]
            before = await world.journal(card)
            view = await cards.show_card(world.store, card)
            first = await world.trimmer().run()
            after = await world.journal(card)
            again = await world.trimmer().run()  # idempotent: nothing left to fold
            report = await world.audits()
            # more traffic, ingested: the next trim folds into the same checkpoint
            await traffic(world, 2)
            await world.drain()
            await world.trimmer().run()
            later = await world.journal(card)
            later_report = await world.audits()
            return (before, view, first, after, again, report, later, later_report,
                    await world.sql_ids(card))
        finally:
            await close_world(world)

    before, view, first, after, again, report, later, later_report, in_sql = in_thread(run())
    assert len(before) == 11  # activation, 5 redemptions and 5 loads
    checkpoint = after[0]
    assert checkpoint.op == "checkpoint" and checkpoint.id == before[-3].id
    assert (checkpoint.dv, checkpoint.dp) == (0, 0)
    assert (checkpoint.bal, checkpoint.pts, checkpoint.n, checkpoint.t, checkpoint.count) == \
        (before[-3].bal, before[-3].pts, before[-3].n, before[-3].t, 9)
    assert after[1:] == before[-2:]  # the tail, with its own ids and bytes
    assert after[-1].bal == view.balance
    assert (first.cards, first.trimmed, first.folded, first.waiting) == (3, 3, 9 + 9 + 4, 0)
    assert (again.trimmed, again.folded, again.refused) == (0, 0, [])
    assert report.ok, report.differences
    assert later[0].op == "checkpoint" and later[0].count == 13 and len(later) == 3
    assert later_report.ok, later_report.differences
    assert {e.id for e in before} <= in_sql  # SQL keeps every entry folded


def test_the_policy_keeps_recent_entries_and_the_undo_window(redis_url, tmp_path):
    config = parse_config({"journal": {"keep_days": 1, "keep_entries": 3}})
    policy = TrimPolicy.of(config)
    assert policy.keep_entries == 3
    assert policy.keep_seconds == 35 * 86400  # a request record's life, not one day
    longer = TrimPolicy.of(parse_config({"journal": {"keep_days": 90}}))
    assert longer.keep_seconds == 90 * 86400

    async def run():
        world = await make_world(redis_url, f"sqlite:///{tmp_path}/bo.sqlite3", tmp_path,
                                 gift=1, loyalty=0)
        try:
            await traffic(world, 3)
            await world.drain()
            now = time.time()
            soon = JournalTrimmer(world.store, world.engine, policy,  # type: ignore[arg-type]
                                  clock=lambda: now + 34 * 86400)
            young = await soon.run()
            late = JournalTrimmer(world.store, world.engine, policy,  # type: ignore[arg-type]
                                  clock=lambda: now + 36 * 86400)
            old = await late.run()
            return young, old, await world.journal(world.gift[0])
        finally:
            await close_world(world)

    young, old, journal = in_thread(run())
    assert (young.trimmed, young.folded) == (0, 0)  # within the undo window: all kept
    assert (old.trimmed, old.folded) == (1, 4)  # 7 entries: 4 folded, 3 kept
    assert [e.op for e in journal] == ["checkpoint", "reload", "redeem", "reload"]


def test_an_undo_after_the_trim_still_finds_its_original(redis_url, tmp_path):
    """A void names its original by request key (the record), never the journal entry: undoing
    a folded entry gives the value back and the audit stays clean."""
    async def run():
        world = await make_world(redis_url, f"sqlite:///{tmp_path}/bo.sqlite3", tmp_path,
                                 gift=1, loyalty=0)
        try:
            card = world.gift[0]
            assert await world.send(Op.REDEEM, card, 700, key="sale-1") == "00"
            await traffic(world, 3)
            await world.drain()
            trimmed = await world.trimmer().run()
            voided = await world.send(Op.VOID, card, 700, original_key="sale-1")
            await world.drain()
            return (trimmed, voided, await cards.show_card(world.store, card),
                    await world.journal(card), await world.audits())
        finally:
            await close_world(world)

    trimmed, voided, view, journal, report = in_thread(run())
    assert trimmed.folded == 6 and voided == "00"
    assert view.balance == 10_000 - 700 - 3 * 101 + 3 * 50 + 700
    assert journal[-1].op == "void" and journal[0].op == "checkpoint"
    assert report.ok, report.differences


def test_a_long_journal_is_folded_over_several_passes(redis_url, tmp_path, monkeypatch):
    from gateway.ledger import trim

    monkeypatch.setattr(trim, "MAX_FOLD", 3)  # entries read per journal and pass

    async def run():
        world = await make_world(redis_url, f"sqlite:///{tmp_path}/bo.sqlite3", tmp_path,
                                 gift=1, loyalty=0)
        try:
            await traffic(world, 4)  # 9 entries
            await world.drain()
            passes = [(await world.trimmer().run()).folded for _ in range(4)]
            return passes, await world.journal(world.gift[0]), await world.audits()
        finally:
            await close_world(world)

    passes, journal, report = in_thread(run())
    assert passes == [3, 2, 2, 0]  # then the checkpoint and two more at a time
    assert [e.op for e in journal] == ["checkpoint", "redeem", "reload"] and journal[0].count == 7
    assert report.ok, report.differences


# -- never ahead of the back office -------------------------------------------------------------

def test_entries_sql_lacks_are_never_folded_whatever_the_consumer_did(redis_url, tmp_path):
    """A consumer that read a batch and died before its commit leaves those entries out of SQL:
    the trim stops before the first of them. One that committed and died before its ack: SQL
    has them, they fold, and the feed's replay of them writes nothing."""
    async def run():
        world = await make_world(redis_url, f"sqlite:///{tmp_path}/bo.sqlite3", tmp_path,
                                 gift=1, loyalty=0)
        try:
            card = world.gift[0]
            await traffic(world, 4)  # 9 entries
            committed = FeedReader(world.store, "a", count=4)
            await committed.ensure_group()
            await ingest(world.engine, await committed.read(None))  # type: ignore[arg-type]
            # ... died before its ack; another read the next 3 and died before its commit
            await FeedReader(world.store, "b", count=3).read(None)
            first = await world.trimmer().run()
            journal = await world.journal(card)
            ids_sql = await world.sql_ids(card)
            drained = await world.drain()  # both consumers' entries taken over (idle 0)
            second = await world.trimmer().run()
            return (first, journal, ids_sql, drained, second, await world.journal(card),
                    await world.sql_ids(card), await world.audits())
        finally:
            await close_world(world)

    first, journal, ids_sql, drained, second, final, final_sql, report = in_thread(run())
    assert (first.trimmed, first.folded, first.waiting) == (1, 4, 1)
    assert journal[0].op == "checkpoint" and journal[0].count == 4
    assert all(e.id not in ids_sql for e in journal[1:])  # what SQL lacks is all still here
    assert drained == 9  # 4 again (no row twice) + 5
    assert (second.folded, final[0].count, len(final)) == (3, 7, 3)
    assert len(final_sql) == 9
    assert report.ok, report.differences


CARDS, ROUNDS = 50, 50  # 5,050 entries: three batches of `backoffice sync`


def test_a_killed_consumer_process_loses_nothing_to_the_trim(redis_url, tmp_path):
    """`tillgate backoffice sync` killed with SIGKILL in the middle of a long feed; the trim run
    then, and the consumer started again: every entry ever written is in SQL, the journals are
    checkpoint + tail, and `tillgate audit` (ledger and SQL) is clean."""
    import os
    import signal
    import subprocess
    import sys

    db = tmp_path / "bo.sqlite3"
    conf = tmp_path / "tillgate.toml"
    conf.write_text(f'[gateway]\ndata_dir = "{tmp_path}/var"\n[redis]\nurl = "{redis_url}"\n'
                    f'[backoffice]\nurl = "sqlite:///{db}"\n'
                    "[journal]\nkeep_entries = 1\nkeep_days = 1\n")

    async def load():
        world = await make_world(redis_url, f"sqlite:///{db}", tmp_path, gift=CARDS,
                                 loyalty=0)
        try:
            await traffic(world, ROUNDS)  # more entries than two of the consumer's batches
        finally:
            await close_world(world)

    def counted() -> int:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            return int(conn.execute("SELECT count(*) FROM journal_entries").fetchone()[0])

    in_thread(load())
    cli = [sys.executable, "-m", "gateway.cli.main"]
    sync = subprocess.Popen([*cli, "backoffice", "sync", "--config", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while counted() == 0:  # the first batch is committed: kill it in the middle
            assert time.monotonic() < deadline, "the consumer wrote nothing"
            time.sleep(0.005)
    finally:
        os.kill(sync.pid, signal.SIGKILL)
        sync.wait()
    at_kill = counted()

    async def trim_with_the_clock_ahead():
        world = World(await Store.connect(redis_url), None,  # type: ignore[arg-type]
                      create_engine(database_url(config_for(f"sqlite:///{db}", tmp_path))),
                      [], [])
        try:
            policy = TrimPolicy(keep_entries=1, keep_seconds=0)
            return await world.trimmer(policy).run()
        finally:
            await close_world(world)

    trimmed = in_thread(trim_with_the_clock_ahead())
    again = subprocess.run([*cli, "backoffice", "sync", "--once", "--config", str(conf)],
                           capture_output=True, text=True, timeout=60)
    audited = subprocess.run([*cli, "audit", "--config", str(conf)], capture_output=True,
                             text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    total = CARDS * (1 + 2 * ROUNDS)
    assert 0 < at_kill < total, at_kill
    assert 0 < trimmed.folded <= at_kill
    assert counted() == total
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert f"audited {CARDS} cards" in audited.stdout


# -- beside live traffic ------------------------------------------------------------------------

def test_operations_during_trims_lose_and_double_nothing(redis_url, tmp_path):
    async def run():
        world = await make_world(redis_url, f"sqlite:///{tmp_path}/bo.sqlite3", tmp_path,
                                 gift=3, loyalty=1)
        try:
            await traffic(world, 3)
            await world.drain()
            policy = TrimPolicy(keep_entries=1, keep_seconds=0)
            stop = asyncio.Event()

            rounds: list[TrimReport] = []

            async def trim_again_and_again() -> None:
                while not stop.is_set():
                    await world.drain()
                    rounds.append(await world.trimmer(policy).run())

            trimming = asyncio.ensure_future(trim_again_and_again())
            sent, waves = [], 0
            # waves of requests in flight at once, until trims ran among them several times
            while waves < 6 or len(rounds) < 3:
                wave = [world.send(op, number, amount)
                        for number in world.gift for op, amount in
                        ((Op.REDEEM, 30), (Op.RELOAD, 20), (Op.REDEEM, 10))]
                wave += [world.send(Op.EARN, n, 500) for n in world.loyalty]
                sent += await asyncio.gather(*wave)
                waves += 1
            stop.set()
            await trimming
            await world.drain()
            await world.trimmer(policy).run()
            views = [await cards.show_card(world.store, n) for n in world.gift + world.loyalty]
            journals = [await world.journal(n) for n in world.gift + world.loyalty]
            return sent, waves, rounds, views, journals, await world.audits()
        finally:
            await close_world(world)

    sent, waves, rounds, views, journals, report = in_thread(run())
    assert set(sent) == {"00"} and sum(r.folded for r in rounds) > 0
    for view in views[:3]:
        assert view.balance == 10_000 - 3 * 101 + 3 * 50 + waves * (-30 + 20 - 10)
    for journal, view in zip(journals, views, strict=True):
        assert [e.op for e in journal][:1] == ["checkpoint"] and len(journal) == 2
        assert (journal[-1].bal, journal[-1].pts) == (view.balance, view.points)
    assert journals[0][0].count == 1 + 6 + 3 * waves - 1
    assert report.ok, report.differences


# -- the property -------------------------------------------------------------------------------

STEP = st.one_of(
    st.tuples(st.just("op"), st.sampled_from(["redeem", "reload", "earn", "predeem", "void",
                                              "reverse", "tier"]),
              st.integers(0, 2), st.integers(1, 4000)),
    st.tuples(st.just("ingest"), st.integers(1, 12)),
    st.tuples(st.just("trim"), st.integers(1, 4)),
    st.tuples(st.just("both"), st.integers(1, 4), st.integers(1, 6)),  # trim during a wave
    st.tuples(st.just("lost"), st.integers(1, 5)),  # a consumer reads and dies uncommitted
)


class Model:
    """The test's side of the property: what was sent, to pick undo targets from."""

    def __init__(self, world: World):
        self.world = world
        self.keys: list[tuple[str, str]] = []  # (card, request key) of approved changes
        self.consumers = itertools.count()

    def card(self, op: str, which: int) -> str:
        loyal = op in ("earn", "predeem", "tier")
        pool = self.world.loyalty if loyal else self.world.gift
        return pool[which % len(pool)]

    async def operate(self, op: str, which: int, amount: int) -> None:
        w = self.world
        key = f"P:{TERM}:{MERCH}:{next(w.keys)}:20260101"
        if op in ("void", "reverse"):
            if not self.keys:
                return
            card, original = self.keys[amount % len(self.keys)]
            kind = Op.VOID if op == "void" else Op.REVERSAL
            await w.send(kind, card, 0, key=key, original_key=original)
            return
        card = self.card(op, which)
        kind = {"redeem": Op.REDEEM, "reload": Op.RELOAD, "earn": Op.EARN, "tier": Op.EARN,
                "predeem": Op.REDEEM_POINTS}[op]
        amount = amount * 40 if op == "tier" else (amount // 40 + 1 if op == "predeem"
                                                  else amount)
        if await w.send(kind, card, amount, key=key) == "00":
            self.keys.append((card, key))

    async def lose_a_batch(self, count: int) -> None:
        reader = FeedReader(self.world.store, f"lost-{next(self.consumers)}", count=count)
        await reader.ensure_group()
        await reader.read(None)

    async def ingest(self, count: int) -> None:
        reader = FeedReader(self.world.store, "steady", count=count, claim_idle_ms=0)
        await reader.ensure_group()
        await FeedConsumer(reader, self.world.engine).step(None)  # type: ignore[arg-type]


async def check_step(world: World, written: dict[str, set[str]]) -> None:
    """At every step: each card's state = its checkpoint + the entries after it, every entry's
    figures the running sum, and every entry ever written is in the journal or SQL."""
    report = await audit(world.store)
    assert report.ok, report.differences
    for number in world.gift + world.loyalty:
        journal = await world.journal(number)
        view = await cards.show_card(world.store, number)
        assert view is not None
        start = journal[0] if journal and journal[0].op == "checkpoint" else None
        bal = (start.bal if start else 0) + sum(e.dv for e in journal if e is not start)
        pts = (start.pts if start else 0) + sum(e.dp for e in journal if e is not start)
        assert (bal, pts) == (view.balance, view.points)
        held = {e.id for e in journal if e is not start}
        written.setdefault(number, set()).update(held)
        missing = written[number] - held - await world.sql_ids(number)
        assert not missing, f"entries lost: {missing}"


async def play(world: World, plan) -> int:
    """The steps, checked after each, then the final checks; the entries the steps folded."""
    model = Model(world)
    written: dict[str, set[str]] = {}
    folded = 0
    for step in plan:
        if step[0] == "op":
            await model.operate(*step[1:])
        elif step[0] == "ingest":
            await model.ingest(step[1])
        elif step[0] == "lost":
            await model.lose_a_batch(step[1])
        elif step[0] == "trim":
            folded += (await world.trimmer(TrimPolicy(step[1], 0)).run()).folded
        else:
            wave = [model.operate(op, i, 100 + i) for i in range(step[2])
                    for op in ("redeem", "earn")]
            report, *_ = await asyncio.gather(world.trimmer(TrimPolicy(step[1], 0)).run(),
                                              *wave)
            folded += report.folded
        await check_step(world, written)
    await world.drain()  # the back office catches up (lost batches taken over)
    await world.trimmer().run()
    report = await world.audits()
    assert report.ok, report.differences
    for number in world.gift + world.loyalty:  # SQL's copy is complete
        journal = await world.journal(number)
        in_sql = await world.sql_ids(number)
        assert written[number] <= in_sql | {e.id for e in journal}
        assert {e.id for e in journal if e.op != "checkpoint"} <= in_sql
        count = journal[0].count if journal[0].op == "checkpoint" else 0
        assert len(in_sql) == count + len(journal) - (1 if count else 0)
    return folded


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plan=st.lists(STEP, min_size=5, max_size=40))
def test_balance_is_the_checkpoint_plus_the_rest_under_random_trims(redis_client, redis_url,
                                                                   tmp_path, plan):
    redis_client.flushall()
    db = tmp_path / "property.sqlite3"

    async def run():
        world = await make_world(redis_url, f"sqlite:///{db}", tmp_path)
        try:
            async with world.engine.begin() as conn:  # type: ignore[attr-defined]
                await conn.execute(text("DELETE FROM journal_entries"))
                await conn.execute(text("DELETE FROM cards"))
            return await play(world, plan)
        finally:
            await close_world(world)

    event("entries folded during the steps: " + ("some" if in_thread(run()) else "none"))


# -- inside serve --------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_a_running_gateway_trims_what_its_back_office_ingested(
        ledger, tillgate_inprocess_factory, redis_url):  # noqa: F811
    ledger.processor.clock = lambda: time.time() - 100 * 86400  # entries of 100 days ago
    card = await ledger.issue("gift", activate=5000)
    for amount in (100, 200, 300):
        assert (await ledger.send(Op.REDEEM, card, amount)).code == "00"
    trimming = (await tillgate_inprocess_factory(
        redis_url=redis_url,
        extra="[journal]\ntrim = true\ntrim_interval = 1\nkeep_entries = 1\n")).gateway
    journal_key = cards.journal_key(cards.card_id(card))
    deadline = time.monotonic() + 20
    while True:  # its consumer ingests, then a pass (one a second) folds
        journal = await ledger.call(_journal(ledger.store, journal_key))
        if journal[0].op == "checkpoint":
            break
        assert time.monotonic() < deadline, "nothing trimmed within 20 s"
        await deferLater(reactor, 0.05, lambda: None)
    assert [e.op for e in journal] == ["checkpoint", "redeem"]
    assert (journal[0].count, journal[0].bal, journal[-1].bal) == (3, 4700, 4400)
    assert trimming.journal_trim.runs >= 1


async def _journal(store, key):
    return [e async for e in entries(store, key)]


# -- the script alone, and the config -----------------------------------------------------------

def test_the_script_refuses_a_journal_that_does_not_add_up(redis_url, redis_client, tmp_path):
    async def run():
        world = await make_world(redis_url, f"sqlite:///{tmp_path}/bo.sqlite3", tmp_path,
                                 gift=1, loyalty=0)
        try:
            card = world.gift[0]
            await traffic(world, 2)
            key = cards.journal_key(cards.card_id(card))
            journal = await world.journal(card)
            await world.drain()
            # an entry written behind the ledger's back (and copied to SQL): its figures do
            # not follow from the entries before it
            bad = msgpack.packb({"op": "redeem", "dv": -1, "dp": 0, "bal": 123, "pts": 0,
                                 "n": 99, "t": 1, "ch": cards.card_id(card)})
            jid = await world.store.client.xadd(key, {"e": bad})
            await ingest(world.engine, [FedEntry(  # type: ignore[arg-type]
                "x", "0-1", {b"e": bad, b"j": jid, b"p": b"gift"})])
            await traffic(world, 1)
            await world.drain()
            tail = await world.journal(card)
            refused = await fold(world.store, key, tail[-2].id, 1)
            fine = await fold(world.store, key, journal[-1].id, 1)
            report = TrimReport()
            await world.trimmer().trim_keys([key], report)
            return refused, fine, report, await world.journal(card)
        finally:
            await close_world(world)

    refused, fine, report, journal = in_thread(run())
    assert refused.entries == 0 and refused.detail.startswith("fault: entry")
    assert fine.entries == 5 and journal[0].op == "checkpoint"  # up to the bad one: fine
    assert len(report.refused) == 1 and "does not sum" in report.refused[0]


@pytest.mark.parametrize(("section", "error"), [
    ({"keep_days": 0}, "journal.keep_days: must be"),
    ({"keep_entries": "ten"}, "journal.keep_entries: must be"),
    ({"trim": "yes"}, "journal.trim: must be true or false"),
    ({"trim_interval": -1}, "journal.trim_interval: must be"),
    ({"keep": 3}, "journal.keep"),
])
def test_journal_settings_are_checked_by_path(section, error):
    with pytest.raises(ConfigError) as caught:
        parse_config({"journal": section})
    assert any(e.startswith(error) for e in caught.value.errors), caught.value.errors


def test_the_member_page_names_the_checkpoint():
    from gateway.web.members.card import _entry

    checkpoint = Entry.decode(b"1-0", msgpack.packb({
        "op": "checkpoint", "dv": 0, "dp": 0, "bal": 2500, "pts": 0, "n": 7, "t": 1, "cnt": 7}))
    assert (checkpoint.is_checkpoint, checkpoint.count) == (True, 7)
    assert _entry(checkpoint)["what"] == "Balance brought forward"
    assert checkpoint.as_dict()["count"] == 7


def test_the_default_config_never_trims():
    config = ledger_config()
    assert config.journal.trim is False
    assert (config.journal.keep_days, config.journal.keep_entries) == (60, 50)


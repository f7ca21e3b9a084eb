"""The per-day summaries (gateway/backoffice/summaries.py) on a real SQLite and a real
PostgreSQL: the `analytics` and `staff` figures read from them equal those aggregated over the
journal, on a random journal written through the feed's ingest (batches replayed, as the
at-least-once feed does), over a change to summer time in a program's zone, with weeks and
months cut by the period, per merchant; migration 0013 builds the same summaries from a journal
written before it; and a report in a zone other than the summaries' reads the journal."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

import msgpack
import pytest_twisted
from sqlalchemy import func, insert, select
from test_backoffice_schema import config_for

from gateway.backoffice import schema
from gateway.backoffice.db import create_engine, database_url
from gateway.backoffice.feed import FedEntry
from gateway.backoffice.ingest import ENTRY_COLUMNS, ingest
from gateway.backoffice.migrate import upgrade
from gateway.backoffice.reports import analytics, staff, summarised
from gateway.backoffice.reports.period import Period, zone
from gateway.backoffice.reports.query import Query
from gateway.reactor import deferred_from_coro

ZONES = {"gift": "Europe/Paris", "loyalty": "UTC"}
MERCHANTS = ("M1", "M2", "M3")
OPIDS = (None, "ANNA", "BERT", "cli:carl")
# 2027-03-28 is the change to summer time in Paris; the entries span February to April
START = int(dt.datetime(2027, 2, 20, tzinfo=dt.UTC).timestamp())
SPAN = 60 * 86400


def random_journal(count: int, seed: int) -> list[tuple]:
    """Rows of journal_entries (ENTRY_COLUMNS) of 40 gift and loyalty cards, in card order."""
    rng = random.Random(seed)
    rows = []
    for number in range(40):
        program = "gift" if number % 2 else "loyalty"
        card = f"{number:032x}"
        times = sorted(START + rng.randrange(SPAN) for _ in range(count // 40))
        times += [START + 36 * 86400 + 3600 * hour for hour in range(2)]  # 2027-03-28 ...
        for seq, t in enumerate(sorted(times), start=1):
            op = "activate" if seq == 1 else rng.choice(
                ("reload", "redeem", "earn", "add_points", "redeem_points", "void",
                 "status:suspended", "refund"))
            dv = {"activate": 2500, "reload": 1000, "redeem": -rng.randrange(1, 900),
                  "refund": 300}.get(op, 0)
            dp = {"earn": rng.randrange(1, 99), "add_points": 7, "redeem_points": -50}.get(op, 0)
            reward = rng.choice((None, "MUG")) if op in ("redeem_points", "void") else None
            rows.append((card, f"{t * 1000}-{seq}", seq, op, "60******12", program, dv, dp, 0,
                         0, "T1", rng.choice(MERCHANTS), f"k{number}-{seq}", t, None,
                         rng.choice(OPIDS), reward, None, None))
    return rows


def fed(rows: list[tuple]) -> list[FedEntry]:
    """The rows as the feed carries them (gateway/ledger/feed.py's fields)."""
    entries = []
    for row in rows:
        r = dict(zip(ENTRY_COLUMNS, row, strict=True))
        e = {"ch": r["card_id"], "n": r["seq"], "op": r["op"], "card": r["card_mask"],
             "dv": r["dv"], "dp": r["dp"], "bal": r["bal"], "pts": r["pts"],
             "term": r["terminal"], "merch": r["merchant"], "key": r["request_key"],
             "t": r["t"], "opid": r["opid"], "rw": r["reward"]}
        entries.append(FedEntry("s", r["entry_id"], {b"e": msgpack.packb(e),
                                                     b"j": r["entry_id"].encode(),
                                                     b"p": r["program"].encode()}))
    return entries


def queries(seed: int) -> Iterator[tuple[Query, str]]:
    """Random periods in each program's zone, by day, week and month, all merchants or one."""
    rng = random.Random(seed)
    first_day = dt.date(2027, 2, 18)
    for _ in range(12):
        program = rng.choice(sorted(ZONES))
        first = first_day + dt.timedelta(days=rng.randrange(40))
        last = first + dt.timedelta(days=rng.randrange(1, 60))
        merchants = rng.choice(((), ("M2",)))
        for by in ("day", "week", "month"):
            yield Query(period=Period(first, last, zone(ZONES[program])), programs=(program,),
                        merchants=merchants, opids=rng.choice(((), ("ANNA",)))), by


async def compare(engine) -> int:
    """Every query's figures from the summaries and from the journal: equal. The number
    compared."""
    compared = 0
    async with engine.connect() as conn:
        for query, by in queries(7):
            assert await summarised.usable(conn, query.programs, query.period)
            analytics_query = Query(period=query.period, programs=query.programs,
                                    merchants=query.merchants)
            assert (await summarised.analytics(conn, analytics_query, by)
                    == await analytics.from_journal(conn, analytics_query, by)), (query, by)
            assert (await summarised.staff(conn, query)
                    == await staff.from_journal(conn, query)), query
            compared += 1
        j, m = schema.journal_entries.c, schema.card_merchants.c
        assert (set((await conn.execute(select(j.merchant, j.card_id).distinct())).all())
                == set((await conn.execute(select(m.merchant, m.card_id))).all()))
    return compared


@pytest_twisted.ensureDeferred
async def test_figures_from_the_summaries_equal_the_journals(backoffice_url, tmp_path):
    rows = random_journal(1200, seed=1)

    async def check():
        engine = create_engine(database_url(config_for(backoffice_url, tmp_path)))
        try:
            await upgrade(engine)
            entries = fed(rows)
            random.Random(2).shuffle(entries)  # cards interleaved, as the feed's streams are
            for start in range(0, len(entries), 97):
                await ingest(engine, entries[start:start + 97], ZONES)
            # the feed is at least once: batches read again after a crash add nothing
            await ingest(engine, entries[100:400], ZONES)
            await ingest(engine, entries[-5:], ZONES)
            async with engine.connect() as conn:
                summed = (await conn.execute(select(func.sum(schema.day_sums.c.entries)))
                          ).scalar()
            return summed, await compare(engine)
        finally:
            await engine.dispose()

    summed, compared = await deferred_from_coro(check())
    assert summed == len(rows)  # every entry once
    assert compared == 36


@pytest_twisted.ensureDeferred
async def test_the_migration_builds_the_summaries_of_the_journal(backoffice_url, tmp_path):
    rows = random_journal(800, seed=3)

    async def check():
        engine = create_engine(database_url(config_for(backoffice_url, tmp_path)))
        try:
            await upgrade(engine, "0012")  # a back office of yesterday, with its journal
            async with engine.begin() as conn:
                await conn.execute(insert(schema.journal_entries),
                                   [dict(zip(ENTRY_COLUMNS, row, strict=True)) for row in rows])
            await upgrade(engine, zones=ZONES)
            async with engine.connect() as conn:
                zones = dict((await conn.execute(select(schema.summary_zones))).all())
            return zones, await compare(engine)
        finally:
            await engine.dispose()

    zones, compared = await deferred_from_coro(check())
    assert zones == ZONES
    assert compared == 36


@pytest_twisted.ensureDeferred
async def test_a_report_in_another_zone_reads_the_journal(backoffice_url, tmp_path):
    rows = random_journal(400, seed=5)

    async def check():
        engine = create_engine(database_url(config_for(backoffice_url, tmp_path)))
        try:
            await upgrade(engine)
            await ingest(engine, fed(rows), ZONES)
            paris = Period(dt.date(2027, 3, 1), dt.date(2027, 3, 31), zone("Europe/Paris"))
            utc = Period(paris.first, paris.last, dt.UTC)
            async with engine.connect() as conn:
                return [await summarised.usable(conn, programs, period)
                        for programs, period in ((("gift",), paris), (("gift",), utc),
                                                 (("loyalty",), utc), ((), utc), ((), paris),
                                                 (("other",), paris))]
        finally:
            await engine.dispose()

    assert await deferred_from_coro(check()) == [True, False, True, False, False, True]

"""Back-office reports over a large journal: a SQLite back office (and a PostgreSQL one, given
`--postgres URL`) filled with 1,000,000 seeded, realistic entries (100,000 cards over one year:
an activation each, then redemptions, reloads and loyalty earns at 10 stores of 4 tills each,
20,000 customers holding 30,000 of the cards), then every report run a few times through the
same code as `tillgate reports` (rows streamed and written as CSV to nowhere); medians printed.

    python bench/bench_reports.py [--entries 1000000] [--rounds 3] [--postgres URL]

The database is built by the project's migrations (so with its indexes), then filled with
executemany (SQLite) or COPY (PostgreSQL). `--keep DIR` keeps the SQLite file there and reuses
it on the next run (filling takes a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import heapq
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy.engine import make_url  # noqa: E402

from gateway.backoffice.db import create_engine, describe  # noqa: E402
from gateway.backoffice.migrate import head_revision, upgrade  # noqa: E402
from gateway.backoffice.reports.output import report_chunks  # noqa: E402
from gateway.backoffice.reports.query import parse_query  # noqa: E402
from gateway.backoffice.reports.registry import REPORTS  # noqa: E402
from gateway.backoffice.summaries import configured_zones, rebuild  # noqa: E402
from gateway.config.model import load_config  # noqa: E402

YEAR_START = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp())
YEAR = 365 * 86400
SEED = 16
MERCHANTS = [f"STORE{n:010d}" for n in range(1, 11)]
CUSTOMER_TYPES = ["basic", "silver", "gold"]

# (label, report, parameters): what a back office asks of it every day.
RUNS = [
    ("transactions, 1 day", "transactions", {"from": ["2026-06-15"], "to": ["2026-06-15"]}),
    ("transactions, 1 month, 1 store", "transactions",
     {"from": ["2026-06-01"], "to": ["2026-06-30"], "merchant": [MERCHANTS[3]]}),
    ("transactions, 1 month", "transactions", {"from": ["2026-06-01"], "to": ["2026-06-30"]}),
    ("transactions, 1 month, by day (Paris)", "transactions",
     {"from": ["2026-06-01"], "to": ["2026-06-30"], "group-by": ["day"],
      "tz": ["Europe/Paris"]}),
    ("transactions, 1 year, by merchant", "transactions",
     {"from": ["2026-01-01"], "to": ["2026-12-31"], "group-by": ["merchant"]}),
    ("transactions, 1 year, every entry", "transactions",
     {"from": ["2026-01-01"], "to": ["2026-12-31"]}),
    ("liability, as of 2026-06-30", "liability", {"to": ["2026-06-30"]}),
    ("activations, 1 month", "activations", {"from": ["2026-06-01"], "to": ["2026-06-30"]}),
    ("customer-activity, 1 month", "customer-activity",
     {"from": ["2026-06-01"], "to": ["2026-06-30"], "program": ["gift", "loyalty"]}),
    ("tiers, 1 year", "tiers", {"from": ["2026-01-01"], "to": ["2026-12-31"]}),
    ("analytics, gift, 1 month by day", "analytics",
     {"from": ["2026-06-01"], "to": ["2026-06-30"], "program": ["gift"]}),
    ("analytics, gift, 1 year by week", "analytics",
     {"from": ["2026-01-01"], "to": ["2026-12-31"], "program": ["gift"], "group-by": ["week"]}),
    ("analytics, loyalty, 1 year by month, 1 store", "analytics",
     {"from": ["2026-01-01"], "to": ["2026-12-31"], "program": ["loyalty"],
      "group-by": ["month"], "merchant": [MERCHANTS[3]]}),
    ("staff, 1 month", "staff", {"from": ["2026-06-01"], "to": ["2026-06-30"]}),
    ("staff, 1 year", "staff", {"from": ["2026-01-01"], "to": ["2026-12-31"]}),
]


def journal(entries: int, cards: int, rng: random.Random):
    """Rows of journal_entries in time order, as the feed writes them (so the table's rows lie
    in time order on disk, as in a real back office): each card an activation, then its other
    entries at random later times of the year (a loyalty card earns, a gift card mostly
    redeems, sometimes reloads)."""
    per_card = entries // cards
    timelines = (_card(number, sorted(YEAR_START + rng.randrange(YEAR) for _ in range(per_card)),
                       rng) for number in range(cards))
    for _t, row in heapq.merge(*timelines, key=lambda item: item[0]):
        yield row


def _card(number: int, times: list[int], rng: random.Random):
    card_id = f"{number:032x}"
    loyalty = number % 4 == 0
    program = "loyalty" if loyalty else "gift"
    mask = f"{'77' if loyalty else '603953'}******{number % 10000:04d}"
    bal = pts = 0
    for seq, t in enumerate(times, start=1):
        merchant = rng.choice(MERCHANTS)
        terminal = f"T{MERCHANTS.index(merchant):03d}{rng.randrange(4)}"
        if seq == 1:
            op, dv, dp = "activate", (0 if loyalty else rng.choice((2500, 5000, 10000))), 0
        elif loyalty:
            op, dv, dp = "earn", 0, rng.randrange(1, 200)
        elif bal > 0 and rng.random() < 0.8:
            op, dv, dp = "redeem", -min(bal, rng.randrange(100, 5000)), 0
        else:
            op, dv, dp = "reload", rng.choice((1000, 2500)), 0
        bal, pts = bal + dv, pts + dp
        # the staff member at the till: two per till
        yield t, (card_id, f"{t * 1000}-{seq}", seq, op, mask, program, dv, dp, bal, pts,
                  terminal, merchant, f"k{number}-{seq}", t, None, f"{terminal}-{seq % 2}")


JOURNAL_COLUMNS = ("card_id", "entry_id", "seq", "op", "card_mask", "program", "dv", "dp", "bal",
                   "pts", "terminal", "merchant", "request_key", "t", "undo", "opid")


def holders(cards: int, customers: int, rng: random.Random):
    linked = rng.sample(range(cards), customers * 3 // 2)
    for i, number in enumerate(linked):
        yield (f"{number:032x}", i % customers + 1, "603953******0000", "gift", YEAR_START, "bench")


async def migrate(url) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def summarise(url, programs) -> None:
    """The per-day summaries of the journal filled in (the feed writes them as it writes the
    journal; a bench fill writes the journal alone): gateway/backoffice/summaries.py."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(rebuild, configured_zones(programs))
    finally:
        await engine.dispose()


def fill_sqlite(path: Path, entries: int, cards: int, customers: int) -> None:
    rng = random.Random(SEED)
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA synchronous=OFF")  # a bench fill, not a ledger
        insert_journal(db, journal(entries, cards, rng))
        db.executemany("INSERT INTO customer_types (id, name, description) VALUES (?, ?, '')",
                       enumerate(CUSTOMER_TYPES, start=1))
        db.executemany("INSERT INTO customers (id, code, name, customer_type_id, created_t) "
                       "VALUES (?, ?, ?, ?, ?)",
                       ((i, f"C{i:06d}", f"Customer {i}", i % 3 + 1, YEAR_START)
                        for i in range(1, customers + 1)))
        db.executemany("INSERT INTO card_holders VALUES (?,?,?,?,?,?)",
                       holders(cards, customers, rng))
        db.commit()
        db.execute("ANALYZE")
    finally:
        db.close()


def insert_journal(db: sqlite3.Connection, rows) -> None:
    db.executemany(f"INSERT INTO journal_entries ({', '.join(JOURNAL_COLUMNS)}) VALUES "
                   f"({', '.join('?' * len(JOURNAL_COLUMNS))})", rows)


async def fill_postgres(url, entries: int, cards: int, customers: int) -> None:
    import asyncpg

    rng = random.Random(SEED)
    conn = await asyncpg.connect(host=url.host, port=url.port, user=url.username,
                                 database=url.database, password=url.password)
    try:
        await conn.copy_records_to_table("journal_entries", columns=JOURNAL_COLUMNS,
                                         records=list(journal(entries, cards, rng)))
        await conn.copy_records_to_table(
            "customer_types", columns=["id", "name", "description"],
            records=[(i, n, "") for i, n in enumerate(CUSTOMER_TYPES, start=1)])
        await conn.copy_records_to_table(
            "customers", columns=["id", "code", "name", "customer_type_id", "created_t"],
            records=[(i, f"C{i:06d}", f"Customer {i}", i % 3 + 1, YEAR_START)
                     for i in range(1, customers + 1)])
        await conn.copy_records_to_table("card_holders",
                                         records=list(holders(cards, customers, rng)))
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def time_reports(url, rounds: int) -> None:
    config = load_config(ROOT / "config" / "tillgate.toml")
    engine = create_engine(url)
    try:
        for label, name, params in RUNS:
            report = REPORTS[name]
            query = parse_query(params, report.takes, as_of=report.as_of)
            seconds, size = [], 0
            for _ in range(rounds):
                started = time.perf_counter()
                size = 0
                async for chunk in report_chunks(engine, config, report, query, "csv"):
                    size += len(chunk)
                seconds.append(time.perf_counter() - started)
            print(f"  {label:<40} median {statistics.median(seconds):7.3f} s  "
                  f"(min {min(seconds):.3f}, {size / 1e6:.1f} MB of CSV)", flush=True)
    finally:
        await engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", metavar="DIR", help="keep (and reuse) the SQLite file here")
    parser.add_argument("--postgres", metavar="URL", help="an empty PostgreSQL database too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        # named by schema revision: a kept file of an older schema is not reused
        path = folder / f"reports-{args.entries}-{head_revision()}.sqlite3"
        url = make_url(f"sqlite+aiosqlite:///{path}")
        if not path.exists():
            started = time.perf_counter()
            asyncio.run(migrate(url))
            fill_sqlite(path, args.entries, args.cards, args.customers)
            asyncio.run(summarise(url, load_config(ROOT / "config" / "tillgate.toml").programs))
            print(f"SQLite: {args.entries:,} entries filled in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
        print(f"SQLite {path} ({path.stat().st_size / 1e6:.0f} MB), {args.rounds} rounds:")
        asyncio.run(time_reports(url, args.rounds))
        if args.postgres:
            pg = make_url(args.postgres).set(drivername="postgresql+asyncpg")
            started = time.perf_counter()
            asyncio.run(migrate(pg))
            asyncio.run(fill_postgres(pg, args.entries, args.cards, args.customers))
            asyncio.run(summarise(pg, load_config(ROOT / "config" / "tillgate.toml").programs))
            print(f"PostgreSQL: {args.entries:,} entries filled in "
                  f"{time.perf_counter() - started:.0f} s")
            print(f"PostgreSQL {describe(pg)}, {args.rounds} rounds:")
            asyncio.run(time_reports(pg, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())

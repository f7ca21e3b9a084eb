"""Redis memory per active card before and after journal trimming (docs/benchmarks.md section
21; gateway/ledger/trim.py, gateway/backoffice/trim.py).

    python bench/bench_trim.py [--cards 10000] [--entries 50] [--keep 10]

A private redis-server (the one the embedded store would use) and a fresh SQLite back office.
`--cards` gift cards each get `--entries` journal entries (an activation, then sales and loads
alternating, through the Processor as tills' requests are), the feed is drained into SQL, and
then one trimming pass (with its clock a year ahead, so every entry is old enough) leaves each
journal a checkpoint and `--keep` entries. Printed: MEMORY USAGE of one card's keys (state,
journal) and INFO memory's used_memory over all cards, before and after, per card; the pass's
time and cards per second; and the audit (ledger and SQL) after, which must be clean.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from sqlalchemy.engine import make_url  # noqa: E402
from test_ledger_support import MERCH, TERM, ledger_config, random_number  # noqa: E402

from gateway.backoffice.audit import BackofficeAudit  # noqa: E402
from gateway.backoffice.consumer import FeedConsumer  # noqa: E402
from gateway.backoffice.db import create_engine  # noqa: E402
from gateway.backoffice.feed import FeedReader  # noqa: E402
from gateway.backoffice.migrate import upgrade  # noqa: E402
from gateway.backoffice.trim import JournalTrimmer  # noqa: E402
from gateway.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from gateway.ledger import cards  # noqa: E402
from gateway.ledger.audit import AuditReport, audit  # noqa: E402
from gateway.ledger.processor import Processor  # noqa: E402
from gateway.ledger.store import Store  # noqa: E402
from gateway.ledger.trim import TrimPolicy  # noqa: E402
from protocols.model import Op, Request  # noqa: E402

WAVE = 2000  # requests in flight at once while loading


async def load(store: Store, processor: Processor, numbers: list[str], entries: int) -> None:
    config = processor.config
    for at in range(0, len(numbers), WAVE):
        await asyncio.gather(*(cards.issue_card(store, config.programs["gift"], n)
                               for n in numbers[at:at + WAVE]))
    requests = []
    for i, number in enumerate(numbers):
        requests.append(Request(op=Op.ACTIVATE, card=number, amount=50_000, terminal=TERM,
                                merchant=MERCH, key=f"B:{TERM}:{MERCH}:{i}:a"))
    for step in range(1, entries):
        for i, number in enumerate(numbers):
            requests.append(Request(op=Op.REDEEM if step % 2 else Op.RELOAD, card=number,
                                    amount=100 + step, terminal=TERM, merchant=MERCH,
                                    key=f"B:{TERM}:{MERCH}:{i}:{step}"))
    for at in range(0, len(requests), WAVE):
        answers = await processor.process_many(requests[at:at + WAVE])
        assert all(a.code == "00" for a in answers), {a.code for a in answers}


async def memory(store: Store, number: str) -> tuple[int, dict[str, int]]:
    """INFO memory's used_memory, and MEMORY USAGE of one card's keys."""
    info = await store.client.info("memory")
    cid = cards.card_id(number)
    keys = {"state": cards.state_key(cid), "journal": cards.journal_key(cid)}
    usage = {name: int(await store.client.memory_usage(key, samples=0) or 0)
             for name, key in keys.items()}
    return int(info["used_memory"]), usage


async def run(args: argparse.Namespace, workdir: Path) -> None:
    server = EmbeddedRedis(workdir / "redis", port=free_port(), appendonly=False)
    server.start()
    engine = create_engine(make_url(f"sqlite+aiosqlite:///{workdir}/bo.sqlite3"))
    store = await Store.connect(server.url, pool_size=16)
    try:
        await upgrade(engine)
        config = ledger_config()
        processor = Processor(config, store)
        empty = int((await store.client.info("memory"))["used_memory"])
        numbers = list(dict.fromkeys(random_number(config, "gift") for _ in range(args.cards)))
        started = time.perf_counter()
        await load(store, processor, numbers, args.entries)
        print(f"loaded {len(numbers)} cards x {args.entries} entries in "
              f"{time.perf_counter() - started:.0f} s")
        reader = FeedReader(store, "bench", count=5000)
        await reader.ensure_group()
        started = time.perf_counter()
        ingested = await FeedConsumer(reader, engine).drain()
        print(f"ingested {ingested} entries into SQLite in {time.perf_counter() - started:.0f} s")
        await store.client.memory_purge()
        before, card_before = await memory(store, numbers[0])
        policy = TrimPolicy(keep_entries=args.keep, keep_seconds=0)
        trimmer = JournalTrimmer(store, engine, policy, clock=lambda: time.time() + 365 * 86400)
        started = time.perf_counter()
        report = await trimmer.run()
        took = time.perf_counter() - started
        await store.client.memory_purge()
        after, card_after = await memory(store, numbers[0])
        checked = AuditReport()
        backoffice = BackofficeAudit(store, engine, checked)
        await backoffice.begin()
        await audit(store, checked, check_page=backoffice.check_page)
    finally:
        await store.close()
        await engine.dispose()
        server.stop()
    n = len(numbers)
    print(f"trim pass: {report.trimmed} journals, {report.folded} entries folded in {took:.1f} s "
          f"({n / took:,.0f} cards/s); audit: {checked.cards} cards, "
          f"{'clean' if checked.ok else checked.differences[:3]}")
    print(f"{'':28}{'before':>12}{'after':>12}")
    for name in ("state", "journal"):
        print(f"MEMORY USAGE {name:<15}{card_before[name]:>12,}{card_after[name]:>12,}")
    per_before, per_after = (before - empty) / n, (after - empty) / n
    print(f"{'used_memory per card':<28}{per_before:>12,.0f}{per_after:>12,.0f}")
    print(f"{'used_memory, all cards':<28}{before - empty:>12,}{after - empty:>12,}")
    assert checked.ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--keep", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-trim-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()

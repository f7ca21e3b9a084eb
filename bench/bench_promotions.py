"""Earn with one promotion beside earn without, same run, same redis-server (issue 19: the earn
path with a promotion stays within 15 % of today's CPU per earn).

Two Processors over one Store: the default configuration, and the same with one promotion that
applies to every earn (double points, every day, every merchant: the promotion's worst case,
since `promo` is then packed into every call and applied by every script). Each round runs
`--calls` earns on each, alternating which goes first; per earn it reports the gateway's CPU
(time.process_time of this process: parameters, packing, the answer) and redis-server's CPU
(INFO cpu, used_cpu_user + used_cpu_sys), medians of `--rounds`.

    python bench/bench_promotions.py [--calls 20000] [--window 64] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.config.model import Config, parse_config  # noqa: E402
from gateway.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from gateway.ledger import cards  # noqa: E402
from gateway.ledger.processor import Processor  # noqa: E402
from gateway.ledger.store import Store  # noqa: E402
from protocols.carddata import generate_card_number  # noqa: E402
from protocols.model import Op, Request  # noqa: E402

CARDS = 256
DOUBLE_EVERY_DAY = {"id": "DOUBLE", "kind": "multiplier", "multiplier": 2}


def configs() -> tuple[Config, Config]:
    with open(ROOT / "config" / "tillgate.toml", "rb") as f:
        data = tomllib.load(f)
    plain = parse_config(data, "bench")
    data["programs"]["loyalty"]["promotions"] = [DOUBLE_EVERY_DAY]
    return plain, parse_config(data, "bench+promotion")


async def redis_cpu(store: Store) -> float:
    info = await store.command("INFO", "cpu")  # parsed by redis-py's reply callback
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def earns(processor: Processor, loyalty: list[str], n: int, window: int,
                tag: str) -> None:
    seq = 0
    for _ in range(n // window):
        batch = []
        for _ in range(window):
            seq += 1
            batch.append(Request(op=Op.EARN, terminal="TILL0001", merchant="STORE0000000001",
                                 key=f"{tag}:{time.time_ns()}:{seq}",
                                 card=loyalty[seq % len(loyalty)], amount=1234))
        results = await processor.process_many(batch)
        assert results[0].code == "00", results[0]


async def measure(processor: Processor, store: Store, loyalty: list[str], n: int, window: int,
                  tag: str) -> tuple[float, float]:
    """Gateway and redis-server CPU microseconds per earn."""
    cpu0, redis0 = time.process_time(), await redis_cpu(store)
    await earns(processor, loyalty, n, window, tag)
    cpu1, redis1 = time.process_time(), await redis_cpu(store)
    done = n // window * window
    return (cpu1 - cpu0) / done * 1e6, (redis1 - redis0) / done * 1e6


async def main_async(args) -> None:
    plain_config, promo_config = configs()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, port=port, appendonly=False) \
            as server:
        store = await Store.connect(server.url)
        plain, promo = Processor(plain_config, store), Processor(promo_config, store)
        program = plain_config.programs["loyalty"]
        loyalty: list[str] = []
        while len(loyalty) < CARDS:
            card = generate_card_number(program.prefix, program.card_length_max, program.luhn)
            if await cards.issue_card(store, program, card):
                r = await plain.operator_apply(Request(op=Op.ACTIVATE, terminal="B",
                                                       merchant="B", card=card,
                                                       key=f"act:{card}"))
                assert r.code == "00", r
                loyalty.append(card)
        for processor, tag in ((plain, "warm-a"), (promo, "warm-b")):  # scripts loaded, caches
            await earns(processor, loyalty, 4 * args.window, args.window, tag)
        rows: dict[str, list[tuple[float, float]]] = {"without": [], "with one promotion": []}
        for i in range(args.rounds):
            order = [("without", plain), ("with one promotion", promo)]
            for name, processor in order if i % 2 == 0 else reversed(order):
                rows[name].append(await measure(processor, store, loyalty, args.calls,
                                                args.window, f"{name[:4]}{i}"))
        await store.close()
    print(f"earn through the Processor, window {args.window}, {args.calls} earns a round, "
          f"median of {args.rounds} rounds")
    med = {name: (statistics.median(g for g, _ in v), statistics.median(r for _, r in v))
           for name, v in rows.items()}
    for name, (gw, rd) in med.items():
        print(f"  {name:20} gateway {gw:6.1f} us/earn   redis {rd:6.1f} us/earn   "
              f"total {gw + rd:6.1f}")
    base, with_promo = (sum(med["without"]), sum(med["with one promotion"]))
    change = (with_promo / base - 1) * 100
    print(f"  CPU per earn with one promotion: {change:+.1f} % "
          f"({'within' if change <= 15 else 'OVER'} the 15 % budget)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

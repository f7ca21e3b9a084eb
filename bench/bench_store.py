"""Store throughput: redeem and earn scripts per second, beside redis-benchmark's EVALSHA.

Against one redis-server started here (loopback TCP), measures for the redeem and earn scripts
(each call applies a fresh request: new request key, a journal entry, a stored record):

  one-at-a-time   Store.run awaited call by call (each call its own round trip)
  pipelined       `--window` calls made in one loop turn, which the Store sends as one pipeline
  processor       the whole Processor path (claim + card script, two pipelines per batch)

and, in the same run on the same server, redis-benchmark running the same script text (the
prelude + redeem.lua, its argument decoded with cjson instead of cmsgpack because
redis-benchmark cannot send binary arguments) with one client, unpipelined and pipelined
(-P window). Target (issue 3): pipelined Store >= 0.5 x pipelined redis-benchmark.

    python bench/bench_store.py [--calls 20000] [--window 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgpack  # noqa: E402

from gateway.config.model import load_config  # noqa: E402
from gateway.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from gateway.ledger import cards  # noqa: E402
from gateway.ledger.processor import Processor  # noqa: E402
from gateway.ledger.store import Store, load_scripts  # noqa: E402
from protocols.carddata import generate_card_number  # noqa: E402
from protocols.model import Op, Request  # noqa: E402

CARDS = 256
LOAD = 10**12


def params(script: str, key: str, cid: str) -> dict:
    now = int(time.time())
    return {"now": now, "today": 20260101, "ttl": 3600, "ch": cid, "term": "TILL0001",
            "merch": "STORE0000000001", "key": key, "op": script, "amount": 1,
            "auth": "ABC123", "pinreq": 0, "pin": "", "tries": 3, "lock": 0, "maxbal": 0,
            "window": 86400, "exp": 0, "faces": [], "partial": 0, "advice": 0, "points": 1}


class Bench:
    def __init__(self, store: Store, gift: list[str], loyalty: list[str]):
        self.store = store
        self.cards = {"redeem": [cards.card_id(c) for c in gift],
                      "earn": [cards.card_id(c) for c in loyalty]}
        self.seq = 0

    def call(self, script: str):
        self.seq += 1
        ids = self.cards[script]
        cid = ids[self.seq % len(ids)]
        key = f"B:{self.seq}"
        return self.store.run(script, cards.card_keys(cid, key),
                              [msgpack.packb(params(script, key, cid))])

    async def one_at_a_time(self, script: str, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            await self.call(script)
        return n / (time.perf_counter() - start)

    async def pipelined(self, script: str, n: int, window: int) -> float:
        start = time.perf_counter()
        for _ in range(n // window):
            await asyncio.gather(*(self.call(script) for _ in range(window)))
        return (n // window * window) / (time.perf_counter() - start)


async def processor_rate(processor: Processor, gift: list[str], n: int, window: int,
                         op: Op = Op.REDEEM) -> float:
    """Requests/s of `op` (a one-cent redemption, or an inquiry) in pipelined batches."""
    start = time.perf_counter()
    seq = 0
    for _ in range(n // window):
        batch = []
        for _ in range(window):
            seq += 1
            batch.append(Request(op=op, terminal="TILL0001", merchant="STORE0000000001",
                                 key=f"P:{time.time_ns()}:{seq}", card=gift[seq % len(gift)],
                                 amount=1 if op is Op.REDEEM else 0))
        results = await processor.process_many(batch)
        assert results[0].code == "00", results[0]
    return (n // window * window) / (time.perf_counter() - start)


async def prepare(url: str, config, connect=Store.connect) -> tuple[Store, list[str], list[str]]:
    """A store on `url` (`connect`: a Store's, or a ClusterStore's), with CARDS gift and loyalty
    cards, the gift cards loaded far beyond what a run spends."""
    store = await connect(url)
    processor = Processor(config, store)
    gift, loyalty = [], []
    for program_id, out, amount in (("gift", gift, 0), ("loyalty", loyalty, 0)):
        program = config.programs[program_id]
        while len(out) < CARDS:
            card = generate_card_number(program.prefix, program.card_length_max, program.luhn)
            if await cards.issue_card(store, program, card):
                r = await processor.operator_apply(Request(
                    op=Op.ACTIVATE, terminal="B", merchant="B", card=card, amount=amount,
                    key=f"act:{card}"))
                assert r.code == "00", r
                out.append(card)
    for card in gift:  # no balance limit in the way: top up directly, outside the measurement
        await store.command("HINCRBY", cards.state_key(cards.card_id(card)), "bal", LOAD)
        await store.command("XADD", cards.journal_key(cards.card_id(card)), "*", "e",
                            msgpack.packb({"op": "reload", "dv": LOAD, "dp": 0, "bal": LOAD,
                                           "pts": 0}))
    return store, gift, loyalty


def redis_benchmark(port: int, script: str, cid: str, n: int, pipeline: int) -> float:
    """redis-benchmark's rate for the same script text, argument as JSON (-r: fresh keys)."""
    source = load_scripts()[script].source.replace("cmsgpack.unpack(ARGV[1])",
                                                   "cjson.decode(ARGV[1])")
    sha = subprocess.run(["redis-cli", "-p", str(port), "SCRIPT", "LOAD", source],
                         capture_output=True, text=True, check=True).stdout.strip()
    arg = params(script, "k__rand_int__", cid)
    del arg["faces"]  # an empty JSON array decodes to an object-like table; the script needs none
    keys = cards.card_keys(cid, "__rand_int__")
    cmd = ["redis-benchmark", "-p", str(port), "-c", "1", "-n", str(n), "-P", str(pipeline),
           "-r", "1000000000", "-q", "--csv", "EVALSHA", sha, "4", *keys, json.dumps(arg)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    match = re.search(r'"[^"]*","([\d.]+)"', out)
    if not match:
        raise RuntimeError(f"cannot read redis-benchmark output: {out!r}")
    return float(match.group(1))


async def main_async(args) -> None:
    config = load_config(ROOT / "config" / "tillgate.toml")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, port=port, appendonly=False) \
            as server:
        store, gift, loyalty = await prepare(server.url, config)
        bench = Bench(store, gift, loyalty)
        processor = Processor(config, store)
        await bench.pipelined("redeem", 2 * args.window, args.window)  # load the scripts
        await bench.pipelined("earn", 2 * args.window, args.window)
        rows: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for script in ("redeem", "earn"):
                rows.setdefault(f"{script:6} store one-at-a-time", []).append(
                    await bench.one_at_a_time(script, args.calls // 4))
                rows.setdefault(f"{script:6} store pipelined", []).append(
                    await bench.pipelined(script, args.calls, args.window))
                cid = bench.cards[script][0]
                rows.setdefault(f"{script:6} redis-benchmark -P 1", []).append(
                    redis_benchmark(port, script, cid, args.calls // 4, 1))
                rows.setdefault(f"{script:6} redis-benchmark -P {args.window}", []).append(
                    redis_benchmark(port, script, cid, args.calls, args.window))
            rows.setdefault("redeem processor (claim + script)", []).append(
                await processor_rate(processor, gift, args.calls, args.window))
        await store.close()
    med = {name: statistics.median(v) for name, v in rows.items()}
    print(f"store throughput, 1 connection, window {args.window}, median of {args.rounds}")
    for name, value in med.items():
        print(f"  {name:40} {value:>10,.0f} calls/s")
    for script in ("redeem", "earn"):
        ratio = med[f"{script:6} store pipelined"] / med[f"{script:6} redis-benchmark -P "
                                                         f"{args.window}"]
        verdict = "meets" if ratio >= 0.5 else "MISSES"
        print(f"  {script}: store pipelined / redis-benchmark pipelined = {ratio:.2f} "
              f"({verdict} the 0.5 target)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("redis-benchmark"):
        sys.exit("redis-benchmark not on PATH (it ships with redis-server)")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

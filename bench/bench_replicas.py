"""The cost of durable acknowledgement: redeems/s and latency with acknowledge_after_replicas 0
and 1, side by side in one run, on a local primary + replica (gateway/embedded_sentinel.py).

`--tills` coroutines each send a one-cent redeem through the Processor (claim + card script,
one call, its batch one pipeline), wait for the answer and send the next, for `--seconds`; the
rounds alternate N = 0 and N = 1 on the same servers and cards, and the table gives the median
of the rounds. With N = 1 each batch that writes ends in one `WAIT 1 timeout`, and its answers
are released when the replica has the batch's writes.

    python bench/bench_replicas.py [--tills 64] [--seconds 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_store import prepare  # noqa: E402

from gateway.config.model import load_config  # noqa: E402
from gateway.embedded_sentinel import LocalSentinelSet  # noqa: E402
from gateway.ledger.processor import Processor  # noqa: E402
from gateway.ledger.store import Store  # noqa: E402
from protocols.model import Op, Request  # noqa: E402


async def measure(url: str, config, gift: list[str], replicas: int, tills: int,
                  seconds: float) -> tuple[float, float, float, float, float]:
    """(redeems/s, p50 ms, p99 ms, pipelines per 1,000 requests, CPU us per redeem of this
    process, the gateway's part) of one round."""
    store = await Store.connect(url, acknowledge_after_replicas=replicas,
                                acknowledge_timeout_ms=1000)
    processor = Processor(config, store)
    latencies: list[float] = []
    refused = 0
    stop = time.perf_counter() + seconds
    pipelines = store.pipelines_sent

    async def till(index: int) -> None:
        nonlocal refused
        seq = 0
        while time.perf_counter() < stop:
            seq += 1
            request = Request(op=Op.REDEEM, terminal="TILL0001", merchant="STORE0000000001",
                              key=f"R{replicas}:{index}:{seq}:{time.time_ns()}",
                              card=gift[(index * 7919 + seq) % len(gift)], amount=1)
            started = time.perf_counter()
            result = await processor.process(request)
            latencies.append(time.perf_counter() - started)
            refused += result.code != "00"

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(till(i) for i in range(tills)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    batches = store.pipelines_sent - pipelines
    await store.close()
    if refused:
        raise RuntimeError(f"{refused} redeems refused with N = {replicas}")
    latencies.sort()
    return (len(latencies) / elapsed, latencies[len(latencies) // 2] * 1000,
            latencies[int(len(latencies) * 0.99)] * 1000, 1000 * batches / len(latencies),
            1e6 * cpu / len(latencies))


async def main_async(args) -> None:
    config = load_config(ROOT / "config" / "tillgate.toml")
    with tempfile.TemporaryDirectory() as tmp, LocalSentinelSet(tmp) as nodes:
        url = nodes.node_url(nodes.primary)  # straight to the primary: Sentinel is not measured
        store, gift, _ = await prepare(url, config)
        await store.close()
        results: dict[int, list[tuple[float, ...]]] = {0: [], 1: []}
        await measure(url, config, gift, 1, args.tills, 1.0)  # warm-up: scripts loaded
        for round_ in range(args.rounds):
            for replicas in (0, 1):
                got = await measure(url, config, gift, replicas, args.tills, args.seconds)
                results[replicas].append(got)
                print(f"round {round_ + 1} N={replicas}: {got[0]:,.0f}/s p50 {got[1]:.2f} ms "
                      f"p99 {got[2]:.2f} ms, {got[3]:.1f} pipelines per 1,000 requests, "
                      f"{got[4]:.0f} us CPU per redeem",
                      flush=True)
    print(f"\n{args.tills} tills, {args.seconds:g} s rounds, median of {args.rounds}")
    print("| acknowledge_after_replicas | redeems/s | p50 | p99 | pipelines per 1,000 "
          "| CPU per redeem |")
    print("|---|---:|---:|---:|---:|---:|")
    for replicas, rounds in results.items():
        rate, p50, p99, per, cpu = (statistics.median(r[i] for r in rounds) for i in range(5))
        print(f"| {replicas} | {rate:,.0f} | {p50:.2f} ms | {p99:.2f} ms | {per:.1f} "
              f"| {cpu:.0f} us |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tills", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

"""One Redis against a Redis Cluster of 3 primaries (and 3 replicas) on this machine.

The whole Processor path of a one-cent redemption (the claim and the card script: one call on
one Redis, two calls on the cluster, where the merchant's and the card's slots differ), in
pipelined batches of `--window` requests, on one redis-server and then on a local cluster
(gateway/embedded_cluster.py), side by side in one run, median of `--rounds`. For each: approvals
per second and CPU time per approval, split per process (read from /proc/<pid>/stat: this
process, which is the gateway here, each redis-server primary, the replicas together).

    python bench/bench_cluster.py [--calls 20000] [--window 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_store import prepare, processor_rate  # noqa: E402

from gateway.config.model import load_config  # noqa: E402
from gateway.embedded_cluster import EmbeddedCluster  # noqa: E402
from gateway.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from gateway.ledger.clusterstore import ClusterStore  # noqa: E402
from gateway.ledger.processor import Processor  # noqa: E402
from gateway.ledger.store import Store  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def measure(url: str, connect, processes: dict[str, list[int]], args) -> dict[str, list]:
    """Per round: approvals/s and, per process group, CPU microseconds per approval."""
    config = load_config(ROOT / "config" / "tillgate.toml")
    store, gift, _loyalty = await prepare(url, config, connect)
    processor = Processor(config, store)
    await processor_rate(processor, gift, 4 * args.window, args.window)  # scripts loaded
    rounds: dict[str, list] = {"rate": []}
    for _ in range(args.rounds):
        before = {name: sum(cpu_seconds(p) for p in pids) for name, pids in processes.items()}
        rate = await processor_rate(processor, gift, args.calls, args.window)
        for name, pids in processes.items():
            used = sum(cpu_seconds(p) for p in pids) - before[name]
            rounds.setdefault(name, []).append(used / args.calls * 1e6)
        rounds["rate"].append(rate)
    await store.close()
    return rounds


async def main_async(args) -> None:
    gateway = [os.getpid()]
    results: dict[str, dict[str, list]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        with EmbeddedRedis(Path(tmp) / "one", port=free_port(), appendonly=False) as one:
            assert one.process is not None
            results["one Redis"] = await measure(
                one.url, Store.connect,
                {"gateway": gateway, "redis": [one.process.pid]}, args)
        with EmbeddedCluster(Path(tmp) / "cluster") as cluster:
            pids = {f"primary {i + 1}": [n.process.pid] for i, n in enumerate(cluster.primaries)
                    if n.process is not None}
            pids["replicas"] = [n.process.pid for n in cluster.replicas if n.process is not None]
            results["cluster, 3 primaries"] = await measure(
                cluster.url, ClusterStore.connect, {"gateway": gateway, **pids}, args)
    print(f"redeem through the Processor, window {args.window}, {args.calls} per round, "
          f"median of {args.rounds}; CPU in us per approval")
    for setup, rounds in results.items():
        med = {name: statistics.median(v) for name, v in rounds.items()}
        cpu = {name: v for name, v in med.items() if name != "rate"}
        split = ", ".join(f"{name} {v:.0f}" for name, v in cpu.items())
        print(f"  {setup:22} {med['rate']:>8,.0f} approvals/s   CPU {sum(cpu.values()):5.0f} us "
              f"({split})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    started = time.monotonic()
    asyncio.run(main_async(args))
    print(f"  (run took {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()

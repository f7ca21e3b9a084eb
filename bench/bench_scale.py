"""Scale-out (docs/scaling.md, "Workers"): approvals per second and CPU per approval with
`tillgate serve --workers 1` and `--workers 2`, side by side in one run, the CPU split per
process (gateway workers, supervisor, redis-server, the load generator: /proc/<pid>/stat).

Each variant is a `tillgate serve` subprocess of its own (its own data directory and embedded
redis-server: one Redis each); all are started first, then the rounds alternate between them so
that the machine's other work falls on each alike, and the medians of the rounds are printed.
The load is the simulator's closed loop (gateway/sim/load.py), redeem only (every answer an
approval), on ISO 8583.

`--cluster 1,2` adds variants on a local Redis Cluster (3 primaries, 3 replicas, started here:
gateway/embedded_cluster.py), the CPU of all six redis-servers counted. A variant against
another Redis: `--variant NAME:WORKERS:REDIS_URL[:PID,PID...]`, e.g.
`--variant cluster:2:redis+cluster://127.0.0.1:7000:4101,4102,4103` (the pids of the
redis-servers whose CPU to count; without them the Redis column says "-").

    python bench/bench_scale.py [--seconds 5] [--rounds 3] [--connections 8] [--depth 16]
                                [--workers 1,2] [--cluster 1,2] [--variant ...] [--metrics-cost]

`--metrics-cost` also measures the metric updates of the hot path in a single process and in
prometheus_client's multiprocess mode (the choice for `/metrics` of all workers).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.config.model import load_config  # noqa: E402
from gateway.embedded_cluster import EmbeddedCluster  # noqa: E402
from gateway.sim.load import LoadRun, LoadSettings, parse_mix  # noqa: E402
from gateway.sim.loadsetup import load_tills, prepare_cards  # noqa: E402
from gateway.sim.target import target_from_config  # noqa: E402
from gateway.testing import GatewayProcess  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PARTS = ("workers", "supervisor", "redis", "generator")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def is_worker(pid: int) -> bool:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return b"--worker\x00" in f.read()


@dataclass
class Variant:
    name: str
    workers: int
    redis_url: str | None = None
    redis_pids: list[int] = field(default_factory=list)
    gateway: GatewayProcess | None = None
    cards: list[str] = field(default_factory=list)
    rounds: list[dict[str, float]] = field(default_factory=list)

    def start(self, workdir: Path, cards: int) -> None:
        gateway = GatewayProcess.prepare(workdir, redis_url=self.redis_url)
        gateway.workers = self.workers
        self.gateway = gateway.start(timeout=120)
        deadline = time.monotonic() + 120
        while self.workers > 1 and f"tillgate ready: {self.workers} workers" not in gateway.log:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: workers not ready:\n{gateway.log[-3000:]}")
            time.sleep(0.1)
        if self.redis_url is None:
            self.redis_pids = [int((workdir / "var" / "redis" / "redis.pid").read_text())]
        config = load_config(gateway.config_path)
        self.cards = prepare_cards(config, target_from_config(config, "iso"), cards)

    def pids(self) -> dict[str, list[int]]:
        assert self.gateway is not None and self.gateway.process is not None
        top = self.gateway.process.pid
        if self.workers == 1:
            return {"workers": [top], "supervisor": [], "redis": self.redis_pids,
                    "generator": [os.getpid()]}
        return {"workers": [p for p in children(top) if is_worker(p)], "supervisor": [top],
                "redis": self.redis_pids, "generator": [os.getpid()]}

    def round(self, args) -> None:
        assert self.gateway is not None
        config = load_config(self.gateway.config_path)
        settings = LoadSettings(connections=args.connections, depth=args.depth,
                                duration=args.seconds, mix=parse_mix("redeem"))
        run = LoadRun(target_from_config(config, "iso"), settings, load_tills(config),
                      self.cards)
        pids = self.pids()
        before = {part: sum(cpu_seconds(p) for p in found) for part, found in pids.items()}
        stats = run.run_blocking()
        after = {part: sum(cpu_seconds(p) for p in found) for part, found in pids.items()}
        approvals = stats.codes.get("00", 0)
        found = {"per_s": approvals / stats.elapsed,
                 "approved": approvals / max(stats.completed, 1)}
        for part in PARTS:
            found[part] = (after[part] - before[part]) / max(approvals, 1) * 1e6  # us
        found["cores"] = sum(after[p] - before[p] for p in PARTS) / stats.elapsed
        self.rounds.append(found)

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.rounds)


def parse_variant(text: str) -> Variant:
    name, workers, rest = text.split(":", 2)
    url, _, pids = rest.rpartition(":") if rest.count(":") > 2 else (rest, "", "")
    return Variant(name, int(workers), url or None,
                   [int(p) for p in pids.split(",") if p] if pids else [])


METRICS_COST = r"""
import os, sys, tempfile, timeit
from gateway.metrics import families as m
from gateway.metrics.multiproc import process_hot_files
hot = m.MESSAGES_IN.labels("iso", "0200")
counter = m.CONNECTIONS_TOTAL.labels("iso")
gauge = m.CONNECTIONS.labels("iso")
n = 200_000
for name, fn in (("hot counter inc (per message)", hot.inc),
                 ("Counter inc (per connection)", counter.inc),
                 ("Gauge inc (per connection)", gauge.inc)):
    best = min(timeit.repeat(fn, number=n, repeat=5)) / n
    print(f"  {name:34} {best * 1e9:7.0f} ns")
files = process_hot_files()
if files is not None:
    for mti in ("0100", "0200", "0400", "0800"):
        for code in ("00", "05", "51", "91"):
            m.MESSAGES_OUT.labels("iso", mti, code).inc()
    best = min(timeit.repeat(files.flush, number=200, repeat=5)) / 200
    print(f"  {'hot families copied to files (1/s)':34} {best * 1e6:7.0f} us")
"""


def metrics_cost() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for label, env in (("single process", {}),
                           ("multiprocess mode", {"PROMETHEUS_MULTIPROC_DIR": tmp})):
            print(f"metric updates, {label} (best of 5):")
            subprocess.run([sys.executable, "-c", METRICS_COST], check=True, cwd=ROOT,
                           env={**os.environ, **env, "PYTHONPATH": str(ROOT)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--depth", type=int, default=16)
    parser.add_argument("--cards", type=int, default=200)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME:WORKERS:REDIS_URL[:PIDS] (another Redis, e.g. a cluster)")
    parser.add_argument("--cluster", default="",
                        help="worker counts to run on a local Redis Cluster too, e.g. 1,2")
    parser.add_argument("--metrics-cost", action="store_true")
    args = parser.parse_args()
    if args.metrics_cost:
        metrics_cost()
    variants = [Variant(f"{n} worker{'s' if int(n) > 1 else ''}", int(n))
                for n in args.workers.split(",") if n]
    variants += [parse_variant(v) for v in args.variant]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        if args.cluster:
            cluster = stack.enter_context(EmbeddedCluster(Path(tmp) / "cluster"))
            pids = [n.process.pid for n in cluster.nodes if n.process is not None]
            variants += [Variant(f"cluster, {n} w", int(n), cluster.url, pids)
                         for n in args.cluster.split(",") if n]
        try:
            for i, variant in enumerate(variants):
                variant.start(Path(tmp) / f"v{i}", args.cards)
            for _ in range(args.rounds):
                for variant in variants:
                    variant.round(args)
        finally:
            for variant in variants:
                if variant.gateway is not None:
                    variant.gateway.stop()
    print(f"\nISO redeem, closed loop {args.connections} connections x depth {args.depth}, "
          f"{args.seconds:g} s rounds, median of {args.rounds}; CPU in us per approval:")
    print(f"  {'variant':12} {'approvals/s':>11} {'workers':>8} {'superv.':>8} {'redis':>8} "
          f"{'generator':>9} {'all':>8} {'cores busy':>10}")
    for v in variants:
        cpu = {part: v.median(part) for part in PARTS}
        redis = f"{cpu['redis']:8.0f}" if v.redis_pids else f"{'-':>8}"
        print(f"  {v.name:12} {v.median('per_s'):11.0f} {cpu['workers']:8.0f} "
              f"{cpu['supervisor']:8.1f} {redis} {cpu['generator']:9.0f} "
              f"{sum(cpu.values()):8.0f} {v.median('cores'):10.2f}")
        if v.median("approved") < 1.0:
            print(f"    (only {v.median('approved'):.4f} of the answers were approvals)")


if __name__ == "__main__":
    main()

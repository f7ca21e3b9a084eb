"""Earn with points lots, tiers and a promotion beside earn without them, on the whole host
(issue 19: within 15 % of today's CPU per earn): what an operator pays per earn, the gateway's
listener, codec and processor and the redis-server, not only the card script.

Each variant is a `tillgate serve` subprocess of its own (its own data directory and embedded
redis-server), answering the simulator's closed loop of ISO 8583 earns (gateway/sim/load.py;
every answer an approval). CPU per earn is the gateway's and its redis-server's, from
/proc/<pid>/stat (what they spent, not time waited); the load generator's is shown apart and
not counted. All variants are started first, then the rounds take them in turn, each round
starting one variant further on, and the medians are printed.

  before   this tree's gateway with the scripts of `--against` (default aca2692^1, the tree
           issue 19 was filed on: loyalty without tiers or validity), in a copy of the tree
           (adapted to this tree's call arguments as bench_points.py does)
  plain    this tree, the same config
  lots     this tree, the default config without tiers (lots and expiry alone)   [--variants]
  depth    this tree, the default config of HOST-SPEC 1.1 section 6 (lots, 365-day validity,
           BRONZE / SILVER on a 365-day window)                                   [--variants]
  promo    depth and one promotion on every earn (double points, every day, every merchant:
           its worst case), the earn issue 19 sets the bar for

bench/bench_points.py measures the Processor and the script alone (a smaller denominator, so
larger ratios) and counts the server's instructions.

    python bench/bench_points_wire.py [--seconds 5] [--rounds 5] [--against aca2692^1]
    python bench/bench_points_wire.py --variants plain,lots,depth,promo   (each feature's share)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_points import old_scripts  # noqa: E402
from bench_scale import cpu_seconds  # noqa: E402

from gateway.config.model import load_config  # noqa: E402
from gateway.sim.load import LoadRun, LoadSettings, parse_mix  # noqa: E402
from gateway.sim.loadsetup import load_tills, prepare_cards  # noqa: E402
from gateway.sim.target import target_from_config  # noqa: E402
from gateway.testing import GatewayProcess  # noqa: E402

VARIANTS = ("before", "plain", "lots", "depth", "promo")
PROMOTION = """
[[programs.loyalty.promotions]]
id = "DOUBLE"
kind = "multiplier"
multiplier = 2
"""


def without_tiers(text: str) -> str:
    """The default config's loyalty program without tiers."""
    text = re.sub(r"(?m)^tier_window_days = 365", "tier_window_days = 0", text)
    return re.sub(r"(?ms)^\[\[programs\.loyalty\.tiers\]\].*?(?=^\[)", "", text)


def without_depth(text: str) -> str:
    """The default config's loyalty program without lots and tiers."""
    return re.sub(r"(?m)^points_validity_days = 365", "points_validity_days = 0",
                  without_tiers(text))


def tree_with_scripts(rev: str, into: Path) -> Path:
    """A copy of this tree's packages (and the config folder its defaults come from) with
    the Lua scripts of `rev`."""
    ignore = shutil.ignore_patterns("__pycache__")
    for folder in ("gateway", "protocols", "config"):
        shutil.copytree(ROOT / folder, into / folder, ignore=ignore)
    lua = into / "gateway" / "ledger" / "lua"
    shutil.rmtree(lua)
    lua.mkdir()
    old_scripts(rev, lua)
    return into


@dataclass
class Variant:
    name: str
    config_text: str
    pythonpath: Path | None = None
    gateway: GatewayProcess | None = None
    redis_pid: int = 0
    cards: list[str] = field(default_factory=list)
    rounds: list[dict[str, float]] = field(default_factory=list)

    def start(self, workdir: Path, cards: int) -> None:
        base = workdir / "base.toml"
        workdir.mkdir(parents=True)
        base.write_text(self.config_text)
        gateway = GatewayProcess.prepare(workdir, base=base)
        if self.pythonpath is not None:
            gateway.env = {"PYTHONPATH": str(self.pythonpath)}
        self.gateway = gateway.start(timeout=120)
        self.redis_pid = int((workdir / "var" / "redis" / "redis.pid").read_text())
        config = load_config(gateway.config_path)
        self.cards = prepare_cards(config, target_from_config(config, "iso"), cards,
                                   loyalty=True)

    def round(self, args) -> None:
        assert self.gateway is not None and self.gateway.process is not None
        config = load_config(self.gateway.config_path)
        settings = LoadSettings(connections=args.connections, depth=args.depth,
                                duration=args.seconds, mix=parse_mix("earn"))
        run = LoadRun(target_from_config(config, "iso"), settings, load_tills(config), [],
                      loyalty_cards=self.cards)
        pids = {"gateway": self.gateway.process.pid, "redis": self.redis_pid}
        before = {part: cpu_seconds(pid) for part, pid in pids.items()}
        generator = cpu_seconds(os.getpid())
        stats = run.run_blocking()
        approvals = stats.codes.get("00", 0)
        found = {part: (cpu_seconds(pid) - before[part]) / max(approvals, 1) * 1e6
                 for part, pid in pids.items()}
        found["generator"] = (cpu_seconds(os.getpid()) - generator) / max(approvals, 1) * 1e6
        found["per_s"] = approvals / stats.elapsed
        found["approved"] = approvals / max(stats.completed, 1)
        self.rounds.append(found)

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.rounds)

    def total(self) -> float:
        return statistics.median(r["gateway"] + r["redis"] for r in self.rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--depth", type=int, default=16)
    parser.add_argument("--cards", type=int, default=256)
    parser.add_argument("--against", default="aca2692^1",
                        help="git revision of the scripts before")
    parser.add_argument("--without-backoffice", action="store_true",
                        help="serve runs no back-office feed consumer (scripts before the feed "
                             "give it nothing to do, so this isolates the scripts)")
    parser.add_argument("--variants", default="plain,promo",
                        help=f"comma-separated, of {', '.join(VARIANTS[1:])} (before always "
                             "runs, first; plain is needed for the `vs plain` column)")
    args = parser.parse_args()
    args.variants = ("before", *(v for v in args.variants.split(",") if v != "before"))
    if not set(args.variants) <= set(VARIANTS) or "plain" not in args.variants:
        parser.error(f"--variants: plain and any of {', '.join(VARIANTS[2:])}")
    depth = (ROOT / "config" / "tillgate.toml").read_text()
    if args.without_backoffice:
        depth = depth.replace("# [backoffice]\n", "[backoffice]\nenabled = false\n", 1)
    with tempfile.TemporaryDirectory() as tmp:
        before_tree = tree_with_scripts(args.against, Path(tmp) / "before-tree")
        configs = {"before": without_depth(depth), "plain": without_depth(depth),
                   "lots": without_tiers(depth), "depth": depth, "promo": depth + PROMOTION}
        variants = [Variant(name, configs[name], before_tree if name == "before" else None)
                    for name in args.variants]
        try:
            for i, variant in enumerate(variants):
                variant.start(Path(tmp) / f"v{i}", args.cards)
            for turn in range(args.rounds):
                for variant in variants[turn % len(variants):] + variants[:turn % len(variants)]:
                    variant.round(args)
        finally:
            for variant in variants:
                if variant.gateway is not None:
                    variant.gateway.stop()
    feed = "no back-office feed consumer" if args.without_backoffice else "the back office fed"
    print(f"ISO earn on `tillgate serve` ({feed}), closed loop {args.connections} connections x "
          f"depth {args.depth}, {args.seconds:g} s rounds, median of {args.rounds} (scripts "
          f"before: {args.against}); CPU in us per earn:")
    print(f"  {'variant':8} {'earns/s':>8} {'gateway':>8} {'redis':>7} {'total':>7} "
          f"{'vs before':>9} {'vs plain':>8} {'generator':>9}")
    totals = {v.name: v.total() for v in variants}
    base, plain = totals["before"], totals["plain"]
    for v in variants:
        print(f"  {v.name:8} {v.median('per_s'):8,.0f} {v.median('gateway'):8.1f} "
              f"{v.median('redis'):7.1f} {v.total():7.1f} {v.total() / base - 1:+9.1%} "
              f"{v.total() / plain - 1:+8.1%} {v.median('generator'):9.1f}")
        if v.median("approved") < 1.0:
            print(f"    (only {v.median('approved'):.4f} of the answers were approvals)")


if __name__ == "__main__":
    main()

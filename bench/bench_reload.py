"""Config reload (gateway/reloader.py, docs/operations.md): how long one takes, and what it does
to the latency of the tills while reloads keep coming.

Against a `tillgate serve` subprocess (embedded redis-server):

1. duration: SIGHUP `--reloads` times and read each outcome's started_at -> finished_at (reading
   and validating the file in a worker thread, the diff, the new Processor, the switch), for the
   default config and for one with `--terminals` more terminals (100 merchants);
2. latency: an open-loop ISO load (`--rate` requests/s, 4 connections) for `--seconds`, in
   alternating rounds without and with a SIGHUP every `--every` seconds; p50, p99 and max
   latency and answered/sent per round kind (medians over `--rounds`).

    python bench/bench_reload.py [--reloads 20] [--terminals 5000] [--rate 1000] [--seconds 5]
                                 [--every 0.25] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.config.model import load_config  # noqa: E402
from gateway.sim.load import LoadRun, LoadSettings, parse_mix  # noqa: E402
from gateway.sim.loadsetup import load_tills, prepare_cards  # noqa: E402
from gateway.sim.loadstats import percentile  # noqa: E402
from gateway.sim.target import target_from_config  # noqa: E402
from gateway.testing import GatewayProcess  # noqa: E402


def many_terminals(count: int) -> str:
    per = max(count // 100, 1)
    return "".join(f'\n[merchants.BENCH{m:010d}]\nterminals = ['
                   + ", ".join(f'"B{m:02d}{t:05d}"' for t in range(per)) + "]\n"
                   for m in range(100))


def reload_once(gateway: GatewayProcess, outcome_file: Path) -> dict:
    sent = time.time()
    gateway.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            outcome = json.loads(outcome_file.read_text())
        except (OSError, ValueError):
            outcome = {}
        if outcome.get("started_at", 0) >= sent:
            assert outcome["outcome"] == "applied", outcome["errors"]
            return outcome
        time.sleep(0.002)
    raise TimeoutError("no reload outcome within 30 s")


def durations(gateway: GatewayProcess, count: int) -> list[float]:
    outcome_file = gateway.workdir / "var" / "config-reload.json"
    found = []
    for _ in range(count):
        outcome = reload_once(gateway, outcome_file)
        found.append(outcome["finished_at"] - outcome["started_at"])
    return found


def load_round(gateway: GatewayProcess, config, cards: list[str], args,
               every: float | None) -> tuple[list[float], int, int]:
    target = target_from_config(config, "iso")
    settings = LoadSettings(connections=4, rate=args.rate, duration=args.seconds,
                            mix=parse_mix("redeem"))
    run = LoadRun(target, settings, load_tills(config), cards)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("stats", run.run_blocking()))
    thread.start()
    outcome_file = gateway.workdir / "var" / "config-reload.json"
    while every and thread.is_alive():
        reload_once(gateway, outcome_file)
        time.sleep(every)
    thread.join()
    stats = result["stats"]
    return sorted(stats.latencies), stats.sent, stats.completed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reloads", type=int, default=20)
    parser.add_argument("--terminals", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--every", type=float, default=0.25)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gateway = GatewayProcess.prepare(Path(tmp)).start()
        try:
            base = gateway.config_path.read_text()
            print(f"reload duration, {args.reloads} SIGHUPs each (ms):")
            for name, text in (("default config", base),
                               (f"+{args.terminals} terminals",
                                base + many_terminals(args.terminals))):
                gateway.config_path.write_text(text)
                found = sorted(durations(gateway, args.reloads))
                print(f"  {name:22} median {statistics.median(found) * 1000:7.1f}   "
                      f"max {found[-1] * 1000:7.1f}")
            gateway.config_path.write_text(base)
            config = load_config(gateway.config_path)
            cards = prepare_cards(config, target_from_config(config, "iso"), 100)
            rows: dict[str, list[tuple[float, float, float, float]]] = {"without": [],
                                                                        "with": []}
            for _ in range(args.rounds):
                for kind, every in (("without", None), ("with", args.every)):
                    lat, sent, done = load_round(gateway, config, cards, args, every)
                    rows[kind].append((percentile(lat, 50) * 1000, percentile(lat, 99) * 1000,
                                       lat[-1] * 1000, done / sent))
            print(f"\nopen loop {args.rate:g}/s ISO redeem, {args.seconds:g} s rounds, "
                  f"median of {args.rounds} (ms):")
            for kind, found_rows in rows.items():
                p50, p99, top, ratio = (statistics.median(c) for c in zip(*found_rows))
                label = (f"a SIGHUP every {args.every:g} s" if kind == "with"
                         else "no reloads")
                print(f"  {label:24} p50 {p50:6.2f}  p99 {p99:7.2f}  max {top:7.1f}  "
                      f"answered {ratio:.4f}")
        finally:
            gateway.stop()


if __name__ == "__main__":
    main()

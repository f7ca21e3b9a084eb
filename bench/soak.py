"""Soak: a gateway at half its measured peak for a long time; is its memory flat?

One `tillgate serve` subprocess on the default configuration (its embedded redis-server, AOF
on, the back-office feed consumed into SQLite as in production), free ports. First the peak is
measured briefly, closed loop (4 terminals x 8 in flight, ISO 8583, the simulator's load
generator); then the soak runs open loop at half that rate for `--minutes`, the simulator's mix
(redeem, reload, earn, balance) plus a till of its own that activates a new card, and reloads
and redeems and reverses both, about twice a second. Every `--sample` seconds: the gateway's
RSS (/proc VmRSS), Redis's `used_memory` and RSS (INFO memory), its key count, and the
approvals so far. Printed: the table, and for each series the least-squares slope per hour,
with a verdict (the gateway's judged on the second half: the first minutes are warm-up).

    python bench/soak.py [--minutes 30] [--peak-seconds 15] [--sample 60] [--rate N]

`--rate`: soak at N requests/s instead of half the peak (the peak is still measured and
printed), to rerun at the rate of an earlier run on a machine whose load has changed since.

Redis memory is expected to grow with the transactions, by design: each one leaves its request
record (kept max(35 days, 2 x reversal window) for retransmissions and reversals) and its
journal entry (until journal trimming). So the Redis verdict is per transaction: bytes per
approval, which must stay constant (flat per transaction), not flat in time. The gateway's
RSS must be flat in time. Not run in CI; docs/benchmarks.md quotes a run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from gateway.config.model import load_config  # noqa: E402
from gateway.embedded_redis import EmbeddedRedis  # noqa: E402
from gateway.sim.issuer import issue_cards  # noqa: E402
from gateway.sim.load import LoadRun, LoadSettings, parse_mix  # noqa: E402
from gateway.sim.loadsetup import load_tills, prepare_cards  # noqa: E402
from gateway.sim.pacing import card_limits  # noqa: E402
from gateway.sim.target import target_from_config  # noqa: E402
from gateway.sim.till import Till  # noqa: E402
from gateway.testing import GatewayProcess  # noqa: E402

MIX = "redeem=4,reload=2,earn=2,balance=2"
SIDE_PERIOD = 0.5  # seconds between the side till's rounds (activate, reload+reverse, ...)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), per hour."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return sxy / sxx * 3600 if sxx else 0.0


class SideTill(threading.Thread):
    """Activations of new cards, and reversals, which the simulator's mix does not send."""

    def __init__(self, config, target, fresh: list[str], gift: list[str]):
        super().__init__(daemon=True)
        self.config, self.target = config, target
        self.fresh, self.gift = fresh, gift
        self.stop = threading.Event()
        self.codes: dict[str, int] = {}

    def note(self, exchange) -> None:
        rc = exchange.reply.rc if exchange.reply is not None else "none"
        self.codes[rc] = self.codes.get(rc, 0) + 1

    def run(self) -> None:
        cards = itertools.cycle(self.gift)
        with Till(self.target, config=self.config, timeout=30) as till:
            for fresh in self.fresh:
                if self.stop.wait(SIDE_PERIOD):
                    return
                self.note(till.activate(fresh, 2500))
                card = next(cards)
                for original in (till.reload(card, 100), till.redeem(card, 100)):
                    self.note(original)
                    self.note(till.reverse(original))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--peak-seconds", type=float, default=15.0)
    parser.add_argument("--sample", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--rate", type=float, default=None,
                        help="requests/s to soak at (default: half the measured peak)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        gateway = GatewayProcess.prepare(Path(tmp))
        text = gateway.config_path.read_text().replace('log_level = "INFO"',
                                                        'log_level = "WARNING"')
        gateway.config_path.write_text(text)
        gateway.start()
        try:
            run(gateway, args)
        finally:
            gateway.stop()


def run(gateway: GatewayProcess, args) -> None:
    config = load_config(gateway.config_path)
    target = target_from_config(config, "iso")
    mix = parse_mix(MIX)
    tills = load_tills(config)
    limits = card_limits(config.rules, (op for op, _ in mix))
    gift = prepare_cards(config, target, 200)
    loyalty = prepare_cards(config, target, 200, loyalty=True)
    rounds = int(args.minutes * 60 / SIDE_PERIOD) + 10
    fresh = [c.number for c in issue_cards(config, "gift", rounds)]

    peak_run = LoadRun(target, LoadSettings(connections=4, depth=8, duration=args.peak_seconds,
                                            mix=mix), tills, gift, loyalty, limits=limits)
    peak = peak_run.run_blocking().summary()
    rate = args.rate or peak["throughput_per_s"] / 2
    print(f"peak (closed loop, 4 x 8 in flight, {args.peak_seconds:.0f} s): "
          f"{peak['throughput_per_s']:.0f}/s, p99 {peak['latency_ms']['p99']} ms; "
          f"soak at {rate:.0f}/s for {args.minutes:g} min, mix {MIX} + activations and "
          f"reversals every {SIDE_PERIOD} s", flush=True)

    soak = LoadRun(target, LoadSettings(connections=4, rate=rate, duration=args.minutes * 60,
                                        mix=mix), tills, gift, loyalty, limits=limits)
    result: dict = {}
    load = threading.Thread(target=lambda: result.update(asyncio.run(soak.run()).summary()),
                            daemon=True)
    side = SideTill(config, target, fresh, gift)
    client = redis.Redis.from_url(EmbeddedRedis(config.data_dir / "redis").url)
    redis_pid = int((config.data_dir / "redis" / "redis.pid").read_text())
    started = time.monotonic()
    load.start()
    side.start()
    samples = []
    print(f"{'min':>5} {'gateway RSS MB':>15} {'redis used MB':>14} {'redis RSS MB':>13} "
          f"{'keys':>9} {'answered':>10}", flush=True)
    try:
        while load.is_alive():
            info = client.info("memory")
            # Redis's bytes are per request that reached it: a 91 (the gateway's own refusal
            # when Redis is slow to answer) writes nothing there, so a loaded run's 91s must
            # not thin the per-request figure
            reached = soak.stats.completed - soak.stats.codes.get("91", 0)
            sample = (time.monotonic() - started, rss_bytes(gateway.process.pid),
                      info["used_memory"], info["used_memory_rss"], client.dbsize(),
                      soak.stats.completed, reached)
            samples.append(sample)
            t, grss, used, rrss, keys, answered, _ = sample
            print(f"{t / 60:5.1f} {grss / 2**20:15.1f} {used / 2**20:14.1f} "
                  f"{rrss / 2**20:13.1f} {keys:9d} {answered:10d}", flush=True)
            load.join(args.sample)
    finally:
        side.stop.set()
        side.join(30)
        client.close()
    report(samples, result, side.codes, rss_bytes(redis_pid))


def report(samples, result: dict, side_codes: dict[str, int], redis_rss_now: int) -> None:
    print(f"soak: {result.get('completed', 0)} answered, {result.get('throughput_per_s')}/s, "
          f"codes {result.get('response_codes')}, errors {result.get('errors')}, p99 "
          f"{result.get('latency_ms', {}).get('p99')} ms; side till codes {side_codes}")
    steady = samples[1:]  # the first minute includes the gateway's and Redis's warm-up
    if len(steady) < 2:
        print("too few samples for a slope (run --minutes longer than two --sample periods)")
        return
    # The first minutes are warm-up (pools, caches, allocator arenas): judged on the second
    # half, per hour and per request (a leak grows with requests, not with time).
    second = steady[len(steady) // 2:]
    gateway_slope = slope_per_hour([(t, g) for t, g, *_ in second])
    gateway_mean = sum(g for _, g, *_ in second) / len(second)
    per_request = slope_per_hour([(a, g) for _, g, _, _, _, a, _ in second]) / 3600
    share = 100 * gateway_slope / gateway_mean
    print(f"gateway RSS {steady[0][1] / 2**20:.1f} -> {steady[-1][1] / 2**20:.1f} MB; second "
          f"half {gateway_slope / 2**20:+.2f} MB per hour ({share:+.1f} % of its mean), "
          f"{per_request:+.2f} bytes per answered request: "
          f"{'flat' if abs(gateway_slope) < 0.05 * gateway_mean else 'NOT flat'}")
    per_answer = slope_per_hour([(r, u) for _, _, u, _, _, _, r in steady]) / 3600
    first, last = steady[0], steady[-1]
    print(f"redis used_memory: {slope_per_hour([(t, u) for t, _, u, *_ in steady]) / 2**20:+.1f}"
          f" MB per hour, {per_answer:.0f} bytes per request that reached it (answers but 91: "
          f"records and journal entries, kept by design); keys {first[4]} -> {last[4]}; "
          f"redis RSS now {redis_rss_now / 2**20:.1f} MB")
    halves = [steady[: len(steady) // 2 + 1], steady[len(steady) // 2:]]
    rates = [slope_per_hour([(r, u) for _, _, u, _, _, _, r in half]) / 3600 for half in halves]
    if min(rates) > 0:
        print(f"redis bytes per request that reached it, first half {rates[0]:.0f}, second half "
              f"{rates[1]:.0f}: {'constant' if max(rates) < 1.25 * min(rates) else 'NOT constant'}")


if __name__ == "__main__":
    main()

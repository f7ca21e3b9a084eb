"""The load generator's own ceiling, and what it shows of tillgate on this machine.

1. Against a trivial echo host (defined below, run as a subprocess: it decodes each request with
   the compiled codec and answers 00 with the STAN and terminal, nothing else): how many
   request/response pairs a second `tillgate sim load` drives from one process, and how much
   CPU it spends per request. 1 / (CPU per request) is the generator's ceiling on one core.
2. Against a real `tillgate serve` (subprocess, embedded redis-server, default config): the
   same closed-loop runs. The generator's CPU share there shows whether it, or the gateway,
   was the limit.

Medians of `--rounds` runs per level, echo and tillgate alternating. Usage:

    python bench/bench_loadgen.py [--seconds 5] [--rounds 3] [--levels 8,64] [--connections 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.config.model import load_config  # noqa: E402
from gateway.embedded_redis import free_port  # noqa: E402
from gateway.sim.load import LoadRun, LoadSettings, parse_mix  # noqa: E402
from gateway.sim.loadsetup import load_tills, prepare_cards  # noqa: E402
from gateway.sim.target import Target, target_from_config  # noqa: E402
from gateway.testing import GatewayProcess  # noqa: E402
from protocols.carddata import generate_card_number  # noqa: E402

MIX = "redeem=5,balance=3,reload=2"


# --- the echo host ------------------------------------------------------------------------------

async def echo_host(port: int) -> None:
    from protocols import isocodec
    from protocols.framing import Deframer, frame
    from protocols.isospec import SPEC_ASCII

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.deframer = Deframer("len2b", 65535)

        def data_received(self, data):
            out = []
            for f in self.deframer.feed(data):
                req = isocodec.decode(f.payload, SPEC_ASCII)
                mti = req["t"][:2] + str(int(req["t"][2]) + 1) + req["t"][3]
                resp = {"t": mti, "11": req["11"], "39": "00", "41": req["41"]}
                out.append(frame(isocodec.encode(resp, SPEC_ASCII)))
            self.transport.write(b"".join(out))

    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def start_echo() -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--echo-host", str(port)])
    deadline = time.monotonic() + 10
    import socket
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("echo host did not start")


# --- one measured run ---------------------------------------------------------------------------

def measure(target: Target, tills, cards, connections: int, depth: int, seconds: float) -> dict:
    settings = LoadSettings(connections=connections, depth=depth, duration=seconds,
                            mix=parse_mix(MIX))
    run = LoadRun(target, settings, tills, cards)
    cpu0 = time.process_time()
    stats = asyncio.run(run.run())
    cpu = time.process_time() - cpu0
    summary = stats.summary()
    return {"rate": summary["throughput_per_s"], "p50": summary["latency_ms"]["p50"],
            "p99": summary["latency_ms"]["p99"], "cpu_us": cpu / max(stats.completed, 1) * 1e6,
            "cpu_share": cpu / stats.elapsed, "errors": sum(stats.errors.values()),
            "declined": sum(n for rc, n in stats.codes.items() if rc not in ("00", "10"))}


def median_of(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--levels", default="8,64", help="requests in flight per connection")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--echo-host", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_host:
        asyncio.run(echo_host(args.echo_host))
        return
    levels = [int(x) for x in args.levels.split(",")]
    print(f"machine: {os.cpu_count()} CPUs; {args.connections} connections, closed loop, "
          f"mix {MIX}, {args.seconds:g} s x {args.rounds} rounds (medians)\n")

    echo, echo_port = start_echo()
    workdir = Path(tempfile.mkdtemp(prefix="bench-loadgen-"))
    gateway = GatewayProcess.prepare(workdir).start()
    try:
        config = load_config(gateway.config_path)
        target = target_from_config(config, "iso")
        tills = load_tills(config)
        cards = prepare_cards(config, target, 256)
        program = config.programs["gift"]
        fake = [generate_card_number(program.prefix, program.card_length_max, program.luhn)
                for _ in range(256)]
        echo_target = Target(protocol="iso", host="127.0.0.1", port=echo_port)
        results: dict[tuple[str, int], list[dict]] = {}
        for _round in range(args.rounds):
            for depth in levels:
                results.setdefault(("echo", depth), []).append(
                    measure(echo_target, tills, fake, args.connections, depth, args.seconds))
                results.setdefault(("tillgate", depth), []).append(
                    measure(target, tills, cards, args.connections, depth, args.seconds))
    finally:
        gateway.stop()
        echo.terminate()
        echo.wait()

    print(f"{'host':<9} {'depth':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'gen CPU us/req':>15} {'gen CPU share':>14} {'gen ceiling/s':>14} {'errors':>7}")
    for (host, depth), runs in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        m = median_of(runs)
        print(f"{host:<9} {depth:>5} {m['rate']:>9.0f} {m['p50']:>8.2f} {m['p99']:>8.2f} "
              f"{m['cpu_us']:>15.1f} {m['cpu_share']:>13.0%} {1e6 / m['cpu_us']:>14.0f} "
              f"{m['errors'] + m['declined']:>7.0f}")
    for depth in levels:
        e, t = median_of(results[("echo", depth)]), median_of(results[("tillgate", depth)])
        print(f"\ndepth {depth}: the generator drove the echo host at {e['rate'] / t['rate']:.1f}x "
              f"tillgate's throughput; against tillgate it used {t['cpu_share']:.0%} of a core")


if __name__ == "__main__":
    main()

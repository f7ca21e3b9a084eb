"""End-to-end: approved redemptions per second over loopback, tillgate vs a straightforward host.

Both hosts run as subprocesses against one redis-server started here, and run the same redeem
Lua script on the same cards; the driver keeps 1, 16 or 256 requests outstanding on one
connection (responses matched by STAN), for a fixed time, alternating the hosts round by round
so both see the same machine noise. Printed: median throughput and p50/p99 latency per host and
level, the ratio tillgate / baseline, the CPU each process used while measured (host,
redis-server, this driver; % of one core, from /proc) to show which of them is the limit, and the
host's CPU time per answer (with its ratio), which other load on the machine changes less.

    python bench/bench_e2e.py [--seconds 4] [--rounds 3] [--levels 1,16,256] [--hosts tillgate]

The driver pre-encodes its messages with the compiled codec and decodes only what it needs, so
it is not the bottleneck (see bench/bench_loadgen.py for the generator's own ceiling).
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

from gateway.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from gateway.ledger.cards import issue_card  # noqa: E402
from gateway.ledger.store import Store  # noqa: E402
from gateway.testing import config_text  # noqa: E402
from protocols import isocodec  # noqa: E402
from protocols.carddata import generate_card_number  # noqa: E402
from protocols.isobuild import request_fields  # noqa: E402
from protocols.isospec import SPEC_ASCII  # noqa: E402
from protocols.model import Op  # noqa: E402

TILL = {"terminal": "TILL0001", "merchant": "STORE0000000001"}
CARDS = 512
LOAD = 10**9  # minor units on each card: never runs dry during a benchmark


async def prepare_cards(redis_url: str, config) -> list[str]:
    """Issue and directly activate the cards (activation is not what is measured)."""
    store = await Store.connect(redis_url)
    program = config.programs["gift"]
    numbers = []
    for _ in range(CARDS):
        card = generate_card_number(program.prefix, program.card_length_max, program.luhn)
        await issue_card(store, program, card)
        numbers.append(card)
    await store.close()
    return numbers


class Driver(asyncio.Protocol):
    """Keeps `level` requests outstanding on one connection; records each latency."""

    def __init__(self, messages, level: int, deadline: float, done: asyncio.Future):
        self.messages = messages
        self.level = level
        self.deadline = deadline
        self.done = done
        self.sent: dict[str, float] = {}
        self.latencies: list[float] = []
        self.codes: dict[str, int] = {}
        self.buffer = bytearray()
        self.next = 0

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.transport.write(b"".join(self.take() for _ in range(self.level)))

    def take(self) -> bytes:
        """The next message, its send time noted (it goes out in the same read's one write)."""
        if self.next == len(self.messages):  # never reuse one: it would be a retransmission
            return b""
        stan, payload = self.messages[self.next]
        self.next += 1
        self.sent[stan] = time.perf_counter()
        return payload

    def data_received(self, data: bytes) -> None:
        # The replacements for the answers in this read go out as one write, as a network
        # client would send them: one system call per message made this driver, on the same
        # machine, take CPU from the hosts it measures.
        self.buffer += data
        replacements = []
        while len(self.buffer) >= 2:
            size = int.from_bytes(self.buffer[:2], "big")
            if len(self.buffer) < size + 2:
                break
            body = bytes(self.buffer[2:size + 2])
            del self.buffer[:size + 2]
            fields = isocodec.decode(body, SPEC_ASCII)
            now = time.perf_counter()
            self.latencies.append(now - self.sent.pop(fields["11"]))
            self.codes[fields["39"]] = self.codes.get(fields["39"], 0) + 1
            if now < self.deadline and self.next < len(self.messages):
                replacements.append(self.take())
            elif not self.sent and not self.done.done():
                self.done.set_result(now)
        if replacements:
            self.transport.write(b"".join(replacements))


def build_messages(cards: list[str], count: int, run: int) -> list[tuple[str, bytes]]:
    """Pre-encoded, framed redemptions of 1 cent with unique request keys for this run."""
    transmitted = f"{run:010d}"  # field 7: unique per run, so no request key repeats
    out = []
    for n in range(count):
        stan = f"{n % 999999 + 1:06d}"
        fields = request_fields(Op.REDEEM, card=cards[n % len(cards)], amount=1, stan=stan,
                                transmitted=transmitted, **TILL)
        payload = isocodec.encode(fields, SPEC_ASCII)
        out.append((stan, len(payload).to_bytes(2, "big") + payload))
    return out


def cpu_seconds(pid: int | str) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(port: int, messages, level: int, seconds: float,
                  pids: dict[str, int] | None = None) -> dict:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    pids = {"driver": os.getpid(), **(pids or {})}
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.perf_counter()
    transport, driver = await loop.create_connection(
        lambda: Driver(messages, level, started + seconds, done), "127.0.0.1", port)
    try:
        finished = await asyncio.wait_for(done, seconds + 30)
    except TimeoutError:
        raise RuntimeError(f"port {port}, {level} outstanding: {len(driver.sent)} requests "
                           f"never answered (answered: {driver.codes})") from None
    elapsed = time.perf_counter() - started
    cpu = {name: 100 * (cpu_seconds(pid) - cpu_before[name]) / elapsed
           for name, pid in pids.items()}
    transport.close()
    lat = sorted(driver.latencies)
    return {
        "rate": len(lat) / (finished - started),
        "p50_ms": lat[len(lat) // 2] * 1000,
        "p99_ms": lat[int(len(lat) * 0.99)] * 1000,
        "codes": driver.codes,
        "cpu": cpu,
        # the host's CPU per answer: what the machine's other load does not change much
        "host_us": cpu.get("host", 0.0) / 100 * elapsed / max(len(lat), 1) * 1e6,
    }


def wait_port(port: int, process: subprocess.Popen, timeout: float = 20) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"host exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--levels", default="1,16,256")
    parser.add_argument("--hosts", default="tillgate,baseline",
                        help="which hosts to run (one alone, e.g. to profile it)")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]

    import tomllib

    from gateway.config.model import parse_config

    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis",
                                                              port=free_port(),
                                                              appendonly=False) as server:
        ports = {"iso": free_port(), "line": free_port(), "http": free_port()}
        text = config_text(ROOT / "config/tillgate.toml", data_dir=str(Path(tmp) / "var"),
                           ports=ports, redis_url=server.url)
        text = text.replace("max_balance = 100000", f"max_balance = {LOAD * 2}")
        text = text.replace('log_level = "INFO"', 'log_level = "WARNING"')
        config_path = Path(tmp) / "bench.toml"
        config_path.write_text(text)
        config = parse_config(tomllib.loads(text))
        cards = asyncio.run(prepare_cards(server.url, config))
        import redis

        client = redis.Redis.from_url(server.url)
        from gateway.ledger.cards import card_id, state_key

        for card in cards:  # activated with a large balance, outside what is measured
            client.hset(state_key(card_id(card)), mapping={"status": "active", "bal": LOAD})
        client.close()

        baseline_port = free_port()
        commands = {
            "tillgate": (ports["iso"], [sys.executable, "-m", "gateway.cli", "serve",
                                        "--config", str(config_path)], tmp),
            "baseline": (baseline_port, [sys.executable, str(ROOT / "bench/baseline_host.py"),
                                         str(baseline_port), server.url], ROOT),
        }
        # the hosts import this checkout's code, not whatever `pip install -e` points at
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        hosts = {name: (port, subprocess.Popen(command, cwd=cwd, env=env))
                 for name, (port, command, cwd) in commands.items()
                 if name in args.hosts.split(",")}
        assert server.process is not None
        try:
            for port, process in hosts.values():
                wait_port(port, process)
            results: dict[tuple[str, int], list[dict]] = {}
            run = 0
            for _round in range(args.rounds):
                for level in levels:
                    for name, (port, process) in hosts.items():
                        run += 2  # distinct request keys for the warm-up and the run
                        budget = min(int(max(level * 200, 60000 * args.seconds)), 999999)
                        warm_up = build_messages(cards, level * 4 + 20000, run - 1)
                        asyncio.run(measure(port, warm_up, level, 0.5))
                        messages = build_messages(cards, budget, run)
                        pids = {"host": process.pid, "redis": server.process.pid}
                        results.setdefault((name, level), []).append(
                            asyncio.run(measure(port, messages, level, args.seconds, pids)))
            report(results, levels, list(hosts))
        finally:
            for _port, process in hosts.values():
                process.terminate()
                process.wait(20)


def report(results, levels, names: list[str]) -> None:
    print(f"{'host':<10} {'outstanding':>11} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}  "
          "CPU % host/redis/driver  host us/req  codes")
    for level in levels:
        rates, costs = {}, {}
        for name in names:
            runs = results[(name, level)]
            rate = statistics.median(r["rate"] for r in runs)
            rates[name] = rate
            costs[name] = statistics.median(r["host_us"] for r in runs)
            p50 = statistics.median(r["p50_ms"] for r in runs)
            p99 = statistics.median(r["p99_ms"] for r in runs)
            codes = {}
            for r in runs:
                for code, n in r["codes"].items():
                    codes[code] = codes.get(code, 0) + n
            cpu = "/".join(f"{statistics.median(r['cpu'][p] for r in runs):.0f}"
                           for p in ("host", "redis", "driver"))
            print(f"{name:<10} {level:>11} {rate:>10.0f} {p50:>8.2f} {p99:>8.2f}  {cpu:>23}  "
                  f"{costs[name]:>11.0f}  {codes}")
        if len(rates) == 2:
            print(f"{'ratio':<10} {level:>11} {rates['tillgate'] / rates['baseline']:>10.2f}x"
                  f"{'':>44}{costs['baseline'] / costs['tillgate']:>10.2f}x (CPU per request)")


if __name__ == "__main__":
    main()

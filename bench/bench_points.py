"""Earn with points lots, tiers and expiry beside earn without them, in one run (issue 19:
within 15 % of today's CPU per earn).

One redis-server started here; 256 loyalty cards per variant, each earning again and again (one
lot per card and day, a tier up once). For each variant, the whole Processor path (claim + earn
script, `--window` requests per loop turn) in requests/s, and the server's own CPU per earn
script and the gateway's (this process's) CPU per earn, from /proc/<pid>/schedstat and
process_time: CPU spent, not time waited for it, so other work on the machine moves it less:

  before      the scripts of `--against` (default: main), the default config without
              tiers and validity: today's earn
  plain       this tree's scripts, the same config: what lots cost a program that has none
  depth       this tree's scripts, the default config of HOST-SPEC 1.1 section 6 (lots, 365-day
              validity, BRONZE / SILVER on a 365-day window)
  promo       depth with one promotion that applies to every earn (double points, every day,
              every merchant: its worst case), the earn issue 19 sets the bar for
  fields      promo with request records in the fields layout (redis.packed_records = false:
              a ledger an older version wrote); plain, depth and promo write the packed layout
              of a ledger this version starts (gateway/ledger/recordlayout.py)
  lots        depth without tiers (lots and expiry alone)
  tiers       depth without lots (tiers on the 365-day window alone)

Rounds interleave the variants; medians are printed.

With `--instructions` the redis-server runs under valgrind's callgrind instead, and the figure
is the instructions the server executes per earn (no time, no medians): the same within about
2 % from run to run however busy the machine is, which CPU time on a shared 2-vCPU VM is not.
Its slowness (about 50 times) does not matter: the bench waits. Needs valgrind
(`apt-get install valgrind`).
`REDIS_SERVER=<path>` picks the server binary (one with symbols lets `callgrind_annotate` name
the costs: the files are kept in the printed folder).

    python bench/bench_points.py [--calls 20000] [--window 64] [--rounds 5] [--against main]
    python bench/bench_points.py --instructions [--calls 1280] [--against main]
    python bench/bench_points.py --instructions --variants promo   (before and promo only)
    python bench/bench_points.py --variants plain,promo              (before, plain and promo)
    python bench/bench_points.py --instructions --variants plain,lots,tiers,depth,promo
                                         (what each feature costs: lots, tiers, both, a promotion)
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.config.model import Config, load_config  # noqa: E402
from gateway.config.promotions import Promotion  # noqa: E402
from gateway.embedded_redis import COMPACT_HASH_ARGS, EmbeddedRedis, free_port  # noqa: E402
from gateway.ledger import cards  # noqa: E402
from gateway.ledger.processor import Processor  # noqa: E402
from gateway.ledger.store import LUA_DIR, Store, load_scripts  # noqa: E402
from protocols.carddata import generate_card_number  # noqa: E402
from protocols.model import Op, Request  # noqa: E402

CARDS = 256


def loyalty_with(config: Config, **changes) -> Config:
    program = replace(config.programs["loyalty"], **changes)
    return replace(config, programs={**config.programs, "loyalty": program})


def without_depth(config: Config) -> Config:
    return loyalty_with(config, tiers=(), points_validity_days=0, tier_window_days=0)


def with_promotion(config: Config) -> Config:
    return loyalty_with(config, promotions=(Promotion(id="DOUBLE", kind="multiplier",
                                                      multiplier=2),))


# Scripts from before the call deadline (store.deadline_ms, ARGV[3] of `claim+<op>`) read the
# claim's arguments from ARGV[3]: they are given them from ARGV[4] on, and skip the deadline (its
# check, a TIME call, is not counted for `before`: the stricter comparison).
NO_DEADLINE = "{ unpack(ARGV, 3) }"
SKIP_DEADLINE = "{ unpack(ARGV, 4) }"


def with_fields_records(config: Config) -> Config:
    return replace(config, redis=replace(config.redis, packed_records=False))


def old_scripts(rev: str, into: Path) -> Path:
    """The Lua folder of `rev`, written out to `into` (adapted to this tree's call arguments)."""
    rel = LUA_DIR.relative_to(ROOT)
    names = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", f"{rev}:{rel}"],
                           capture_output=True, text=True, check=True).stdout.split()
    for name in names:
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{rel}/{name}"],
                              capture_output=True, text=True, check=True).stdout
        if name == "_claim_card.lua" and "deadline" not in text:
            text = text.replace(NO_DEADLINE, SKIP_DEADLINE)
        (into / name).write_text(text)
    return into


async def loyalty_cards(store: Store, processor: Processor) -> list[str]:
    program = processor.config.programs["loyalty"]
    out: list[str] = []
    while len(out) < CARDS:
        card = generate_card_number(program.prefix, program.card_length_max, program.luhn)
        if await cards.issue_card(store, program, card):
            r = await processor.operator_apply(Request(
                op=Op.ACTIVATE, terminal="B", merchant="B", card=card, key=f"act:{card}"))
            assert r.code == "00", r
            out.append(card)
    return out


def server_cpu_ns(pid: int) -> int:
    """The redis-server's CPU time so far (ns, /proc/<pid>/schedstat): what it spent, not how
    long it waited for the CPU, which other work on a shared machine changes."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


async def earn_rate(store: Store, processor: Processor, held: list[str], n: int,
                    window: int, server_pid: int) -> tuple[float, float, float]:
    """(earn requests/s through the Processor, server CPU us per earn, gateway (this process)
    CPU us per earn)."""
    seq = 0
    server0, client0 = server_cpu_ns(server_pid), time.process_time_ns()
    start = time.perf_counter()
    for _ in range(n // window):
        batch = []
        for _ in range(window):
            seq += 1
            batch.append(Request(op=Op.EARN, terminal="TILL0001", merchant="STORE0000000001",
                                 key=f"P:{time.time_ns()}:{seq}", card=held[seq % len(held)],
                                 amount=1000))
        results = await processor.process_many(batch)
        assert results[0].code == "00", results[0]
    done = n // window * window
    rate = done / (time.perf_counter() - start)
    server = (server_cpu_ns(server_pid) - server0) / done / 1000
    client = (time.process_time_ns() - client0) / done / 1000
    return rate, server, client


VARIANTS = ("before", "plain", "depth", "promo", "fields", "lots", "tiers")
DEFAULT_VARIANTS = VARIANTS[:5]  # lots and tiers apart: asked for by name


async def prepared(url: str, lua_before: Path, only: tuple[str, ...] = VARIANTS,
                   ) -> dict[str, tuple[Store, Processor, list[str]]]:
    """The variants on the server at `url` (`before` always), each with its cards activated."""
    depth = load_config(ROOT / "config" / "tillgate.toml")
    plain = without_depth(depth)
    variants: dict[str, tuple[Store, Processor, list[str]]] = {}
    for name, config, lua in (("before", plain, lua_before), ("plain", plain, None),
                              ("depth", depth, None), ("promo", with_promotion(depth), None),
                              ("fields", with_fields_records(with_promotion(depth)), None),
                              ("lots", loyalty_with(depth, tiers=(), tier_window_days=0), None),
                              ("tiers", loyalty_with(depth, points_validity_days=0), None)):
        if name != "before" and name not in only:
            continue
        store = await Store.connect(url)
        if lua is not None:
            store.scripts = load_scripts(lua)
        processor = Processor(config, store)
        variants[name] = (store, processor, await loyalty_cards(store, processor))
    return variants


async def main_async(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "lua").mkdir()
        before_dir = old_scripts(args.against, Path(tmp) / "lua")
        with EmbeddedRedis(tmp, port=free_port(), appendonly=False) as server:
            variants = await prepared(server.url, before_dir, args.variants)
            info = await variants["before"][0].command("INFO", "server")
            pid = int(info["process_id"])
            for store, processor, held in variants.values():  # scripts loaded, tiers reached
                await earn_rate(store, processor, held, 4 * args.window * 4, args.window, pid)
            rows: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
            order = list(variants)
            for turn in range(args.rounds):
                # each round starts one variant further on: the keyspace grows as records
                # accumulate (and the server's tables rehash now and then), so a fixed order
                # would hand the same variant the same share of that growth every round
                for name in order[turn % len(order):] + order[:turn % len(order)]:
                    store, processor, held = variants[name]
                    rows[name].append(await earn_rate(store, processor, held, args.calls,
                                                      args.window, pid))
            for store, _, _ in variants.values():
                await store.close()
    print(f"earn through the Processor, window {args.window}, {args.calls} requests, "
          f"median of {args.rounds} (scripts before: {args.against})")
    print(f"  {'':7} {'earns/s':>9}  {'CPU us per earn: server':>24} {'gateway':>8} {'total':>8}"
          f"  {'vs before':>9}  {'vs plain':>8}")
    totals = {name: statistics.median(s + c for _, s, c in got) for name, got in rows.items()}
    for name, got in rows.items():
        rate = statistics.median(r for r, _, _ in got)
        server = statistics.median(s for _, s, _ in got)
        client = statistics.median(c for _, _, c in got)
        against_plain = f"{totals[name] / totals['plain'] - 1:+8.1%}" if "plain" in totals else ""
        print(f"  {name:7} {rate:>9,.0f}  {server:>24.1f} {client:>8.1f} {totals[name]:>8.1f}"
              f"  {totals[name] / totals['before'] - 1:+9.1%}  {against_plain}")


def callgrind_total(path: str) -> int:
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"{path}: no totals")


async def instructions_async(args) -> None:
    """Instructions per earn executed by a redis-server under callgrind, per variant: a dump
    (which zeroes the counters) before and after each variant's earns."""
    folder = tempfile.mkdtemp(prefix="bench-points-callgrind-")
    (Path(folder) / "lua").mkdir()
    before_dir = old_scripts(args.against, Path(folder) / "lua")
    port = free_port()
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--compress-strings=no", "--compress-pos=no",
         f"--callgrind-out-file={folder}/callgrind.%p",
         os.environ.get("REDIS_SERVER", "redis-server"), "--port", str(port), "--save", "",
         "--appendonly", "no",
         *COMPACT_HASH_ARGS],  # as the embedded server is started: records packed
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        for _ in range(300):  # valgrind starts slowly
            try:
                probe = await Store.connect(url)
                await probe.close()
                break
            except Exception:
                await asyncio.sleep(0.2)
        variants = await prepared(url, before_dir, args.variants)
        for store, processor, held in variants.values():
            await earn_rate(store, processor, held, 4 * args.window * 10, args.window,
                            server.pid)
        per_earn: dict[str, float] = {}
        for name, (store, processor, held) in variants.items():
            dumps = []
            for _ in range(2):  # zero the counters, then the variant's earns alone
                subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True,
                               capture_output=True)
                dumps.append(set(glob.glob(f"{folder}/callgrind.*")))
                if len(dumps) == 1:
                    await earn_rate(store, processor, held, args.calls, args.window, server.pid)
            new = sorted(dumps[1] - dumps[0], key=os.path.getmtime)
            per_earn[name] = callgrind_total(new[-1]) / (args.calls // args.window * args.window)
        for store, _, _ in variants.values():
            await store.close()
    finally:
        server.terminate()
        server.wait()
    print(f"redis-server instructions per earn (callgrind), {args.calls} requests "
          f"(scripts before: {args.against}; dumps in {folder})")
    for name, count in per_earn.items():
        print(f"  {name:7} {count:>10,.0f}  ({count / per_earn['before'] - 1:+.1%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--against", default="main", help="git revision of the scripts before")
    parser.add_argument("--instructions", action="store_true",
                        help="count the server's instructions per earn under callgrind")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help="comma-separated variants to run (before always runs)")
    args = parser.parse_args()
    args.variants = tuple(args.variants.split(","))
    if not set(args.variants) <= set(VARIANTS):
        parser.error(f"--variants: each of {', '.join(VARIANTS)}")
    if args.instructions:
        if args.calls == parser.get_default("calls"):
            args.calls = 1280
        asyncio.run(instructions_async(args))
    else:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

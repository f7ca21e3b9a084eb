"""The back office's journal feed: what it costs the till path, how fast the consumer writes to
SQL, and how far behind it stays under peak load (docs/benchmarks.md section 17).

    python bench/bench_backoffice.py till   [--before main] [--seconds 4] [--rounds 3]
                                            [--postgresql]
    python bench/bench_backoffice.py ingest [--entries 20000] [--rounds 3] [--daily]
                                            [--against COMMIT]
    python bench/bench_backoffice.py lag    [--seconds 60] [--level 256] [--sql sqlite]
    python bench/bench_backoffice.py        # all three with their defaults (bench/run_all.py)

`till`: bench_e2e's driver (redemptions, one connection, 16 and 256 outstanding) against
several gateways, one at a time, each with its own redis-server, alternating round by round:
this checkout as `tillgate serve` runs it (feed written, consumer in the process, SQLite), the
same with `[backoffice] enabled = false` and `tillgate backoffice sync` as a process of its own,
the same with no consumer at all (feed written only), with `--postgresql` one whose consumer
writes PostgreSQL, and the commit `--before` (no feed at all: a copy from `git archive`, with
this checkout's compiled twins).
After each measurement it waits for the consumer to empty the feed, so its catching up does not
land on the next gateway's turn. Medians of answers per second, p50/p99, ratios to `before`.

`ingest`: a feed of N entries (as the scripts write them, spread over 1,000 cards) drained by
the consumer (gateway/backoffice/consumer.py) into a fresh SQLite file and a fresh PostgreSQL
database (tests/pgserver.py starts a real one), each drain in a fresh process
(bench/feeddrain.py): median entries per second, and that process's CPU per entry (its consumer
and sqlite3's worker thread; not PostgreSQL's server). All of a card's entries fall on one day
unless `--daily`, which puts each on a day of its own, as a card used once a day: every entry
then starts the card's day in the summaries (gateway/backoffice/summaries.py), their dearer
case. `--against COMMIT` drains each feed with that commit's consumer too (a copy from `git
archive`), alternating with this checkout's, round by round.

`lag`: `tillgate serve` with its consumer under the driver's peak load for `--seconds`; the
feed's lag sampled every second from /healthz: median and maximum, and the time to catch up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

import msgpack  # noqa: E402
import redis  # noqa: E402
from bench_e2e import LOAD, build_messages, measure, prepare_cards, wait_port  # noqa: E402

from gateway.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from gateway.ledger.cards import card_id, state_key  # noqa: E402
from gateway.ledger.feed import FEED_STREAM  # noqa: E402
from gateway.testing import config_text  # noqa: E402

# -- till: the till path with the feed on and off ----------------------------------------------

class Host:
    """A `tillgate serve` of some source tree, with its own redis-server and data directory."""

    def __init__(self, name: str, tree: Path, work: Path, extra: str = "",
                 sync: bool = False):
        self.name, self.tree, self.work = name, tree, work
        self.sync = sync  # also run `tillgate backoffice sync`, a process of its own
        self.sync_process: subprocess.Popen | None = None
        work.mkdir(parents=True)
        self.redis = EmbeddedRedis(work / "redis", port=free_port(), appendonly=False)
        self.redis.start()
        self.ports = {"iso": free_port(), "line": free_port(), "http": free_port()}
        text = config_text(ROOT / "config/tillgate.toml", data_dir=str(work / "var"),
                           ports=self.ports, redis_url=self.redis.url, extra=extra)
        text = text.replace("max_balance = 100000", f"max_balance = {LOAD * 2}")
        text = text.replace('log_level = "INFO"', 'log_level = "WARNING"')
        self.config_path = work / "bench.toml"
        self.config_path.write_text(text)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        import tomllib

        from gateway.config.model import parse_config

        config = parse_config(tomllib.loads(self.config_path.read_text()))
        self.cards = asyncio.run(prepare_cards(self.redis.url, config))
        client = redis.Redis.from_url(self.redis.url)
        for card in self.cards:
            client.hset(state_key(card_id(card)), mapping={"status": "active", "bal": LOAD})
        client.close()
        env = {**os.environ, "PYTHONPATH": str(self.tree)}
        log = open(self.work / "gateway.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--config", str(self.config_path)],
            cwd=self.tree, env=env, stdout=log, stderr=log)
        log.close()
        wait_port(self.ports["iso"], self.process)
        if self.sync:
            log = open(self.work / "sync.log", "ab")
            self.sync_process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "backoffice", "sync", "--config",
                 str(self.config_path)], cwd=self.tree, env=env, stdout=log, stderr=log)
            log.close()

    def pids(self) -> dict[str, int]:
        assert self.process is not None and self.redis.process is not None
        found = {"host": self.process.pid, "redis": self.redis.process.pid}
        if self.sync_process is not None:
            found["sync"] = self.sync_process.pid
        return found

    def feed_length(self) -> int:
        client = redis.Redis.from_url(self.redis.url)
        try:
            return int(client.xlen(FEED_STREAM))
        finally:
            client.close()

    def health(self) -> dict:
        url = f"http://127.0.0.1:{self.ports['http']}/healthz"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        if self.sync_process is not None:
            self.sync_process.terminate()
            self.sync_process.wait(30)
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
        self.redis.stop()


def source_of(commit: str, where: Path) -> Path:
    """The tree of `commit` (git archive: no worktree, no checkout), with this checkout's
    compiled twins (ext/ is the same; the copy has no build)."""
    where.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    for built in (ROOT / "protocols").glob("_*_c*.so"):
        shutil.copy2(built, where / "protocols" / built.name)
    return where


def till(args) -> None:
    levels = [int(x) for x in args.levels.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        before = source_of(args.before, base / "before")
        pg = None
        if args.postgresql:
            from pgserver import PostgresServer
            pg = PostgresServer()
            pg.start()
        hosts = [Host("feed+consumer", ROOT, base / "on"),
                 Host("feed+sync process", ROOT, base / "sync",
                      extra="[backoffice]\nenabled = false\n", sync=True),
                 Host("feed, no consumer", ROOT, base / "feed",
                      extra="[backoffice]\nenabled = false\n"),
                 Host(f"before ({args.before})", before, base / "off")]
        if pg is not None:  # the consumer writing PostgreSQL (another process) instead
            hosts.insert(1, Host("feed+consumer (pg)", ROOT, base / "pg",
                                 extra=f'[backoffice]\nurl = "{pg.new_database()}"\n'))
        try:
            for host in hosts:
                host.start()
            results: dict[tuple[str, int], list[dict]] = {}
            run = 0
            for _round in range(args.rounds):
                for level in levels:
                    for host in hosts:
                        run += 2
                        budget = min(int(max(level * 200, 60000 * args.seconds)), 999999)
                        asyncio.run(measure(host.ports["iso"], build_messages(
                            host.cards, level * 4 + 20000, run - 1), level, 0.5))
                        r = asyncio.run(measure(host.ports["iso"], build_messages(
                            host.cards, budget, run), level, args.seconds, host.pids()))
                        r["feed_after"] = host.feed_length()
                        results.setdefault((host.name, level), []).append(r)
                        if host.name.startswith("feed+"):
                            _drained(host)
                        else:  # the feed of a gateway without a consumer: emptied, unmeasured
                            client = redis.Redis.from_url(host.redis.url)
                            client.delete(FEED_STREAM)
                            client.close()
            print(f"{'gateway':<24} {'outstanding':>11} {'req/s':>9} {'ratio':>6} {'p50 ms':>7} "
                  f"{'p99 ms':>7}  CPU % host/redis/sync  host us/req  feed left")
            for level in levels:
                ref = statistics.median(r["rate"] for r in results[(hosts[-1].name, level)])
                for host in hosts:
                    runs = results[(host.name, level)]
                    rate = statistics.median(r["rate"] for r in runs)
                    cpu = "/".join(f"{statistics.median(r['cpu'].get(p, 0) for r in runs):.0f}"
                                   for p in ("host", "redis", "sync"))
                    print(f"{host.name:<24} {level:>11} {rate:>9.0f} {rate / ref:>6.2f} "
                          f"{statistics.median(r['p50_ms'] for r in runs):>7.2f} "
                          f"{statistics.median(r['p99_ms'] for r in runs):>7.2f}  {cpu:>21}  "
                          f"{statistics.median(r['host_us'] for r in runs):>11.0f}  "
                          f"{statistics.median(r['feed_after'] for r in runs):>9.0f}")
        finally:
            for host in hosts:
                host.stop()
            if pg is not None:
                pg.stop()


def _drained(host: Host, timeout: float = 120.0) -> float:
    started = time.monotonic()
    while host.feed_length():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{host.name}: the feed is not drained in {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


# -- ingest: the consumer's entries per second into SQL ---------------------------------------

def fill_feed(url: str, entries: int, cards: int = 1000, daily: bool = False) -> None:
    """A feed as the card scripts write it (gateway/ledger/feed.py), `entries` long; with
    `daily`, a card's entries a day apart (the last today)."""
    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    seq = [0] * cards
    now = int(time.time())
    per_card = -(-entries // cards)
    for n in range(entries):
        c = n % cards
        seq[c] += 1
        cid = f"{c:032x}"
        t = now - (per_card - seq[c]) * 86400 if daily else now
        entry = {"op": "redeem", "card": "603953******0000", "ch": cid, "dv": -100, "dp": 0,
                 "bal": 10**6 - 100 * seq[c], "pts": 0, "term": "TILL0001",
                 "merch": "STORE0000000001", "key": f"K:{n}", "t": t, "n": seq[c]}
        pipe.xadd(FEED_STREAM, {"e": msgpack.packb(entry), "j": f"{t * 1000 + n}-0",
                                "p": "gift"})
        if n % 2000 == 1999:
            pipe.execute()
    pipe.execute()
    client.close()


def drain_with(tree: Path, redis_url: str, sql_url: str) -> tuple[int, float, float]:
    """bench/feeddrain.py in a fresh process whose `gateway` is `tree`'s (this checkout's or
    --against's copy): every tree measured alike, none warmed by an earlier round."""
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "feeddrain.py"), redis_url,
                          sql_url], env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree,
                         check=True, capture_output=True, text=True).stdout.split()
    return int(out[0]), float(out[1]), float(out[2])


def ingest(args) -> None:
    from pgserver import PostgresServer, PostgresUnavailable

    pg = PostgresServer()
    try:
        pg.start()
    except PostgresUnavailable as e:
        print(f"PostgreSQL: skipped ({e})")
        pg = None
    kinds = ("sqlite", "postgresql") if pg is not None else ("sqlite",)
    # (tree, database) -> [(entries/s, CPU us per entry)], a run per round
    found: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis",
                                                              port=free_port(),
                                                              appendonly=False) as server:
        trees = {"this checkout": ROOT}
        if args.against:
            trees = {args.against: source_of(args.against, Path(tmp) / "against"), **trees}
        try:
            for round_ in range(args.rounds):
                for kind in kinds:
                    for name, tree in trees.items():
                        url = (f"sqlite:///{tmp}/bo-{round_}-{tree.name}.sqlite3"
                               if kind == "sqlite" else pg.new_database())  # type: ignore[union-attr]
                        redis.Redis.from_url(server.url).flushall()
                        fill_feed(server.url, args.entries, daily=args.daily)
                        n, seconds, cpu = drain_with(tree, server.url, url)
                        assert n == args.entries, (n, args.entries)
                        found.setdefault((name, kind), []).append((n / seconds, cpu * 1e6 / n))
        finally:
            if pg is not None:
                pg.stop()
    print(f"{args.entries} entries drained{', a day per entry' if args.daily else ''}; medians of "
          f"{args.rounds} rounds (CPU: the draining process, sqlite3's thread included)")
    print(f"{'tree':<16} {'database':<11} {'entries/s':>10} {'CPU us/entry':>13}  runs (entries/s)")
    for (name, kind), runs in found.items():
        print(f"{name:<16} {kind:<11} {statistics.median(r for r, _ in runs):>10,.0f} "
              f"{statistics.median(c for _, c in runs):>13.1f}  "
              f"{', '.join(f'{r:,.0f}' for r, _ in runs)}")


# -- lag: the consumer under peak load ---------------------------------------------------------

def lag(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        extra = ""
        pg = None
        if args.sql == "postgresql":
            from pgserver import PostgresServer
            pg = PostgresServer()
            pg.start()
            extra = f'[backoffice]\nurl = "{pg.new_database()}"\n'
        host = Host("serve", ROOT, Path(tmp) / "gw", extra=extra)
        try:
            host.start()
            assert host.process is not None
            samples: list[tuple[int, float]] = []
            result: dict = {}

            async def drive() -> None:
                task = asyncio.ensure_future(measure(
                    host.ports["iso"], build_messages(host.cards, 999999, 2), args.level,
                    args.seconds, {"host": host.process.pid, "redis": host.redis.process.pid}))
                while not task.done():
                    await asyncio.sleep(1.0)
                    h = await asyncio.to_thread(host.health)
                    if h["backoffice_lag_entries"] is not None:
                        samples.append((h["backoffice_lag_entries"],
                                        h["backoffice_lag_seconds"]))
                result.update(await task)

            asyncio.run(drive())
            catch_up = _drained(host)
            entries = [s[0] for s in samples]
            seconds = [s[1] for s in samples]
            print(f"{args.seconds:.0f} s at {args.level} outstanding, back office on "
                  f"{args.sql}: {result['rate']:,.0f} answers/s, p99 {result['p99_ms']:.1f} ms, "
                  f"CPU % host/redis {result['cpu']['host']:.0f}/{result['cpu']['redis']:.0f}")
            print(f"lag entries: median {statistics.median(entries):,.0f}, max {max(entries):,}"
                  f"; lag seconds: median {statistics.median(seconds):.1f}, max "
                  f"{max(seconds):.1f}; feed empty {catch_up:.1f} s after the load")
        finally:
            host.stop()
            if pg is not None:
                pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="part", required=True)
    p = sub.add_parser("till")
    p.add_argument("--before", default="main", help="the commit without the feed")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--levels", default="16,256")
    p.add_argument("--postgresql", action="store_true",
                   help="a fourth gateway whose consumer writes PostgreSQL (tests/pgserver.py)")
    p.set_defaults(func=till)
    p = sub.add_parser("ingest")
    p.add_argument("--entries", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--daily", action="store_true",
                   help="each of a card's entries on a day of its own (a card used once a day)")
    p.add_argument("--against", metavar="COMMIT",
                   help="drain each feed with that commit's consumer too, side by side")
    p.set_defaults(func=ingest)
    p = sub.add_parser("lag")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--level", type=int, default=256)
    p.add_argument("--sql", choices=("sqlite", "postgresql"), default="sqlite")
    p.set_defaults(func=lag)
    parts = [sys.argv[1:]] if sys.argv[1:] else [["till"], ["ingest"], ["lag"]]  # run_all.py
    for argv in parts:
        args = parser.parse_args(argv)
        if len(parts) > 1:
            print(f"--- {args.part}", flush=True)
        args.func(args)


if __name__ == "__main__":
    main()

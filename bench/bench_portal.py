"""The web portal's answer times: a logged-in page, a card lookup, a card action (suspend), the
staff dashboard, online entry and the operators and API tokens pages, over HTTP, from a client
on the same machine, against a `tillgate serve` subprocess on its embedded default (SQLite back
office, embedded Redis) holding `--cards` issued gift cards and `--operators` staff accounts;
then the analytics and staff report pages over a back office holding `--journal` entries of a
year (bench_reports.py's seeded journal, written into the gateway's SQLite file).

Each request is a new TCP connection (as a browser's first request of a page), sequential, so
the figure is one page's latency, not throughput. Prints p50, p95 and p99 per page.
docs/benchmarks.md section 15.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_activate import consecutive  # noqa: E402
from bench_reports import insert_journal, journal, summarise  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from gateway.config.model import load_config  # noqa: E402
from gateway.ledger import cards  # noqa: E402
from gateway.ledger.storeconnect import store_session  # noqa: E402
from gateway.testing import GatewayProcess  # noqa: E402
from tests.portalclient import PASSWORD, Client, login_password  # noqa: E402


async def issue(config_file: Path, numbers: list[str]) -> None:
    config = load_config(config_file)
    async with store_session(config) as store:
        for start in range(0, len(numbers), 1000):
            await asyncio.gather(*(cards.issue_card(store, config.programs["gift"], n)
                                   for n in numbers[start:start + 1000]))


async def add_staff(config_file: Path, count: int) -> None:
    from gateway.backoffice import operators as ops
    from gateway.backoffice.connect import backoffice_session

    config = load_config(config_file)
    async with backoffice_session(config) as engine:
        for i in range(count):
            await ops.add_operator(engine, f"staff{i}@example.com", f"Staff {i}", "staff",
                                   "STORE0000000001", "email")


def log_in(gateway: GatewayProcess, address: str = "bench@example.com",
           role: str = "head_office", *merchant: str) -> Client:
    subprocess.run(gateway.command("users", "add", "--email", address, "--name",
                                   "Bench", "--role", role, *merchant, "--second-factor",
                                   "email", "--password"), input=PASSWORD + "\n", text=True,
                   check=True, capture_output=True, cwd=gateway.workdir)
    client = Client(gateway.ports["http"])
    login_password(client, address)
    mail = max((gateway.workdir / "var" / "mail" / "new").iterdir(),
               key=lambda p: p.stat().st_mtime)
    code = re.search(r"code is (\d{6})", mail.read_text()).group(1)
    page = client.get("/ui/login/code")
    assert client.post("/ui/login/code", {"csrf": page.csrf, "code": code}).location == "/ui/"
    return client


REF = re.compile(r'name="ref" value="([^"]*)"')  # the card page's sealed card reference


def entry(csrf: str, card: str) -> dict[str, str]:
    """The form of online transaction entry: a load of 1.00."""
    return {"csrf": csrf, "card": card, "kind": "load", "amount": "1.00"}


def hidden(body: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', body))


def fill_journal(gateway: GatewayProcess, entries: int, cards: int) -> None:
    """The year's entries, written into the running gateway's back office (migrated by the
    login), in time order as the feed writes them, and their per-day summaries."""
    path = gateway.workdir / "var" / "backoffice.sqlite3"
    db = sqlite3.connect(path, timeout=30)
    try:
        insert_journal(db, journal(entries, cards, random.Random(16)))
        db.commit()
    finally:
        db.close()
    started = time.perf_counter()
    asyncio.run(summarise(make_url(f"sqlite+aiosqlite:///{path}"),
                          load_config(gateway.config_path).programs))
    print(f"  summaries built in {time.perf_counter() - started:.0f} s", flush=True)
    db = sqlite3.connect(path, timeout=30)
    try:
        db.execute("ANALYZE")
    finally:
        db.close()


def add_customers(gateway: GatewayProcess, count: int, numbers: list[str]) -> None:
    """`count` customers (C000001...) in the gateway's back office, each holding one of the
    issued cards, written straight into its SQLite file (as an import would leave them)."""
    db = sqlite3.connect(gateway.workdir / "var" / "backoffice.sqlite3", timeout=30)
    try:
        db.executemany(
            "INSERT INTO customers (id, code, name, email, phone, status, consent, notes, "
            "created_t) VALUES (?, ?, ?, ?, ?, 'active', 0, '', 1767225600)",
            ((i, f"C{i:06d}", f"Customer {i:06d}", f"c{i:06d}@example.com",
              f"+44 20 {i:08d}") for i in range(1, count + 1)))
        db.executemany(
            "INSERT INTO card_holders (card_id, customer_id, card_mask, program, linked_t, "
            "linked_by) VALUES (?, ?, ?, 'gift', 1767225600, 'bench')",
            ((cards.card_id(number), i, f"{number[:6]}******{number[-4:]}")
             for i, number in enumerate(numbers[:count], start=1)))
        db.commit()
        db.execute("ANALYZE")
    finally:
        db.close()


def customer_pages(client: Client, count: int, numbers: list[str]) -> list[tuple[str, object]]:
    """(label, path, or a function of none asking the page): the customers pages head office
    opens. A card is searched by POST, as the page's form does (never in a URL)."""
    csrf = client.get("/ui/customers").csrf
    return [
        ("GET /ui/customers (first page)", "/ui/customers"),
        ("GET /ui/customers (a later page)",
         lambda: client.get(f"/ui/customers?after=C{random.randrange(1, count):06d}")),
        ("GET /ui/customers?q=<a name>",
         lambda: client.get(f"/ui/customers?q=customer+{random.randrange(1, count):06d}")),
        ("POST /ui/customers (a card)", lambda: client.post(
            "/ui/customers", {"csrf": csrf, "q": random.choice(numbers[:count])})),
        ("GET /ui/customers/show (a customer)",
         lambda: client.get(f"/ui/customers/show?code=C{random.randrange(1, count):06d}")),
    ]


# (label, path): what head office opens; requests of each = --report-requests
REPORT_PAGES = [
    ("analytics, gift, a month by day",
     "/ui/analytics?program=gift&from=2026-06-01&to=2026-06-30&by=day"),
    ("analytics, loyalty, a month by day",
     "/ui/analytics?program=loyalty&from=2026-06-01&to=2026-06-30&by=day"),
    ("analytics, gift, the year by week",
     "/ui/analytics?program=gift&from=2026-01-01&to=2026-12-31&by=week"),
    ("analytics, gift, the year by month",
     "/ui/analytics?program=gift&from=2026-01-01&to=2026-12-31&by=month"),
    ("analytics CSV, gift, a month by day",
     "/ui/analytics.csv?program=gift&from=2026-06-01&to=2026-06-30&by=day"),
    ("staff report, a month", "/ui/staff-report?from=2026-06-01&to=2026-06-30"),
]


def time_pages(client: Client, pages, requests: int) -> None:
    for name, where in pages:
        samples = []
        try:
            for _ in range(requests):
                t = time.perf_counter()
                answer = where() if callable(where) else client.get(where)
                samples.append(time.perf_counter() - t)
                assert answer.status == 200, (answer.status, answer.body[:300])
        except TimeoutError:  # the client's 10 s: said, and the next page timed
            print(f"{name:<38} no answer within the client's 10 s time-out", flush=True)
            continue
        print(f"{name:<38} {requests} requests  {percentiles(samples)}", flush=True)


def percentiles(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100)
    return f"p50 {q[49] * 1000:.1f} ms  p95 {q[94] * 1000:.1f} ms  p99 {q[98] * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--operators", type=int, default=200)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--journal", type=int, default=1_000_000,
                        help="journal entries of a year in the back office (0: none)")
    parser.add_argument("--report-requests", type=int, default=100)
    parser.add_argument("--customers", type=int, default=10_000,
                        help="customers in the back office, each holding a card (0: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gateway = GatewayProcess.prepare(Path(tmp)).start()
        try:
            numbers = consecutive(args.cards)
            started = time.perf_counter()
            asyncio.run(issue(gateway.config_path, numbers))
            print(f"{args.cards} cards issued in {time.perf_counter() - started:.1f} s")
            client = log_in(gateway)
            asyncio.run(add_staff(gateway.config_path, args.operators))
            page = client.get("/ui/cards")
            manager = log_in(gateway, "manager@example.com", "merchant_manager", "--merchant",
                             "STORE0000000001")
            desk = manager.get("/ui/staff")
            active = numbers[:args.requests]  # loads need active cards
            subprocess.run(gateway.command("cards", "activate", "--program", "gift", "--first",
                                           active[0], "--last",
                                           active[-1], "--amount", "10.00"), check=True,
                           capture_output=True, cwd=gateway.workdir)
            for name, ask in (
                    ("GET /ui/ (home)", lambda: client.get("/ui/")),
                    ("POST /ui/cards (lookup)", lambda: client.post(
                        "/ui/cards", {"csrf": page.csrf, "card": random.choice(numbers)})),
                    ("POST /ui/staff (open)", lambda: manager.post(
                        "/ui/staff", {"csrf": desk.csrf, "card": random.choice(numbers)})),
                    ("POST /ui/entry (check)", lambda: manager.post(
                        "/ui/entry", entry(desk.csrf, random.choice(active)))),
                    ("POST /ui/entry/send", None),
                    (f"GET /ui/operators ({args.operators})", lambda: client.get("/ui/operators")),
                    ("GET /ui/tokens", lambda: client.get("/ui/tokens"))):
                samples = []
                for _ in range(args.requests):
                    if ask is None:  # a load: its check step first, not timed
                        form = hidden(manager.post("/ui/entry", entry(
                            desk.csrf, random.choice(active))).body)
                        t = time.perf_counter()
                        answer = manager.post("/ui/entry/send", form)
                        assert "id=\"answer-code\">00<" in answer.body
                    else:
                        t = time.perf_counter()
                        answer = ask()
                    samples.append(time.perf_counter() - t)
                    assert answer.status == 200, answer.status
                print(f"{name:<26} {args.requests} requests  {percentiles(samples)}")
            samples = []
            for card in random.sample(numbers, args.requests):  # each card suspended once
                shown = client.post("/ui/cards", {"csrf": page.csrf, "card": card})
                ref = REF.search(shown.body).group(1)
                t = time.perf_counter()
                answer = client.post("/ui/cards/action", {"csrf": page.csrf, "ref": ref,
                                                          "action": "suspend"})
                samples.append(time.perf_counter() - t)
                assert answer.status == 200, answer.status
            print(f"{'POST /ui/cards/action':<26} {args.requests} requests  "
                  f"{percentiles(samples)}")
            if args.customers:
                add_customers(gateway, args.customers, numbers)
                time_pages(client, customer_pages(client, args.customers, numbers),
                           args.report_requests)
            if args.journal:
                started = time.perf_counter()
                fill_journal(gateway, args.journal, args.cards)
                print(f"{args.journal} journal entries written in "
                      f"{time.perf_counter() - started:.0f} s", flush=True)
                time_pages(client, REPORT_PAGES, args.report_requests)
        finally:
            gateway.stop()


if __name__ == "__main__":
    main()

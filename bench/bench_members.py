"""The member page's answer times: sign-in with a card's number and PIN, then the card page with
its first page of history, over HTTP from a client on the same machine, against a `tillgate
serve` subprocess on its embedded default (SQLite back office, embedded Redis) holding `--cards`
issued cards of the PIN program `secure`.

The cards signed in to are activated and given 24 more journal entries each, so the history's
first page is full (20 entries). Each sample is a new browser: a new TCP connection per request,
GET the form, POST the number and PIN (the sign-in: rate limits and the balance inquiry's card
script with its PIN check), GET /m/card (value, QR code, barcode, history page, card view).
Sequential, so the figures are one member's latency, not throughput. The sign-in rate limit
per address is raised for the bench (every request comes from 127.0.0.1).
docs/benchmarks.md section 20.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.config.model import load_config  # noqa: E402
from gateway.ledger import cards  # noqa: E402
from gateway.ledger.processor import Processor  # noqa: E402
from gateway.ledger.storeconnect import store_session  # noqa: E402
from gateway.testing import GatewayProcess  # noqa: E402
from protocols.carddata import luhn_check_digit  # noqa: E402
from protocols.model import Op, Request  # noqa: E402
from tests.portalclient import Client  # noqa: E402

PIN = "2468"
RULES = """
[[rules]]
name = "member-signin-source"
scope = "source"
event = "member_signin"
window = 600
max_count = 1000000
action = "decline"

[[rules]]
name = "member-signin-card"
scope = "card"
event = "member_signin"
window = 600
max_count = 10
action = "decline"
"""


def numbers_of(count: int) -> list[str]:
    base = int("603954" + str(random.randrange(10 ** 4, 10 ** 5)) + "0000")
    return [str(base + i) + str(luhn_check_digit(str(base + i))) for i in range(count)]


async def prepare(config_file: Path, numbers: list[str], members: list[str]) -> None:
    config = load_config(config_file)
    program = config.programs["secure"]
    async with store_session(config) as store:
        for start in range(0, len(numbers), 1000):
            await asyncio.gather(*(cards.issue_card(store, program, n, PIN)
                                   for n in numbers[start:start + 1000]))
        processor = Processor(config, store)
        for n, card in enumerate(members):
            await processor.operator_apply(cards.operator_activation(
                card, 10_000, 0, "bench", f"bench-a{n}", "bench"))
            for k in range(24):
                await processor.operator_apply(Request(
                    op=Op.REDEEM, terminal="bench", merchant="bench", key=f"bench-r{n}-{k}",
                    card=card, amount=10, pin=PIN, channel="bench"))


def percentiles(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100)
    return f"p50 {q[49] * 1000:.1f} ms  p95 {q[94] * 1000:.1f} ms  p99 {q[98] * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=100, help="cards signed in to")
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gateway = GatewayProcess.prepare(Path(tmp), extra=RULES).start()
        try:
            numbers = numbers_of(args.cards)
            members = random.sample(numbers, args.members)
            started = time.perf_counter()
            asyncio.run(prepare(gateway.config_path, numbers, members))
            print(f"{args.cards} cards issued, {args.members} with 25 journal entries, in "
                  f"{time.perf_counter() - started:.1f} s")
            port = gateway.ports["http"]
            signin, history, both = [], [], []
            for n in range(args.requests):
                client = Client(port)
                form = client.get("/m/")
                t0 = time.perf_counter()
                answer = client.post("/m/signin", {"csrf": form.csrf,
                                                   "card": members[n % len(members)],
                                                   "pin": PIN})
                t1 = time.perf_counter()
                page = client.get("/m/card")
                t2 = time.perf_counter()
                assert answer.location == "/m/card", (answer.status, answer.body[:300])
                assert page.status == 200 and page.body.count("<tr><td>") == 20
                signin.append(t1 - t0)
                history.append(t2 - t1)
                both.append(t2 - t0)
            print(f"{'POST /m/signin':<28} {args.requests} requests  {percentiles(signin)}")
            print(f"{'GET /m/card (history)':<28} {args.requests} requests  {percentiles(history)}")
            print(f"{'sign-in + history':<28} {args.requests} requests  {percentiles(both)}")
        finally:
            gateway.stop()


if __name__ == "__main__":
    main()

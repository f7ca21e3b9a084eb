"""Cost of the velocity rules on the Processor's redeem path (claim + card script per request).

Four configurations on one redis-server started here, measured in interleaved rounds:

  no flag      claim.lua as before issue 8: no velocity arguments at all (not a real
               configuration: the disabled-terminal check is always on)
  default      HOST-SPEC 6: the one alert-only unknown-card rule (phase 1 still checks the
               terminal's disabled flag)
  +2 checks    plus a card-scope redeem count rule (checked and counted in the card script) and
               a terminal-scope redeem amount rule (checked and reserved in claim.lua); limits
               high enough never to trip
  +rate limit  plus a terminal unknown-card rate limit (action decline): every request reserves
               one event in phase 1 and gives it back in phase 3 (one more script per request)

Then the balance-inquiry path, with and without the default's (1.1) card rule on `balance`
(its limit raised so the bench's few hundred cards never trip it: the same script work).

    python bench/bench_rules.py [--calls 20000] [--window 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_store import prepare, processor_rate  # noqa: E402

from gateway.config.model import Rule, load_config  # noqa: E402
from gateway.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from gateway.ledger.processor import Processor  # noqa: E402
from gateway.security.rules import ClaimPlan  # noqa: E402
from protocols.model import Op  # noqa: E402

HIGH = 10**15
CHECKS = (Rule("card-redeem", "card", "redeem", 600, max_count=HIGH, action="decline"),
          Rule("term-redeem", "terminal", "redeem", 86400, max_amount=HIGH, action="decline"))
RATE = (Rule("enum", "terminal", "unknown_card", 60, max_count=HIGH, action="decline"),)


async def main_async(args) -> None:
    base = load_config(ROOT / "config" / "tillgate.toml")
    configs = {"default": base,
               "+2 checks": replace(base, rules=base.rules + CHECKS),
               "+rate limit": replace(base, rules=base.rules + CHECKS + RATE)}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, port=free_port(),
                                                             appendonly=False) as server:
        store, gift, _ = await prepare(server.url, base)
        processors = {name: Processor(config, store) for name, config in configs.items()}
        bare = Processor(base, store)
        bare.velocity.claim_plan = lambda req, now: ClaimPlan([], [])  # type: ignore[method-assign]
        processors = {"no flag": bare, **processors}
        redeem = await _measure(processors, gift, args, Op.REDEEM)
        unlimited = [r for r in base.rules if r.event != "balance"]
        inquiries = {"no rule": Processor(replace(base, rules=tuple(unlimited)), store),
                     "default": Processor(replace(base, rules=tuple(
                         replace(r, max_count=HIGH) if r.event == "balance" else r
                         for r in base.rules)), store)}
        balance = await _measure(inquiries, gift, args, Op.BALANCE)
        await store.close()
    _report(f"processor redeem path, window {args.window}, median of {args.rounds} rounds",
            redeem)
    _report("balance inquiry path (1.1 default: a card rule on balance)", balance)


async def _measure(processors: dict[str, Processor], gift: list[str], args,
                   op: Op) -> dict[str, float]:
    for processor in processors.values():  # load the scripts, warm up
        await processor_rate(processor, gift, 4 * args.window, args.window, op)
    rows: dict[str, list[float]] = {name: [] for name in processors}
    for _ in range(args.rounds):
        for name, processor in processors.items():
            rows[name].append(await processor_rate(processor, gift, args.calls, args.window, op))
    return {name: statistics.median(v) for name, v in rows.items()}


def _report(title: str, med: dict[str, float]) -> None:
    print(title)
    for name, value in med.items():
        cost = (1 / value - 1 / med["default"]) * 1e6
        print(f"  {name:12} {value:>10,.0f} requests/s   ratio {value / med['default']:.2f}   "
              f"{cost:+.1f} us/request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

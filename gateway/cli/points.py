"""`tillgate points expire [--now WHEN] [--json]`: the points sweep by hand (docs/ledger.md
"Points lots and expiry"): due lots expire as journal entries, tiers are reviewed at their
review day, and reward reservations held too long on a Redis Cluster are settled (claims whose
gateway died half-way: gateway/ledger/rewardsweep.py), as `serve` does every
points_sweep_interval. Safe to repeat and to run beside a gateway."""

from __future__ import annotations

import datetime as dt
import json
import time

from gateway.cli.config import load_or_report
from gateway.cli.main import fail
from gateway.cli.storecommand import run_command
from gateway.config.model import Config
from gateway.ledger.rewardsweep import sweep_points_and_reservations
from gateway.ledger.storeconnect import store_session


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("points", help="loyalty points: expiry and tier reviews")
    sub = parser.add_subparsers(dest="points_command", required=True)
    expire = sub.add_parser("expire", parents=[common],
                            help="expire due points lots and review tiers (the daily sweep)")
    expire.add_argument("--now", default=None, metavar="WHEN",
                        help="sweep as of this time: YYYY-MM-DD, an ISO 8601 time (UTC unless "
                        "it says), or epoch seconds (default: now)")
    expire.add_argument("--json", action="store_true", help="the report as one JSON object")
    expire.set_defaults(func=run_expire)


def parse_when(text: str) -> float | None:
    """--now: epoch seconds, a date (its midnight UTC) or an ISO 8601 time; None if neither."""
    if text.isdigit():
        return float(text)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def run_expire(args) -> int:
    now = time.time() if args.now is None else parse_when(args.now)
    if now is None:
        return fail(f"--now {args.now!r}: give YYYY-MM-DD, an ISO 8601 time or epoch seconds")
    config = load_or_report(args.config)
    if config is None:
        return 2
    return run_command(_expire(config, now, args.json))


async def _expire(config: Config, now: float, as_json: bool) -> int:
    async with store_session(config) as store:
        report, held = await sweep_points_and_reservations(store, config, now)
    if as_json:
        print(json.dumps({"cards": report.cards, "expired": report.expired,
                          "expiries": report.expiries, "tier_changes": report.tier_changes,
                          "by_program": report.by_program,
                          "reservations": {"claimed": held.claimed, "returned": held.returned}},
                         sort_keys=True))
        return 0
    when = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    print(f"points sweep as of {when}: {report.cards} cards swept, {report.expired} points "
          f"expired on {report.expiries} cards, {report.tier_changes} tier changes")
    if held.claimed or held.returned:  # only on a Redis Cluster (rewardsweep.py)
        print(f"reward reservations settled: {held.claimed} claimed, {held.returned} items "
              "given back")
    return 0

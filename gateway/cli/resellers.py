"""`tillgate resellers report --reseller ID [--date YYYY-MM-DD] [--out FILE.csv]`.

The settlement report of one reseller for one UTC day (default: yesterday, the day a
settlement run usually covers): every approved activation, deactivation and reversal its
terminals made, as CSV with amounts in minor units and card numbers masked.
"""

from __future__ import annotations

import datetime as dt
import sys

from gateway.cli.config import load_or_report
from gateway.cli.main import fail
from gateway.config.model import Config
from gateway.ledger.resellers import report_csv, settlement_rows
from gateway.ledger.storeconnect import run_command, store_session


def register(subparsers, common) -> None:
    resellers = subparsers.add_parser("resellers", help="reseller (POSA) settlement")
    sub = resellers.add_subparsers(dest="resellers_command", required=True)
    report = sub.add_parser("report", parents=[common], help="one day's settlement CSV")
    report.add_argument("--reseller", required=True, help="reseller id from the config")
    report.add_argument("--date", help="UTC day, YYYY-MM-DD (default: yesterday)")
    report.add_argument("--out", metavar="FILE.csv", help="write here (default: stdout)")
    report.set_defaults(func=run_report)


def run_report(args) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    if args.reseller not in config.resellers:
        known = ", ".join(config.resellers) or "none configured"
        return fail(f"unknown reseller {args.reseller!r} (have: {known})")
    try:
        day = (dt.date.fromisoformat(args.date) if args.date
               else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
    except ValueError:
        return fail(f"--date {args.date!r}: expected YYYY-MM-DD")
    return run_command(_report(config, args.reseller, day, args.out))


async def _report(config: Config, reseller: str, day: dt.date, out_path: str | None) -> int:
    async with store_session(config) as store:
        rows = await settlement_rows(store, config, reseller, day)
    text = report_csv(rows)
    if out_path is None:
        sys.stdout.write(text)
    else:
        try:
            with open(out_path, "w", newline="") as f:
                f.write(text)
        except OSError as e:
            return fail(f"cannot write {out_path}: {e.strerror}")
    print(f"{reseller} {day.isoformat()}: {len(rows)} settled transaction(s)", file=sys.stderr)
    return 0

"""`tillgate resellers report|reconcile` (docs/resellers.md).

`report --reseller ID [--date YYYY-MM-DD] [--out FILE.csv]`: the settlement report of one
reseller for one UTC day (default: yesterday, the day a settlement run usually covers): every
approved activation, deactivation and reversal its terminals made, as CSV with amounts in minor
units and card numbers masked.

`reconcile --reseller ID [--date YYYY-MM-DD] [--json] FILE.csv`: the reseller's settlement file
of that day (in the report's format) against ours; what differs is listed, exit status 0 when
everything agrees, 1 when anything differs, 2 on a bad file (its line named) or bad arguments.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

from gateway.cli.config import load_or_report
from gateway.cli.main import fail
from gateway.cli.storecommand import run_command
from gateway.config.model import Config
from gateway.ledger.reconcile import (
    AMOUNT,
    MISSING_IN_OURS,
    MISSING_IN_THEIRS,
    Entry,
    Reconciliation,
    SettlementFileError,
    our_entries,
    read_settlement_file,
    reconcile,
)
from gateway.ledger.resellers import report_csv, settlement_rows
from gateway.ledger.storeconnect import store_session


def register(subparsers, common) -> None:
    resellers = subparsers.add_parser("resellers", help="reseller (POSA) settlement")
    sub = resellers.add_subparsers(dest="resellers_command", required=True)
    report = sub.add_parser("report", parents=[common], help="one day's settlement CSV")
    report.add_argument("--reseller", required=True, help="reseller id from the config")
    report.add_argument("--date", help="UTC day, YYYY-MM-DD (default: yesterday)")
    report.add_argument("--out", metavar="FILE.csv", help="write here (default: stdout)")
    report.set_defaults(func=run_report)
    check = sub.add_parser("reconcile", parents=[common],
                           help="compare a reseller's settlement file with ours")
    check.add_argument("--reseller", required=True, help="reseller id from the config")
    check.add_argument("--date", help="UTC day, YYYY-MM-DD (default: yesterday)")
    check.add_argument("--json", action="store_true", help="one JSON object on stdout")
    check.add_argument("file", metavar="FILE.csv",
                       help="the reseller's settlement file, in the report's CSV format")
    check.set_defaults(func=run_reconcile)


def _config_and_day(args) -> tuple[Config, dt.date] | int:
    """The config and the UTC day the command is about, or the exit status of bad input."""
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
    return config, day


def run_report(args) -> int:
    chosen = _config_and_day(args)
    if isinstance(chosen, int):
        return chosen
    config, day = chosen
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


def run_reconcile(args) -> int:
    chosen = _config_and_day(args)
    if isinstance(chosen, int):
        return chosen
    config, day = chosen
    try:
        with open(args.file, encoding="utf-8-sig", newline="") as f:
            theirs = read_settlement_file(f.read(), args.reseller)
    except OSError as e:
        return fail(f"cannot read {args.file}: {e.strerror}")
    except UnicodeDecodeError as e:
        return fail(f"{args.file}: not UTF-8 text (byte {e.start})")
    except SettlementFileError as e:
        return fail(f"{args.file}, {e}")
    return run_command(_reconcile(config, args.reseller, day, theirs, args.json))


async def _reconcile(config: Config, reseller: str, day: dt.date, theirs: list[Entry],
                     as_json: bool) -> int:
    async with store_session(config) as store:
        ours = our_entries(await settlement_rows(store, config, reseller, day))
    result = reconcile(ours, theirs)
    if as_json:
        print(json.dumps({"reseller": reseller, "date": day.isoformat(), "ours": result.ours,
                          "theirs": result.theirs, "agree": result.agree,
                          "differences": [d.as_dict() for d in result.differences]}))
    else:
        sys.stdout.write(differences_table(reseller, day, result))
    return 0 if result.ok else 1


DIFFERENCE_NAMES = {MISSING_IN_THEIRS: "missing in theirs", MISSING_IN_OURS: "missing in ours",
                    AMOUNT: "amount differs"}


def differences_table(reseller: str, day: dt.date, result: Reconciliation) -> str:
    """A summary line, then one aligned row per difference (amounts in minor units, `-` for
    the side that lacks it, `line` the row in their file)."""
    counts = f"{reseller} {day.isoformat()}: ours {result.ours}, theirs {result.theirs}"
    if result.ok:
        return f"{counts}: all agree\n"
    header = ("difference", "merchant", "type", "rrn", "ours", "theirs", "line", "card")
    rows: list[tuple[str, ...]] = [header]
    for d in result.differences:
        e = d.as_dict()
        rows.append(tuple("-" if v is None or v == "" else str(v) for v in (
            DIFFERENCE_NAMES[d.kind], e["merchant"], e["type"], e["rrn"] or e["request_key"],
            e["ours"], e["theirs"], e["line"], e["card"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    right = {4, 5, 6}  # numbers
    lines = [f"{counts}: {result.agree} agree, {len(result.differences)} differ"]
    for r in rows:
        lines.append("  ".join(v.rjust(w) if i in right else v.ljust(w)
                               for i, (v, w) in enumerate(zip(r, widths))).rstrip())
    return "\n".join(lines) + "\n"

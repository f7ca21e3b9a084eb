"""`tillgate cards activate FILE.csv | --first N --last M --program ID [--amount A]`: activate
cards issued earlier, as a batch (docs/card-activation.md).

The batch is checked whole, in the file and then against the store; any problem refuses it with
every bad line listed (exit 2, nothing activated). Then each card is activated, with a report
line per card on standard output and progress on standard error for large batches. Running the
same batch again activates nothing twice: its activations replay.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from gateway.cli.config import load_or_report
from gateway.cli.main import fail
from gateway.cli.storecommand import run_command
from gateway.config.model import Config
from gateway.issuance import activatebatch
from gateway.issuance.activatefile import ActivationBatch, from_range, read_file
from gateway.issuance.importfile import ImportFileError
from gateway.ledger.amounts import format_amount
from gateway.ledger.cards import OPERATOR
from gateway.ledger.processor import Processor
from gateway.ledger.storeconnect import store_session

PROGRESS_FROM = 1000  # batches of this many cards or more report progress on stderr


def add_parser(sub, common) -> None:
    act = sub.add_parser("activate", parents=[common],
                         help="activate a batch of issued cards (CSV file or a range)")
    act.add_argument("file", nargs="?", metavar="FILE.csv",
                     help="card[,amount] with a header row; or give --first and --last")
    act.add_argument("--program", required=True, help="program of every card of the batch")
    act.add_argument("--first", metavar="N", help="first card number of a range")
    act.add_argument("--last", metavar="M", help="last card number of a range (included)")
    act.add_argument("--amount", metavar="AMOUNT",
                     help="load of every card without an amount of its own (12.50; points "
                          "for loyalty: 0)")
    act.add_argument("--json", action="store_true", help="one JSON object per card, then a "
                                                         "summary object")
    act.set_defaults(func=run)


def run(args) -> int:
    ranged = args.first is not None or args.last is not None
    if ranged == (args.file is not None) or (ranged and None in (args.first, args.last)):
        return fail("cards activate: give FILE.csv, or --first and --last (not both)")
    config = load_or_report(args.config)
    if config is None:
        return 2
    name = args.file or "range"
    try:
        if ranged:
            batch = from_range(config, args.program, args.first, args.last, args.amount)
        else:
            batch = read_file(Path(args.file).read_bytes(), config, args.program, args.amount)
    except OSError as e:
        return fail(f"cannot read {args.file}: {e.strerror}")
    except ImportFileError as e:
        return _refused(name, e.problems)
    return run_command(_activate(config, batch, name, args.json))


def _refused(name: str, problems: list[str]) -> int:
    for problem in problems:
        print(f"tillgate: {name}: {problem}", file=sys.stderr)
    print(f"tillgate: {name}: nothing activated ({len(problems)} problem(s))", file=sys.stderr)
    return 2


async def _activate(config: Config, batch: ActivationBatch, name: str, as_json: bool) -> int:
    async with store_session(config) as store:
        checked = await activatebatch.check(store, batch)
        if checked.problems:
            return _refused(name, checked.problems)
        processor = Processor(config, store)
        if await activatebatch.alert_if_large(processor, batch, OPERATOR):
            print(f"tillgate: {name}: a large batch: alert {activatebatch.ALERT} raised",
                  file=sys.stderr)
        progress = _progress(name) if len(batch.rows) >= PROGRESS_FROM else None
        results = await activatebatch.activate(processor, batch, checked, OPERATOR, "cli",
                                               progress)
    counts = activatebatch.summary(results)
    if as_json:
        for result in results:
            print(json.dumps(result.as_dict(), sort_keys=True))
        print(json.dumps({"batch": batch.id, "program": batch.program.id, **counts},
                         sort_keys=True))
    else:
        for r in results:
            amount = str(r.amount) if batch.program.is_loyalty else format_amount(r.amount)
            print(f"line {r.line:<6} {r.card:19} {amount:>10}  {r.outcome:9} {r.code}")
        print(f"{name}: batch {batch.id[:24]}: {counts['activated']} activated, "
              f"{counts['replayed']} already activated by this batch, {counts['refused']} "
              "refused")
    return 1 if counts["refused"] else 0


def _progress(name: str):
    """A line on stderr every 5 % or so (every chunk for the smaller batches), and at the end."""
    shown = [0]

    def report(done: int, total: int) -> None:
        if done - shown[0] >= total // 20 or done == total:
            shown[0] = done
            print(f"tillgate: {name}: {done}/{total} cards", file=sys.stderr, flush=True)
    return report

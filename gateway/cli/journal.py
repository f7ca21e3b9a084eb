"""`tillgate journal trim`: fold the card journals in Redis into checkpoints as far as the back
office's SQL holds their entries (gateway/backoffice/trim.py; docs/scaling.md, "Journal
trimming"). Exit 1 when a journal would not fold because it does not add up (run `audit`)."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from typing import TYPE_CHECKING

from gateway.cli.config import load_or_report
from gateway.cli.main import fail
from gateway.config.model import Config

if TYPE_CHECKING:
    from gateway.backoffice.trim import TrimReport

# SQLAlchemy is imported inside the command (gateway/cli/backoffice.py says why).


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("journal", help="the card journals in Redis")
    sub = parser.add_subparsers(dest="journal_command", required=True)
    trim = sub.add_parser("trim", parents=[common],
                          help="fold journal entries the back office holds into checkpoints")
    trim.add_argument("--keep-days", type=int, default=None, metavar="DAYS",
                      help="keep entries younger than this (default: journal.keep_days)")
    trim.add_argument("--keep-entries", type=int, default=None, metavar="N",
                      help="keep at least N entries after the checkpoint (default: "
                           "journal.keep_entries)")
    trim.set_defaults(func=run_trim)


def run_trim(args) -> int:
    from gateway.backoffice.connect import BackofficeUnavailable
    from gateway.ledger.storeconnect import StoreUnavailable

    config = load_or_report(args.config)
    if config is None:
        return 2
    for option, value in (("--keep-days", args.keep_days), ("--keep-entries", args.keep_entries)):
        if value is not None and value < 1:
            return fail(f"{option}: must be a positive integer")
    journal = dataclasses.replace(
        config.journal,
        keep_days=config.journal.keep_days if args.keep_days is None else args.keep_days,
        keep_entries=(config.journal.keep_entries if args.keep_entries is None
                      else args.keep_entries))
    try:
        report = asyncio.run(_trim(dataclasses.replace(config, journal=journal)))
    except (StoreUnavailable, BackofficeUnavailable) as e:
        return fail(str(e))
    for line in report.refused:
        print(f"not trimmed: {line}", file=sys.stderr)
    print(f"journal trim: {report.cards} journals, {report.trimmed} trimmed, {report.folded} "
          f"entries folded into checkpoints; {report.waiting} with older entries the back "
          "office does not hold yet")
    return 1 if report.refused else 0


async def _trim(config: Config) -> TrimReport:
    from gateway.backoffice.connect import backoffice_session
    from gateway.backoffice.trim import JournalTrimmer
    from gateway.ledger.storeconnect import store_session
    from gateway.ledger.trim import TrimPolicy

    async with store_session(config) as store, backoffice_session(config) as engine:
        return await JournalTrimmer(store, engine, TrimPolicy.of(config)).run()

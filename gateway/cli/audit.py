"""`tillgate audit`: recompute every card from its journal; exit 1 on any difference."""

from __future__ import annotations

import asyncio
import sys

from gateway.cli.config import load_or_report
from gateway.cli.main import fail
from gateway.config.model import Config
from gateway.ledger.audit import AuditReport, audit
from gateway.ledger.storeconnect import StoreUnavailable, store_session


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("audit", parents=[common],
                                   help="check every balance against its journal")
    parser.set_defaults(func=run_audit)


def run_audit(args) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    try:
        report = asyncio.run(_audit(config))
    except StoreUnavailable as e:
        return fail(str(e))
    for line in report.differences:
        print(f"difference: {line}")
    verdict = "no differences" if report.ok else f"{len(report.differences)} difference(s)"
    print(f"audited {report.cards} cards, {report.entries} journal entries: {verdict}",
          file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


async def _audit(config: Config) -> AuditReport:
    async with store_session(config) as store:
        return await audit(store)

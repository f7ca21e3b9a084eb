"""`tillgate audit`: recompute every card from its journal, and check the back office's SQL
against the journals (gateway/backoffice/audit.py); exit 1 on any difference."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

from gateway.cli.config import load_or_report
from gateway.cli.main import fail
from gateway.config.model import Config
from gateway.ledger.audit import AuditReport, audit
from gateway.ledger.storeconnect import StoreUnavailable, store_session

if TYPE_CHECKING:
    from gateway.backoffice.audit import BackofficeAudit

# SQLAlchemy is imported inside the command (gateway/cli/backoffice.py says why).


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("audit", parents=[common],
                                   help="check every balance against its journal, and the "
                                        "back office against the journals")
    parser.add_argument("--ledger-only", action="store_true",
                        help="check the ledger alone, not the back office's SQL")
    parser.set_defaults(func=run_audit)


def run_audit(args) -> int:
    from gateway.backoffice.connect import BackofficeUnavailable

    config = load_or_report(args.config)
    if config is None:
        return 2
    try:
        report, backoffice = asyncio.run(_audit(config, not args.ledger_only))
    except (StoreUnavailable, BackofficeUnavailable) as e:
        return fail(str(e))
    for line in report.differences:
        print(f"difference: {line}")
    verdict = "no differences" if report.ok else f"{len(report.differences)} difference(s)"
    out = sys.stdout if report.ok else sys.stderr
    print(f"audited {report.cards} cards, {report.entries} journal entries: {verdict}", file=out)
    if backoffice is not None:
        print(f"back office: {backoffice.compared} entries equal in SQL, {backoffice.lagging} "
              f"not ingested yet (still in the feed: lag), {backoffice.newer} newer than the "
              "audit", file=out)
    return 0 if report.ok else 1


async def _audit(config: Config, with_backoffice: bool
                 ) -> tuple[AuditReport, BackofficeAudit | None]:
    from gateway.backoffice.audit import BackofficeAudit
    from gateway.backoffice.connect import backoffice_session

    async with store_session(config) as store:
        if not with_backoffice:
            return await audit(store), None
        async with backoffice_session(config) as engine:
            report = AuditReport()
            backoffice = BackofficeAudit(store, engine, report)
            await backoffice.begin()
            await audit(store, report, check_page=backoffice.check_page)
            return report, backoffice

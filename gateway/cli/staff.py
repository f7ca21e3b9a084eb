"""`tillgate staff recent OPID [--days 7] [--json]`: the cards (masked) a staff member served
and the entries they made in the last days, from the back office's journal in SQL
(gateway/backoffice/staff.py; the operator id is field 63 `OP` / TGL `opid` on the till's
request). Exit status 0, 2 on bad input or a back office that cannot be reached.
"""

from __future__ import annotations

import asyncio
import json
import time

from gateway.cli.config import load_or_report
from gateway.cli.main import fail

MAX_DAYS = 366  # gateway/backoffice/staff.py MAX_DAYS (SQLAlchemy is loaded inside the command)


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("staff", help="what a staff member did (the SQL back office)")
    sub = parser.add_subparsers(dest="staff_command", required=True)
    recent = sub.add_parser("recent", parents=[common],
                            help="cards and entries of a staff member's last days")
    recent.add_argument("opid", help="operator id (field 63 OP, TGL opid)")
    recent.add_argument("--days", type=int, default=7, help=f"1 to {MAX_DAYS} (default 7)")
    recent.add_argument("--json", action="store_true", help="one JSON object")
    recent.set_defaults(func=run_recent)


def run_recent(args) -> int:
    if not 1 <= args.days <= MAX_DAYS:
        return fail(f"--days: 1 to {MAX_DAYS}")
    config = load_or_report(args.config)
    if config is None:
        return 2
    from gateway.backoffice import staff
    from gateway.backoffice.connect import BackofficeUnavailable, backoffice_session

    async def work() -> dict:
        async with backoffice_session(config) as engine:
            return await staff.recent(engine, args.opid, args.days, time.time())

    try:
        found = asyncio.run(work())
    except BackofficeUnavailable as e:
        return fail(str(e))
    if args.json:
        print(json.dumps(found, sort_keys=True))
        return 0
    print(f"{found['operator']} since {found['since']}: {len(found['cards'])} cards, "
          f"{len(found['entries'])} entries")
    for card in found["cards"]:
        print(f"  {card['card']}  {card['program'] or '-'}  {card['entries']} entries, "
              f"last {card['last']}")
    for entry in found["entries"]:
        reward = f"  reward {entry['reward']}" if entry["reward"] else ""
        print(f"  {entry['time']}  {entry['op']:14} {entry['card']}  dv {entry['dv']}  "
              f"dp {entry['dp']}  {entry['terminal']}/{entry['merchant']}{reward}")
    return 0

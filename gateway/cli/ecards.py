"""`tillgate ecards order|list|resend`: e-gift cards sent by e-mail (docs/ecards.md).

`order` issues (and, per the program's `ecard_load`, activates) the card and queues its e-mail in
the back office; the delivery queue of a running `tillgate serve` sends it (at once, or at
`--deliver-at`). `--key` names the order as the API's Idempotency-Key does: running the same
command again with it answers the same order and never issues a second card; without it each
run is a new order. The card number and PIN are never printed: they go to the recipient.

SQLAlchemy and the issuance code are imported inside the commands: `tillgate --help` stays
light (tests/test_customers_cli.py checks the parser imports neither SQLAlchemy nor Alembic).
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from gateway.cli.config import config_and_program, load_or_report
from gateway.cli.main import fail
from gateway.ledger.amounts import parse_amount

STATES = ("queued", "sending", "sent", "failed")


def register(subparsers, common) -> None:
    ecards = subparsers.add_parser("ecards", help="order e-gift cards sent by e-mail")
    sub = ecards.add_subparsers(dest="ecards_command", required=True)
    order = sub.add_parser("order", parents=[common], help="order an e-card for a recipient")
    order.add_argument("--program", required=True, help="program id from the config")
    order.add_argument("--amount", required=True,
                       help="the card's value: 25.00 (points, whole, for a loyalty program)")
    order.add_argument("--to-name", required=True, help="the recipient's name")
    order.add_argument("--to-email", required=True, help="the recipient's e-mail address")
    order.add_argument("--from-name", required=True, help="the sender's name, as the e-mail says")
    order.add_argument("--message", default="", help="a message for the recipient")
    order.add_argument("--deliver-at", metavar="WHEN",
                       help="send it then, not now: 2027-03-14 (midnight UTC) or "
                            "2027-03-14T09:00:00+01:00")
    order.add_argument("--key", help="names the order: the same key answers the same order")
    order.add_argument("--json", action="store_true", help="print the order as JSON")
    order.set_defaults(func=run_order)
    listing = sub.add_parser("list", parents=[common], help="e-cards and their delivery state")
    listing.add_argument("--state", choices=STATES)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=run_list)
    resend = sub.add_parser("resend", parents=[common],
                            help="queue a sent or failed e-card's e-mail again")
    resend.add_argument("id", help="the order's id (`ecards list`)")
    resend.set_defaults(func=run_resend)


def _when(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--deliver-at {text!r}: a date or an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _points(text: str) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"amount {text!r}: whole points for a loyalty program")
    return int(text)


def _run(args, work) -> int:
    """Load the config, open the back office and the store, run `work(config, engine, store)`;
    what goes wrong is one line on stderr: exit status 2 (1 for a refused order)."""
    from gateway.backoffice.connect import BackofficeUnavailable, backoffice_session
    from gateway.issuance.ecards import EcardRefused
    from gateway.ledger.storeconnect import StoreUnavailable, store_session

    config = load_or_report(args.config)
    if config is None:
        return 2

    async def session() -> int:
        async with backoffice_session(config) as engine, store_session(config) as store:
            return int(await work(config, engine, store))

    try:
        return asyncio.run(session())
    except (BackofficeUnavailable, StoreUnavailable) as e:
        return fail(str(e))
    except EcardRefused as e:
        print(f"tillgate: {e}", file=sys.stderr)
        return 2 if e.status == 400 else 1


def _show(row: dict[str, Any]) -> str:
    when = datetime.fromtimestamp(row["deliver_t"], UTC).strftime("%Y-%m-%d %H:%M")
    error = f"  ({row['last_error']})" if row["last_error"] else ""
    return (f"{row['id']}  {row['state']:<7} {row['program']:<10} {row['amount']:>10}  "
            f"{row['card']}  {row['recipient_email']}  {when}  tries {row['attempts']}{error}")


def run_order(args) -> int:
    loaded = config_and_program(args.config, args.program)
    if loaded is None:
        return 2
    config, program = loaded
    try:
        amount = _points(args.amount) if program.is_loyalty else parse_amount(args.amount)
        deliver = None if args.deliver_at is None else _when(args.deliver_at)
    except ValueError as e:
        return fail(str(e))
    body: dict[str, Any] = {"program": program.id, "amount": amount,
                            "recipient_name": args.to_name, "recipient_email": args.to_email,
                            "sender_name": args.from_name, "message": args.message}
    if deliver is not None:
        body["deliver_at"] = deliver
    key = args.key or uuid.uuid4().hex

    async def work(config, engine, store) -> int:
        from gateway.issuance.ecards import parse_order, place_order
        from gateway.ledger.processor import Processor

        now = time.time()
        order = parse_order(config, body, now)
        row, created = await place_order(config, store, Processor(config, store), engine, order,
                                         "cli:" + getpass.getuser(), key, now)
        shown = row.as_dict()
        print(json.dumps(shown) if args.json else _show(shown))
        print(f"{'ordered' if created else 'already ordered'}: e-card {row.id} (key {key}); a "
              f"running gateway sends its e-mail", file=sys.stderr)
        return 0

    return _run(args, work)


def run_list(args) -> int:
    if not 1 <= args.limit <= 500:
        return fail("--limit must be 1 to 500")

    async def work(_config, engine, _store) -> int:
        from gateway.backoffice import ecards as rows

        found, total = await rows.listing(engine, state=args.state, limit=args.limit)
        if args.json:
            print(json.dumps({"ecards": [r.as_dict() for r in found], "total": total}))
        else:
            for row in found:
                print(_show(row.as_dict()))
            print(f"{len(found)} of {total} e-card(s)", file=sys.stderr)
        return 0

    return _run(args, work)


def run_resend(args) -> int:
    async def work(_config, engine, _store) -> int:
        from gateway.issuance.ecards import resend

        row = await resend(engine, args.id, time.time())
        print(f"e-card {row.id} queued to be sent again", file=sys.stderr)
        return 0

    return _run(args, work)

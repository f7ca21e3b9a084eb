"""`tillgate customers add|show|list|set|link|unlink|import|export|sync-status|types`: the back
office's customers, their types and the cards they hold (docs/backoffice.md, "Customers").

The records are in SQL (the back office); linking a card or changing a customer's status also
touches the card's state in Redis (the inactive mark the till's gate reads), so these commands
open both. Exit status: 0 done, 1 an import refused (its problems by line), 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.cli.config import load_or_report
from gateway.cli.main import fail
from gateway.config.model import Config
from gateway.ledger.cards import OPERATOR

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from gateway.ledger.store import Store

# SQLAlchemy and Alembic are imported inside the commands (gateway.backoffice's modules load
# them): at module level they would add some 0.4 s to the start of every `tillgate` command.
# So the choices the parser offers are written here; test_customers_cli checks they are the
# back office's.
STATUSES = ("active", "inactive")  # gateway/backoffice/customers.py STATUSES
MAX_LIST = 1000  # gateway/backoffice/customers.py LIST_LIMIT


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("customers", help="customers, their types and their cards "
                                   "(the SQL back office)")
    sub = parser.add_subparsers(dest="customers_command", required=True)

    add = sub.add_parser("add", parents=[common], help="add a customer")
    add.add_argument("code", help="the customer's code: your own reference, unique")
    add.add_argument("--name", required=True)
    _field_options(add)
    add.set_defaults(func=run_add)

    change = sub.add_parser("set", parents=[common],
                            help="change a customer's fields; --status inactive makes the "
                                 "till answer its cards 62")
    change.add_argument("code")
    change.add_argument("--name")
    _field_options(change)
    change.set_defaults(func=run_set)

    show = sub.add_parser("show", parents=[common],
                          help="one customer with its cards and their balances")
    show.add_argument("code")
    show.add_argument("--json", action="store_true", help="one JSON object")
    show.set_defaults(func=run_show)

    listing = sub.add_parser("list", parents=[common], help="customers, in code order")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--type", help="customer type name")
    listing.add_argument("--email", help="this e-mail address (any case)")
    listing.add_argument("--code-prefix", metavar="PREFIX", help="codes starting with PREFIX")
    listing.add_argument("--limit", type=int, default=50, help=f"at most (1 to {MAX_LIST})")
    listing.add_argument("--offset", type=int, default=0, help="skip this many first")
    listing.add_argument("--json", action="store_true", help="one JSON object per customer")
    listing.set_defaults(func=run_list)

    for name, helptext in (("link", "register a card to a customer (never changes a balance)"),
                           ("unlink", "take a card from a customer")):
        one = sub.add_parser(name, parents=[common], help=helptext)
        one.add_argument("code")
        one.add_argument("card", help="the card's whole number (shown masked)")
        if name == "link":
            one.add_argument("--move", action="store_true",
                             help="the card is another customer's: move it to this one")
        one.set_defaults(func=run_link if name == "link" else run_unlink)

    imp = sub.add_parser("import", parents=[common],
                         help="customers and their cards from CSV: all rows or none")
    imp.add_argument("file", metavar="FILE.csv")
    imp.add_argument("--move", action="store_true",
                     help="cards held by other customers move to the file's")
    imp.set_defaults(func=run_import)

    exp = sub.add_parser("export", parents=[common],
                         help="customers and their cards (masked) as CSV")
    exp.add_argument("--out", metavar="FILE.csv", help="default: standard output")
    exp.add_argument("--status", choices=STATUSES)
    exp.add_argument("--type", help="customer type name")
    exp.add_argument("--code-prefix", metavar="PREFIX")
    exp.set_defaults(func=run_export)

    sync = sub.add_parser("sync-status", parents=[common],
                          help="make the inactive marks on cards in Redis what SQL says "
                               "(after a crash between the two)")
    sync.set_defaults(func=run_sync)

    types = sub.add_parser("types", help="customer types")
    tsub = types.add_subparsers(dest="types_command", required=True)
    tadd = tsub.add_parser("add", parents=[common], help="add a customer type")
    tadd.add_argument("name")
    tadd.add_argument("--program", help="default program of its customers' cards")
    tadd.add_argument("--description", default="")
    tadd.set_defaults(func=run_type_add)
    tlist = tsub.add_parser("list", parents=[common], help="the customer types")
    tlist.add_argument("--json", action="store_true", help="one JSON object per type")
    tlist.set_defaults(func=run_type_list)


def _field_options(parser) -> None:
    parser.add_argument("--email", help="e-mail address ('' clears it)")
    parser.add_argument("--phone", help="phone number ('' clears it)")
    parser.add_argument("--type", help="customer type name ('' clears it)")
    parser.add_argument("--status", choices=STATUSES)
    parser.add_argument("--consent", action=argparse.BooleanOptionalAction, default=None,
                        help="--consent: may be contacted; --no-consent: may not")
    parser.add_argument("--notes")


def _fields(args) -> dict[str, object]:
    given = {name: getattr(args, name, None)
             for name in ("code", "name", "email", "phone", "type", "status", "consent", "notes")}
    return {name: value for name, value in given.items() if value is not None}


# (config, back office, store): the store is None for a command that needs SQL only
Work = Callable[[Config, "AsyncEngine", Any], Awaitable[int]]


def _run(args, work: Work, *, store: bool = True) -> int:
    """Load the config, open the back office (and the store), run `work`; what goes wrong is
    one line on stderr and exit status 2."""
    from gateway.backoffice.connect import BackofficeUnavailable, backoffice_session
    from gateway.backoffice.customers import CustomerError
    from gateway.ledger.storeconnect import StoreUnavailable, store_session

    config = load_or_report(args.config)
    if config is None:
        return 2

    async def session() -> int:
        async with backoffice_session(config) as engine:
            if not store:
                return await work(config, engine, None)
            async with store_session(config) as opened:
                return await work(config, engine, opened)

    try:
        return asyncio.run(session())
    except (BackofficeUnavailable, StoreUnavailable, CustomerError) as e:
        return fail(str(e))


def _check(problems: list[str]) -> None:
    from gateway.backoffice import customers as records

    if problems:
        raise records.CustomerError("; ".join(problems))


def run_add(args) -> int:
    from gateway.backoffice import customers as records

    values, problems = records.check_fields(_fields(args), creating=True)

    async def work(_config: Config, engine: AsyncEngine, _store: None) -> int:
        _check(problems)
        async with engine.begin() as conn:
            await records.add_customer(conn, values)
        print(f"customer {values['code']} added")
        return 0
    return _run(args, work, store=False)


def run_set(args) -> int:
    from gateway.backoffice import customers as records
    from gateway.backoffice import links

    fields = _fields(args)
    fields.pop("code")
    values, problems = records.check_fields(fields, creating=False)
    if not values and not problems:
        return fail("customers set: nothing to change (give --name, --status, ...)")

    async def work(_config: Config, engine: AsyncEngine, store: Store) -> int:
        _check(problems)
        view = await links.change_customer(engine, store, args.code, values, who=OPERATOR)
        change = f": {view['status_change']}" if view["status_change"] else ""
        print(f"customer {args.code} changed{change}")
        if view["marks"]:
            marks = view["marks"]
            print(f"{marks['cards']} card(s): {marks['marked']} marked inactive, "
                  f"{marks['cleared']} cleared, {marks['missing']} not in the store")
        return 0
    return _run(args, work)


def run_show(args) -> int:
    from gateway.backoffice import links

    async def work(_config: Config, engine: AsyncEngine, store: Store) -> int:
        view = await links.customer_view(engine, store, args.code)
        if args.json:
            print(json.dumps(view, sort_keys=True))
            return 0
        for key in ("code", "name", "email", "phone", "type", "status", "consent",
                    "consent_time", "created", "notes"):
            value = view[key]
            if isinstance(value, bool):
                value = "yes" if value else "no"
            print(f"{key:13} {'-' if value in (None, '') else value}")
        print(f"cards         {len(view['cards'])}")
        for card in view["cards"]:
            mark = " (answered 62: customer inactive)" if card.get("customer_inactive") else ""
            if card["status"] is None:
                print(f"  {card['card']}  {card['program'] or '-'}  not in the store")
            else:
                print(f"  {card['card']}  {card['program']}  {card['status']}  balance "
                      f"{card['balance']}  points {card['points']}{mark}")
        return 0
    return _run(args, work)


def run_list(args) -> int:
    from gateway.backoffice import customers as records

    if not 1 <= args.limit <= MAX_LIST or args.offset < 0:
        return fail(f"--limit must be 1 to {MAX_LIST}, --offset 0 or more")
    keep = records.CustomerFilter(status=args.status, type=args.type, email=args.email,
                                  code_prefix=args.code_prefix)

    async def work(_config: Config, engine: AsyncEngine, _store: None) -> int:
        async with engine.connect() as conn:
            found, total = await records.list_customers(conn, keep, args.limit, args.offset)
        if args.json:
            for customer in found:
                print(json.dumps(customer, sort_keys=True))
            return 0
        print(f"{'code':16} {'name':28} {'status':8} {'type':12} e-mail")
        for c in found:
            print(f"{c['code']:16} {c['name'][:28]:28} {c['status']:8} {c['type'] or '-':12} "
                  f"{c['email'] or '-'}")
        print(f"{len(found)} of {total} customer(s)", file=sys.stderr)
        return 0
    return _run(args, work, store=False)


def _card(config: Config, card: str) -> str:
    from gateway.backoffice import customers as records

    card = card.strip()
    if config.program_of_card(card) is None:
        raise records.CustomerError("CARD is not a card number of any configured program")
    return card


def run_link(args) -> int:
    from gateway.backoffice import links

    async def work(config: Config, engine: AsyncEngine, store: Store) -> int:
        done = await links.link_card(engine, store, args.code, _card(config, args.card),
                                     move=args.move, who=OPERATOR)
        if not done["linked"]:
            print(f"{done['card']}: held by {args.code} already")
        else:
            moved = f" (moved from {done['moved_from']})" if done["moved_from"] else ""
            print(f"{done['card']}: linked to {args.code}{moved}")
        if done["customer_inactive"]:
            print(f"{done['card']}: answered 62 at the till while {args.code} is inactive")
        return 0
    return _run(args, work)


def run_unlink(args) -> int:
    from gateway.backoffice import links

    async def work(config: Config, engine: AsyncEngine, store: Store) -> int:
        done = await links.unlink_card(engine, store, args.code, _card(config, args.card),
                                       who=OPERATOR)
        print(f"{done['card']}: unlinked from {args.code}")
        return 0
    return _run(args, work)


def run_import(args) -> int:
    from gateway.backoffice import customercsv

    try:
        data = Path(args.file).read_bytes()
    except OSError as e:
        return fail(f"cannot read {args.file}: {e.strerror}")

    async def work(config: Config, engine: AsyncEngine, store: Store) -> int:
        try:
            done = await customercsv.import_customers(engine, store, config, data,
                                                      move=args.move, who=OPERATOR)
        except customercsv.CustomerImportError as e:
            for line in e.shown():
                print(f"tillgate: {args.file}: {line}", file=sys.stderr)
            print(f"tillgate: {args.file}: {e}", file=sys.stderr)
            return 1
        marks = done.marks
        print(f"{args.file}: {done.rows} customer(s): {done.added} added, {done.updated} "
              f"updated; {done.linked} card(s) linked ({done.moved} moved); "
              f"{marks.marked} marked inactive, {marks.cleared} cleared")
        return 0
    return _run(args, work)


def run_export(args) -> int:
    from gateway.backoffice import customercsv
    from gateway.backoffice import customers as records

    keep = records.CustomerFilter(status=args.status, type=args.type,
                                  code_prefix=args.code_prefix)

    async def work(_config: Config, engine: AsyncEngine, _store: None) -> int:
        if args.out is None:
            count = await customercsv.export_customers(engine, sys.stdout, keep)
        else:
            try:
                out = open(args.out, "w", newline="", encoding="utf-8")
            except OSError as e:
                raise records.CustomerError(f"cannot write {args.out}: {e.strerror}") from e
            with out:
                count = await customercsv.export_customers(engine, out, keep)
        print(f"exported {count} customer(s)", file=sys.stderr)
        return 0
    return _run(args, work, store=False)


def run_sync(args) -> int:
    from gateway.backoffice import links

    async def work(_config: Config, engine: AsyncEngine, store: Store) -> int:
        report = await links.sync_status(engine, store, who=OPERATOR)
        print(f"{report.cards} card(s) checked: {report.marked} marked inactive, "
              f"{report.cleared} cleared, {report.missing} not in the store")
        return 0
    return _run(args, work)


def run_type_add(args) -> int:
    from gateway.backoffice import customers as records

    raw: dict[str, Any] = {"name": args.name, "description": args.description}
    if args.program is not None:
        raw["default_program"] = args.program

    async def work(config: Config, engine: AsyncEngine, _store: None) -> int:
        values, problems = records.check_type(raw, config.programs)
        _check(problems)
        async with engine.begin() as conn:
            await records.add_type(conn, values)
        print(f"customer type {values['name']} added")
        return 0
    return _run(args, work, store=False)


def run_type_list(args) -> int:
    from gateway.backoffice import customers as records

    async def work(_config: Config, engine: AsyncEngine, _store: None) -> int:
        async with engine.connect() as conn:
            found = await records.list_types(conn)
        if args.json:
            for t in found:
                print(json.dumps(t, sort_keys=True))
            return 0
        print(f"{'name':16} {'program':10} {'customers':>9}  description")
        for t in found:
            print(f"{t['name']:16} {t['default_program'] or '-':10} {t['customers']:>9}  "
                  f"{t['description']}")
        return 0
    return _run(args, work, store=False)

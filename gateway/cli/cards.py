"""`tillgate cards issue|show|history|unlock|rollback|suspend|reinstate|lost|close` (HOST-SPEC 5
and operator extras); `cards import` is gateway/cli/cardimport.py, `cards activate`
gateway/cli/cardactivate.py, `cards artwork` gateway/cli/cardartwork.py.

Amounts on the command line are decimal major units parsed with decimal.Decimal
(gateway.ledger.amounts.parse_amount): `--activate 25.00` or `--activate 25` is 2500 minor units;
points (loyalty programs) are given as whole numbers and taken as they are.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import sys
from typing import TextIO

from gateway.cli.cardactivate import add_parser as add_activate_parser
from gateway.cli.cardartwork import add_parser as add_artwork_parser
from gateway.cli.cardimport import add_parser as add_import_parser
from gateway.cli.config import config_and_program, load_or_report
from gateway.cli.main import fail
from gateway.cli.storecommand import run_command
from gateway.config.model import Config, Program
from gateway.ledger.amounts import parse_amount
from gateway.ledger.cards import (
    OPERATOR,
    card_id,
    issue_new_card,
    journal_key,
    operator_activation,
    rollback_last,
    set_card_status,
    show_card,
    unlock_card,
)
from gateway.ledger.journal import latest
from gateway.ledger.processor import Processor
from gateway.ledger.storeconnect import store_session
from protocols.model import mask_card

MAX_ISSUE = 1_000_000
# (command, status change, help, final): `cards suspend|reinstate|lost|close CARD`
# (gateway/ledger/lua/set_status.lua)
STATUS_COMMANDS = (
    ("suspend", "suspended", "suspend a card: every operation answered 62 until reinstated",
     False),
    ("reinstate", "reinstate", "lift a suspension (an operator's or a velocity rule's)", False),
    ("lost", "lost", "mark a card lost or stolen: answered 41, for good", True),
    ("close", "closed", "close a card: answered 78, for good; its balance stays for the audit",
     True),
)


def register(subparsers, common) -> None:
    cards = subparsers.add_parser("cards", help="issue and inspect cards")
    sub = cards.add_subparsers(dest="cards_command", required=True)
    issue = sub.add_parser("issue", parents=[common], help="issue new cards of a program")
    issue.add_argument("--program", required=True, help="program id from the config")
    issue.add_argument("--count", required=True, type=int, help="how many cards")
    issue.add_argument("--activate", metavar="AMOUNT",
                       help="activate with this load (12.50 = 1250 minor units; 0 allowed)")
    issue.add_argument("--face", metavar="AMOUNT", help="face value of pre-valued cards")
    issue.add_argument("--out", metavar="FILE.csv",
                       help="write card,pin,... CSV here (default: standard output)")
    issue.set_defaults(func=run_issue)
    show = sub.add_parser("show", parents=[common], help="show one card")
    show.add_argument("card")
    show.add_argument("--json", action="store_true", help="one JSON object")
    show.set_defaults(func=run_show)
    history = sub.add_parser("history", parents=[common],
                             help="a card's latest journal entries, oldest first")
    history.add_argument("card")
    history.add_argument("--last", type=int, default=20, metavar="N",
                         help="how many entries (default 20)")
    history.add_argument("--json", action="store_true", help="one JSON object per line")
    history.set_defaults(func=run_history)
    unlock = sub.add_parser("unlock", parents=[common], help="unlock a PIN-locked card")
    unlock.add_argument("card")
    unlock.set_defaults(func=run_unlock)
    rollback = sub.add_parser("rollback", parents=[common],
                              help="undo the card's most recent transaction")
    rollback.add_argument("card")
    rollback.set_defaults(func=run_rollback)
    for name, to, helptext, final in STATUS_COMMANDS:
        change = sub.add_parser(name, parents=[common], help=helptext)
        change.add_argument("card")
        if final:
            change.add_argument("--yes", action="store_true",
                                help="confirm: the card can never be used again")
        change.set_defaults(func=run_status, status_command=name, status_to=to)
    add_import_parser(sub, common)
    add_activate_parser(sub, common)
    add_artwork_parser(sub, common)


def _amount(text: str, program: Program) -> int:
    if program.is_loyalty:
        if not text.isdigit():
            raise ValueError(f"points {text!r}: expected a whole number")
        return int(text)
    return parse_amount(text)


def run_issue(args) -> int:
    loaded = config_and_program(args.config, args.program)
    if loaded is None:
        return 2
    config, program = loaded
    if not 1 <= args.count <= MAX_ISSUE:
        return fail(f"--count must be 1 to {MAX_ISSUE}")
    try:
        activate = None if args.activate is None else _amount(args.activate, program)
        face = 0 if args.face is None else parse_amount(args.face)
    except ValueError as e:
        return fail(str(e))
    if not program.numbers_can_be_drawn:
        return fail(f"program {program.id!r}: cannot generate its numbers")
    out: TextIO
    try:
        out = _private_file(args.out) if args.out else sys.stdout
    except OSError as e:
        return fail(f"cannot write {args.out}: {e.strerror}")
    try:
        return run_command(_issue(config, program, args.count, activate, face, out))
    finally:
        if out is not sys.stdout:
            out.close()


def _private_file(path: str) -> TextIO:
    """The file of issued cards: whole numbers and PINs, so readable by its owner only whatever
    the umask (an existing file is narrowed too, before anything is written into it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "w", newline="")


async def _issue(config: Config, program: Program, count: int, activate: int | None,
                 face: int, out: TextIO) -> int:
    async with store_session(config) as store:
        processor = Processor(config, store)
        writer = csv.writer(out)
        writer.writerow(["card", "pin", "program", "status", "balance", "points"])
        for _ in range(count):
            card, pin, _new = await issue_new_card(store, program, face)
            status, balance, points = "issued", 0, 0
            if activate is not None:
                result = await processor.operator_apply(operator_activation(
                    card, activate, face, OPERATOR, f"CLI:{secrets.token_hex(8)}", "cli"))
                if not result.approved:
                    print(f"tillgate: {mask_card(card)} issued but not activated: "
                          f"response {result.code}", file=sys.stderr)
                    writer.writerow([card, pin, program.id, status, balance, points])
                    return 1
                status, balance, points = "active", result.balance or 0, result.points or 0
            writer.writerow([card, pin, program.id, status, balance, points])
        print(f"issued {count} {program.id} card(s)" + (" (active)" if activate is not None
                                                        else ""), file=sys.stderr)
        return 0


def _card_arg(config: Config, card: str) -> str | None:
    card = card.strip()
    return card if config.program_of_card(card) is not None else None


def _on_card(args, command) -> int:
    """Load the config, check CARD names a card of some program, run `command(config, card)`."""
    config = load_or_report(args.config)
    if config is None:
        return 2
    card = _card_arg(config, args.card)
    if card is None:
        return fail("CARD is not a card number of any configured program")
    return run_command(command(config, card))


def run_show(args) -> int:
    return _on_card(args, lambda config, card: _show(config, card, args.json))


async def _show(config: Config, card: str, as_json: bool) -> int:
    async with store_session(config) as store:
        view = await show_card(store, card, config.program_of_card(card))
    if view is None:
        return fail(f"{mask_card(card)}: unknown card")
    data = view.as_dict()
    if as_json:
        print(json.dumps(data, sort_keys=True))
    else:
        for key, value in data.items():
            print(f"{key:18} {'-' if value is None else value}")
    return 0


def run_history(args) -> int:
    if not 1 <= args.last <= 10_000:
        return fail("--last must be 1 to 10000")
    return _on_card(args, lambda config, card: _history(config, card, args.last, args.json))


async def _history(config: Config, card: str, last: int, as_json: bool) -> int:
    async with store_session(config) as store:
        if await show_card(store, card) is None:
            return fail(f"{mask_card(card)}: unknown card")
        found = await latest(store, journal_key(card_id(card)), last)
    if as_json:
        for entry in found:
            print(json.dumps(entry.as_dict(), sort_keys=True))
        return 0
    print(f"{mask_card(card)}: {len(found)} entr{'y' if len(found) == 1 else 'ies'}")
    print(f"{'time (UTC)':20} {'op':16} {'change':>10} {'balance':>10} {'points':>8}  "
          "terminal  merchant         request key")
    for e in found:
        change = f"{e.dv:+d}" if e.dv or not e.dp else f"{e.dp:+d} pts"
        when = e.as_dict()["time"]
        print(f"{when:20} {e.op:16} {change:>10} {e.bal:>10} {e.pts:>8}  {e.terminal:9} "
              f"{e.merchant:16} {e.key}")
    return 0


def run_status(args) -> int:
    if getattr(args, "yes", True) is False:
        return fail(f"cards {args.status_command}: the card can never be used again; add --yes")
    to = args.status_to
    return _on_card(args, lambda config, card: _set_status(config, card, to))


async def _set_status(config: Config, card: str, to: str) -> int:
    async with store_session(config) as store:
        res = await set_card_status(store, card, to)
    if res["rc"] == "14":
        return fail(f"{mask_card(card)}: unknown card")
    if res["rc"] != "00":
        return fail(f"{mask_card(card)}: not changed ({res.get('msg')})")
    print(f"{mask_card(card)}: {res.get('msg')}")
    return 0


def run_unlock(args) -> int:
    return _on_card(args, lambda config, card: _act(config, card, "unlock"))


def run_rollback(args) -> int:
    return _on_card(args, lambda config, card: _act(config, card, "rollback"))


async def _act(config: Config, card: str, action: str) -> int:
    async with store_session(config) as store:
        if action == "unlock":
            if not await unlock_card(store, card):
                return fail(f"{mask_card(card)}: not locked")
            print(f"{mask_card(card)}: unlocked")
            return 0
        res = await rollback_last(store, card, config.program_of_card(card))
        if res["rc"] != "00":
            why = f": {res['msg']}" if res.get("msg") else ""
            return fail(f"{mask_card(card)}: nothing rolled back ({res['rc']}{why})")
        print(f"{mask_card(card)}: rolled back, balance {res.get('bal')} points {res.get('pts')}")
        return 0

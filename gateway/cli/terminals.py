"""`tillgate terminals show|enable|disable TERMINAL`: a terminal's disabled flag (docs/security.md).

A `disable_terminal` velocity rule sets the flag; a disabled terminal is answered 58 until an
operator enables it here (or with `POST /v1/terminals/<id>/enable` on the admin HTTP listener).
Works on the store of the config, whether or not a gateway is running.
"""

from __future__ import annotations

import json

from gateway.cli.config import load_or_report
from gateway.cli.main import fail
from gateway.cli.storecommand import run_command
from gateway.config.model import Config
from gateway.ledger.storeconnect import store_session
from gateway.security import rules


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("terminals", parents=[common],
                                   help="show, enable or disable a terminal")
    parser.add_argument("action", choices=("show", "enable", "disable"))
    parser.add_argument("terminal", help="terminal id (field 41 / term)")
    parser.set_defaults(func=run_terminals)


def run_terminals(args) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    merchant = config.merchant_of_terminal(args.terminal)
    if merchant is None:
        return fail(f"no terminal {args.terminal!r} in {args.config}")
    return run_command(_act(config, merchant.id, args.terminal, args.action))


async def _act(config: Config, merchant: str, terminal: str, action: str) -> int:
    async with store_session(config) as store:
        if action != "show":
            await rules.set_terminal_enabled(store, merchant, terminal, action == "enable")
        disabled = await rules.terminal_disabled(store, merchant, terminal)
    print(json.dumps({"terminal": terminal, "merchant": merchant, "disabled": disabled}))
    return 0

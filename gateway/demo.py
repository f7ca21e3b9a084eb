"""`python -m gateway.demo`: show a running gateway answering, as a till would see it.

Issues one gift card in the gateway's store, then over ISO 8583 sends a sign-on, an activation
of 25.00, a redemption of 12.50 and a balance inquiry, printing each exchange; then a loyalty
card's activation and two earns, the second reaching the SILVER tier (field 63 `TR`, HOST-SPEC
1.1 section 6); then how to log into the web portal the first time. Used by `make run`; the
terminal simulator (`tillgate sim`) is the tool for anything more.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from gateway.config.defaults import DEFAULT_CONFIG_PATH, resolve_config
from gateway.config.model import Config, load_config
from gateway.config.urls import base_url
from gateway.ledger.cards import issue_card
from gateway.ledger.storeconnect import store_session
from gateway.sim.isoclient import IsoClient
from protocols.carddata import generate_card_number
from protocols.isobuild import StanCounter, request_fields
from protocols.model import Op, mask_card

TERMINAL, MERCHANT = "TILL0001", "STORE0000000001"


async def _issue(config, program_id: str = "gift") -> str:
    program = config.programs[program_id]
    async with store_session(config, start_embedded=False) as store:
        while True:
            card = generate_card_number(program.prefix, program.card_length_max, program.luhn)
            if await issue_card(store, program, card):
                return card


def _describe(fields: dict[str, str]) -> str:
    shown = {k: v for k, v in fields.items() if k not in ("p", "1", "52")}
    if "2" in shown:
        shown["2"] = mask_card(shown["2"]) if "*" not in shown["2"] else shown["2"]
    return " ".join(f"{k}={v}" for k, v in sorted(shown.items(), key=_order))


def _order(item: tuple[str, str]) -> int:
    return -1 if item[0] == "t" else int(item[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.demo")
    parser.add_argument("--config", default=None,
                        help=f"configuration file (default {DEFAULT_CONFIG_PATH}, else built-in)")
    args = parser.parse_args(argv)
    config = load_config(resolve_config(args.config)[0])
    iso = next(lst for lst in config.listeners if lst.protocol == "iso8583"
               and lst.transport == "tcp")
    card = asyncio.run(_issue(config))
    print(f"issued gift card {mask_card(card)} (status issued)\n")
    points = asyncio.run(_issue(config, "loyalty")) if "loyalty" in config.programs else None
    stans = StanCounter()
    def message(op: Op, **fields: Any) -> dict[str, str]:
        return request_fields(op, stan=stans.next(), terminal=TERMINAL, merchant=MERCHANT,
                              **fields)

    steps = [
        ("sign-on", message(Op.SIGNON)),
        ("activate 25.00", message(Op.ACTIVATE, card=card, amount=2500, currency="840")),
        ("redeem 12.50", message(Op.REDEEM, card=card, amount=1250)),
        ("balance", message(Op.BALANCE, card=card)),
    ]
    if points is not None:  # the default's tiers: BRONZE, then SILVER from 500 points earned
        print(f"issued loyalty card {mask_card(points)} (status issued)\n")
        steps += [
            ("loyalty activate", message(Op.ACTIVATE, card=points, amount=0, loyalty=True)),
            ("earn on 499.00 (tier BRONZE)", message(Op.EARN, card=points, amount=49900)),
            ("earn on 1.00 (500 points earned: tier SILVER)",
             message(Op.EARN, card=points, amount=100)),
        ]
    with IsoClient(iso.host, iso.port, framing=iso.framing, bitmap=iso.bitmap) as till:
        for title, fields in steps:
            response = till.exchange(fields)
            print(f"{title}\n  -> {_describe(fields)}\n  <- {_describe(response)}\n")
            if response.get("39") not in ("00", "10"):
                print(f"unexpected response code {response.get('39')}", file=sys.stderr)
                return 1
    _portal_first_login(config)
    _member_page(config)
    return 0


def _member_page(config: Config) -> None:
    """Where card holders sign in (docs/members.md), and how to get a card that can."""
    pin_programs = [p.id for p in config.programs.values() if p.pin_required]
    if not config.members.enabled or not pin_programs:
        return
    print(f"member page: {base_url(config)}/m/\n"
          "  sign in with a card of a program with PINs; one, with its PIN, from:\n"
          f"    tillgate cards issue --program {pin_programs[0]} --count 1 --activate 10.00\n")


def _portal_first_login(config: Config) -> None:
    """How to log into the web portal the first time (docs/portal.md)."""
    if not config.portal.enabled:
        return
    print(f"web portal: {base_url(config)}/ui/login\n"
          "  first login: make a head-office account, then open the link it prints:\n"
          "    tillgate users add --email you@example.com --name 'Your Name' "
          "--role head_office")
    if config.email.maildir is not None:
        print(f"  login codes by e-mail land in {config.email.maildir}/new/ "
              "(no SMTP relay configured)")
    print()


if __name__ == "__main__":
    sys.exit(main())

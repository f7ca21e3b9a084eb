"""Helpers for the member page's tests: a gateway in the test process with a PIN program of its
own (branded), cards issued with a known PIN and loaded by a real till over TCP, and the sign-in
form posted over real HTTP (tests/portalclient.py's client: its own cookie, no redirects)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from portalclient import Answer, Client, Clock, web

from gateway.ledger import cards
from gateway.reactor import deferred_from_coro
from gateway.sim.till import Till
from protocols.carddata import generate_card_number

PIN = "4321"
LOGO = (b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
        b'<circle cx="20" cy="20" r="18" fill="#ffb400"/></svg>')


def program_config(logo: Path) -> str:
    """`member`: gift cards with a 4-digit PIN, 3 tries, branded; `points`: loyalty without PIN."""
    logo.write_bytes(LOGO)
    return f"""
[programs.member]
kind = "gift"
currency = "840"
card_length = 16
prefix = "605100"
pin_length = 4
pin_tries = 3
pin_lock_seconds = 3600

[programs.member.brand]
name = "Acme Gift Card"
colour = "#0b3d91"
accent = "#c2410c"
logo = "{logo}"
"""


async def start(factory, tmp_path: Path, extra: str = "", backoffice_url: str | None = None):
    """A gateway in the test process; the suite's gateways share one Redis, so the member
    page's sessions and sign-in counters of other tests are cleared first."""
    extra = program_config(tmp_path / "logo.svg") + extra
    if backoffice_url is not None:
        extra += f'\n[backoffice]\nurl = "{backoffice_url}"\n'
    gw = await factory(extra=extra)
    redis = gw.gateway.store_service.store.client
    for pattern in ("member:*", "{m:members}:*"):
        stale = await deferred_from_coro(redis.keys(pattern))
        if stale:
            await deferred_from_coro(redis.delete(*stale))
    clock = Clock()
    gw.gateway.members.clock = clock
    return gw, gw.gateway.http.port.getHost().port, clock


async def issued(gw, program_id: str = "member", pin: str | None = PIN) -> str:
    program = gw.gateway.config.programs[program_id]
    card = generate_card_number(program.prefix, program.card_length_max, program.luhn)
    assert await deferred_from_coro(cards.issue_card(gw.gateway.store_service.store, program,
                                                     card, pin if program.pin_required else None))
    return card


def _till(config, op: str, card: str, amount: int = 0, **options) -> str | None:
    with Till.from_config(config, "iso") as till:
        exchange = (till.balance(card, **options) if op == "balance"
                    else getattr(till, op)(card, amount, **options))
        return exchange.reply.rc if exchange.reply else None


async def till_rc(gw, op: str, card: str, amount: int = 0, **options) -> str | None:
    """The response code a real till gets over TCP (ISO 8583)."""
    return await deferred_from_coro(asyncio.to_thread(_till, gw.gateway.config, op, card,
                                                      amount, **options))


async def active(gw, amount: int = 2500) -> str:
    """A member card with PIN, activated with `amount` by a till."""
    card = await issued(gw)
    assert await till_rc(gw, "activate", card, amount) == "00"
    return card


def sign_in(client: Client, card: str, pin: str = PIN) -> Answer:
    form = client.get("/m/")
    return client.post("/m/signin", {"csrf": form.csrf, "card": card, "pin": pin})


async def signed_in(port: int, card: str, pin: str = PIN) -> Client:
    client = Client(port)
    answer = await web(sign_in, client, card, pin)
    assert (answer.status, answer.location) == (303, "/m/card"), answer.body[:2000]
    return client

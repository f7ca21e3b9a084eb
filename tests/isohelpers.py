"""Helpers for ISO tests on an in-process gateway (started by the pytest plugin's
`tillgate_inprocess_factory`): fresh cards in its store, blocking clients off the reactor."""

from __future__ import annotations

from twisted.internet import threads

from gateway.app import Gateway
from gateway.ledger.cards import issue_card
from gateway.reactor import deferred_from_coro
from protocols.carddata import generate_card_number, generate_pin


async def new_card(gateway: Gateway, program_id: str = "gift") -> tuple[str, str | None]:
    """Issue a fresh card of the program (status `issued`); returns (number, PIN or None)."""
    program = gateway.config.programs[program_id]
    card = generate_card_number(program.prefix, program.card_length_max, program.luhn)
    pin = generate_pin(program.pin_length) if program.pin_required else None
    store = gateway.store_service.store
    assert await deferred_from_coro(issue_card(store, program, card, pin))
    return card, pin


def in_thread(fn, *args, **kwargs):
    """Run a blocking client call off the reactor thread (the gateway runs on it)."""
    return threads.deferToThread(fn, *args, **kwargs)

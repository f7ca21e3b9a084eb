"""An in-process gateway on free ports against the session's redis-server, for ISO tests."""

from __future__ import annotations

import tomllib
from pathlib import Path

from twisted.internet import reactor, threads

from gateway.app import Gateway
from gateway.cards import issue_card
from gateway.config import parse_config
from gateway.embedded_redis import free_port
from gateway.reactor import deferred_from_coro
from gateway.testing import config_text
from protocols.carddata import generate_card_number, generate_pin


def make_config(tmp_path: Path, redis_url: str, extra: str = "", **listener_overrides):
    ports = {"iso": free_port(), "line": free_port(), "http": free_port()}
    data = tomllib.loads(config_text(data_dir=str(tmp_path / "var"), ports=ports,
                                     redis_url=redis_url, extra=extra))
    data["listeners"][0].update(listener_overrides)
    return parse_config(data, "test"), ports


async def start_gateway(config) -> Gateway:
    gateway = Gateway(reactor, config)
    await gateway.start()
    return gateway


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

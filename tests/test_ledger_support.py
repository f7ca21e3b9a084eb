"""Shared parts of the ledger and processor tests (no tests here).

`ledger` is a real Store on the session's redis-server (flushed per test) and a Processor over
a test configuration: the default programs of HOST-SPEC 6 plus a few that exercise the other
rules (face values, expiry, limits, a club, points rounding and caps).
"""

from __future__ import annotations

import itertools
import random
import tomllib
from typing import Any

import pytest_twisted

from gateway.config.model import Config, parse_config
from gateway.ledger import cards
from gateway.ledger.processor import Processor
from gateway.ledger.store import Store
from gateway.reactor import deferred_from_coro
from protocols.carddata import luhn_valid
from protocols.model import Op, Request, Result

TERM, MERCH = "TILL0001", "STORE0000000001"
EXTRA_PROGRAMS = {
    "prepaid": {"kind": "gift", "currency": "840", "card_length": 16, "prefix": "603955",
                "face_values": [2500, 5000], "max_balance": 50000, "max_transaction": 20000,
                "reload": False, "partial_approval": False, "expiry_days": 365},
    "club": {"kind": "gift", "currency": "978", "card_length": 16, "prefix": "603956",
             "merchants": ["BHNRESELLER0001"]},
    "points": {"kind": "loyalty", "currency": "840", "card_length": 10, "prefix": "88",
               "luhn": False, "points_per_unit": 3, "unit": 200, "rounding": "half_up",
               "min_points": 2, "max_points": 50, "points_only": False, "pin_length": 4},
}


def ledger_config(**gateway: Any) -> Config:
    with open("config/tillgate.toml", "rb") as f:
        data = tomllib.load(f)
    data["programs"].update(EXTRA_PROGRAMS)
    data["gateway"].update(gateway)
    return parse_config(data, "test")


def random_number(config: Config, program_id: str, rng: random.Random | None = None) -> str:
    """A number that fits the program (retries until the existing Luhn check accepts it)."""
    rng = rng or random.Random()
    p = config.programs[program_id]
    while True:
        n = p.prefix + "".join(rng.choice("0123456789")
                               for _ in range(p.card_length_max - len(p.prefix)))
        if not p.luhn or luhn_valid(n):
            return n


class Ledger:
    def __init__(self, config: Config, store: Store):
        self.config = config
        self.store = store
        self.processor = Processor(config, store)
        self._keys = itertools.count(1)

    def key(self) -> str:
        return f"L:{TERM}:{MERCH}:{next(self._keys)}:20260101"

    def request(self, op: Op, card: str | None, amount: int = 0, **kw: Any) -> Request:
        kw.setdefault("terminal", TERM)
        kw.setdefault("merchant", MERCH)
        kw.setdefault("key", self.key())
        return Request(op=op, card=card, amount=amount, **kw)

    async def send(self, op: Op, card: str | None, amount: int = 0, **kw: Any) -> Result:
        return await self.processor.submit(self.request(op, card, amount, **kw))

    async def issue(self, program_id: str = "gift", pin: str | None = None, face: int = 0,
                    activate: int | None = None, **kw: Any) -> str:
        program = self.config.programs[program_id]
        card = random_number(self.config, program_id)
        assert await self.call(cards.issue_card(self.store, program, card, pin, face))
        if activate is not None:
            op = Op.ACTIVATE
            inv = {"invoice": "A" + self.key()[-14:]} if program.invoice_required else {}
            result = await self.send(op, card, activate, **inv, **kw)
            assert result.code == "00", result
        return card

    async def show(self, card: str) -> cards.CardView:
        view = await self.call(cards.show_card(self.store, card))
        assert view is not None
        return view

    def call(self, coro: Any) -> Any:
        """Run a store coroutine from a Twisted test (the one crossing, as production does)."""
        return deferred_from_coro(coro)


@pytest_twisted.async_yield_fixture
async def ledger(redis_url):
    store = await deferred_from_coro(Store.connect(redis_url, pool_size=8))
    yield Ledger(ledger_config(), store)
    await deferred_from_coro(store.close())

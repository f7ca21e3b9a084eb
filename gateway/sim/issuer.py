"""Issue fresh cards into a gateway's store, for scenarios, load runs and tests.

Cards must exist (status `issued`) before a till can activate them. This goes to the store the
config names, exactly as `tillgate cards issue` does (gateway.ledger.storeconnect.open_store: the
configured Redis, or the embedded redis-server of a running gateway with the same data
directory). The calls are blocking: each runs the async store client on its own event loop in a
worker thread, so they work from plain scripts, from the CLI and from inside a test whose thread
already runs an event loop (pytest-twisted's asyncio reactor).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from gateway.config.model import Config, Program
from gateway.ledger.cards import issue_card, show_card
from gateway.ledger.storeconnect import open_store
from gateway.ledger.sweep import SweepReport, sweep
from protocols.carddata import generate_card_number, generate_pin
from protocols.model import mask_card

T = TypeVar("T")


@dataclass(frozen=True)
class IssuedCard:
    number: str
    pin: str | None
    program: str

    def __repr__(self) -> str:  # never a whole number or a PIN in a test report
        return f"IssuedCard({mask_card(self.number)}, program={self.program!r})"


def run_blocking(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a private event loop in a worker thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()  # type: ignore[arg-type]


def _program(config: Config, program: str) -> Program:
    try:
        return config.programs[program]
    except KeyError:
        raise ValueError(f"no program {program!r} in the config (have: "
                         f"{', '.join(sorted(config.programs))})") from None


async def issue_many(config: Config, program: str, count: int = 1,
                     face_value: int = 0) -> list[IssuedCard]:
    """Issue `count` new cards of `program` (random numbers, a PIN where the program has one)."""
    prog = _program(config, program)
    if face_value == 0 and prog.face_values:
        face_value = prog.face_values[0]
    store, embedded = await open_store(config)
    try:
        cards: list[IssuedCard] = []
        while len(cards) < count:
            batch = []
            for _ in range(min(count - len(cards), 256)):
                number = generate_card_number(prog.prefix, prog.card_length_max, prog.luhn,
                                              prog.range_low, prog.range_high, prog.alphanumeric)
                pin = generate_pin(prog.pin_length) if prog.pin_required else None
                batch.append((number, pin))
            done = await asyncio.gather(*(issue_card(store, prog, n, p, face_value)
                                          for n, p in batch))
            cards.extend(IssuedCard(n, p, program) for (n, p), ok in zip(batch, done) if ok)
        return cards
    finally:
        await store.close()
        if embedded is not None:
            embedded.stop()


def issue_cards(config: Config, program: str = "gift", count: int = 1,
                face_value: int = 0) -> list[IssuedCard]:
    """Blocking `issue_many`."""
    return run_blocking(lambda: issue_many(config, program, count, face_value))


def card_state(config: Config, card: str) -> dict[str, object] | None:
    """`cards show` for one card (masked), or None when it does not exist."""
    async def show() -> dict[str, object] | None:
        store, embedded = await open_store(config)
        try:
            view = await show_card(store, card)
            return None if view is None else view.as_dict()
        finally:
            await store.close()
            if embedded is not None:
                embedded.stop()
    return run_blocking(show)


def sweep_points(config: Config, now: float) -> SweepReport:
    """The points sweep (gateway/ledger/sweep.py) on the config's store as of `now`, blocking:
    a scenario's `points_sweep` step moves time on for expiry and tier reviews this way."""
    async def run() -> SweepReport:
        store, embedded = await open_store(config)
        try:
            return await sweep(store, config, now)
        finally:
            await store.close()
            if embedded is not None:
                embedded.stop()
    return run_blocking(run)

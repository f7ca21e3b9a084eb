"""Which program a card number belongs to.

HOST-SPEC 4: a number failing its program's rules (length, range, Luhn) is answered 14.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

from protocols.carddata import luhn_valid


class NumberRules(Protocol):
    """What a program says of its card numbers (gateway.config.model.Program has these); named
    here so that this module needs nothing of the config that uses it."""

    # read-only members (properties), as the frozen dataclass's fields are
    @property
    def card_length_min(self) -> int: ...
    @property
    def card_length_max(self) -> int: ...
    @property
    def alphanumeric(self) -> bool: ...
    @property
    def prefix(self) -> str: ...
    @property
    def range_low(self) -> str | None: ...
    @property
    def range_high(self) -> str | None: ...
    @property
    def luhn(self) -> bool: ...


P = TypeVar("P", bound=NumberRules)


def number_fits(program: NumberRules, card: str) -> bool:
    """True when `card` obeys the program's length, prefix or range, charset and Luhn rules."""
    if not (program.card_length_min <= len(card) <= program.card_length_max):
        return False
    if not (card.isalnum() if program.alphanumeric else card.isdigit()):
        return False
    if not card.isascii():
        return False
    if program.prefix and not card.startswith(program.prefix):
        return False
    if program.range_low is not None and program.range_high is not None:
        if len(card) != len(program.range_low) or not (
            program.range_low <= card <= program.range_high
        ):
            return False
    if program.luhn and not (card.isdigit() and luhn_valid(card)):
        return False
    return True


def program_for_card(programs: Iterable[P], card: str) -> P | None:
    for program in programs:
        if number_fits(program, card):
            return program
    return None

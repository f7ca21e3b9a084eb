"""Which program a card number belongs to.

HOST-SPEC 4: a number failing its program's rules (length, range, Luhn) is answered 14.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from protocols.carddata import luhn_valid

if TYPE_CHECKING:  # gateway.config imports this module
    from gateway.config import Program


def number_fits(program: Program, card: str) -> bool:
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


def program_for_card(programs: Iterable[Program], card: str) -> Program | None:
    for program in programs:
        if number_fits(program, card):
            return program
    return None

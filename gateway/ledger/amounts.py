"""Amounts typed by people (`--amount 12.50`, scenario files) -> integers in minor units.

One parser for every command and file format, so `12.5`, `12.50` and `12` mean the same thing
everywhere. Parsed with decimal.Decimal, never float: `0.1 + 0.2` must stay 30 cents.
"""

from __future__ import annotations

import re
from decimal import Decimal

_AMOUNT = re.compile(r"\d{1,10}(\.\d+)?")


def parse_amount(text: str, *, exponent: int = 2) -> int:
    """`"12.50"` -> 1250. Raises ValueError with a one-line reason for anything else.

    At most `exponent` decimal places (the currency's minor unit: 2 for USD/EUR); no sign, no
    thousands separators, no exponent notation.
    """
    value = text.strip()
    if not _AMOUNT.fullmatch(value):
        raise ValueError(f"amount {text!r}: expected a number such as 12.50")
    frac = value.partition(".")[2]
    if len(frac) > exponent:
        raise ValueError(f"amount {text!r}: at most {exponent} decimals")
    return int(Decimal(value).scaleb(exponent))


def format_amount(minor: int, *, exponent: int = 2) -> str:
    """1250 -> `"12.50"`; negative values keep their sign."""
    sign = "-" if minor < 0 else ""
    text = str(abs(minor)).rjust(exponent + 1, "0")
    return f"{sign}{text[:-exponent]}.{text[-exponent:]}" if exponent else f"{sign}{text}"

"""Amounts in a report: integer minor units from SQL, written as decimal strings with the
currency's own number of decimals (ISO 4217's minor unit: 2 for USD and EUR, 0 for JPY, 3 for
KWD). Never a float: the string is cut from the integer (gateway.ledger.amounts.format_amount).
"""

from __future__ import annotations

from gateway.backoffice.reports.errors import ReportError
from gateway.config.model import Config
from gateway.ledger.amounts import format_amount

DEFAULT_EXPONENT = 2
# ISO 4217 numeric codes whose minor unit is not 2 (every other currency has 2).
CURRENCY_EXPONENTS = {
    "108": 0, "152": 0, "174": 0, "262": 0, "324": 0, "352": 0, "392": 0, "410": 0, "548": 0,
    "600": 0, "646": 0, "704": 0, "800": 0, "950": 0, "952": 0, "953": 0,  # BIF ... XPF
    "048": 3, "368": 3, "400": 3, "414": 3, "434": 3, "512": 3, "788": 3,  # BHD ... TND
    "990": 4,  # CLF
}


def currency_exponent(currency: str) -> int:
    return CURRENCY_EXPONENTS.get(currency, DEFAULT_EXPONENT)


CACHED = 20_000  # amounts repeat (face values, usual prices): most rows are a dict lookup


class Money:
    """Formats each program's amounts with its currency's exponent. A program the journal names
    but the config no longer has keeps the default of 2 decimals."""

    def __init__(self, config: Config):
        self.exponents = {pid: currency_exponent(p.currency) for pid, p in config.programs.items()}
        self.written: dict[tuple[int, int], str] = {}

    def exponent(self, program: str | None) -> int:
        return self.exponents.get(program or "", DEFAULT_EXPONENT)

    def format(self, minor: int | None, program: str | None) -> str:
        key = (int(minor or 0), self.exponents.get(program or "", DEFAULT_EXPONENT))
        text = self.written.get(key)
        if text is None:
            if len(self.written) >= CACHED:
                self.written.clear()
            text = self.written[key] = format_amount(key[0], exponent=key[1])
        return text

    def shared_exponent(self, programs: tuple[str, ...]) -> int:
        """The one exponent of `programs` (all configured programs when none are named), for a
        figure that adds amounts of several programs; their currencies must agree on it."""
        chosen = programs or tuple(self.exponents)
        found = {self.exponent(p) for p in chosen}
        if len(found) > 1:
            raise ReportError("program", "the programs' currencies have different decimals "
                              f"({', '.join(f'{p}: {self.exponent(p)}' for p in chosen)}): "
                              "name the programs to add up, of one currency")
        return found.pop() if found else DEFAULT_EXPONENT

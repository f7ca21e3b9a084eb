"""Logging through the stdlib, with card numbers masked wherever they appear.

The masking is done on the final formatted text (message, arguments, tracebacks), so a card
number that slips into an f-string, a repr of a Request or an exception message is still cut to
its first 6 and last 4 digits (`mask_card`). What counts as a card number: any run of 13 to 19
digits (payment-card lengths, including inside track data), plus runs that match a configured
program's prefix and length, so short loyalty numbers are masked too.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

from protocols.model import mask_card

_GENERIC = r"\d{13,19}"


def card_pattern(programs: Iterable[object] = ()) -> re.Pattern[str]:
    """A regex matching card numbers: generic lengths and each program's prefix and length."""
    alternatives = [_GENERIC]
    for program in programs:
        prefix = re.escape(getattr(program, "prefix", "") or "")
        low = getattr(program, "card_length_min", 0)
        high = getattr(program, "card_length_max", 0)
        if low and high and high < 13:
            rest_low, rest_high = max(low - len(prefix), 0), max(high - len(prefix), 0)
            alternatives.append(f"{prefix}\\d{{{rest_low},{rest_high}}}")
    # Longest alternatives first; digits on either side mean it is part of a longer number.
    return re.compile(r"(?<!\d)(?:" + "|".join(alternatives) + r")(?!\d)")


class CardMaskingFormatter(logging.Formatter):
    def __init__(self, fmt: str | None = None, programs: Iterable[object] = (), **kw):
        super().__init__(fmt, **kw)
        self.pattern = card_pattern(programs)

    def format(self, record: logging.LogRecord) -> str:
        return self.pattern.sub(lambda m: mask_card(m.group(0)), super().format(record))


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str = "INFO", programs: Iterable[object] = (), stream=None,
                  process: str = "") -> None:
    """Route stdlib and Twisted logging through one masking handler on stderr. `process`: a
    name put before each line's logger (`worker 1`: which of `serve --workers N` wrote it)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    line_format = LOG_FORMAT.replace("%(name)s", f"[{process}] %(name)s") if process else LOG_FORMAT
    handler.setFormatter(CardMaskingFormatter(line_format, programs=programs))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    globalLogBeginner.beginLoggingTo([STDLibLogObserver(name="twisted")],
                                     redirectStandardIO=False, discardBuffer=True)


def reconfigure_logging(level: str, pattern: re.Pattern[str]) -> None:
    """After a config reload: the new level, and `pattern` (card_pattern of the new programs)
    masking card numbers, so a program added with short numbers is not logged whole."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler.formatter, CardMaskingFormatter):
            handler.formatter.pattern = pattern
    root.setLevel(level)

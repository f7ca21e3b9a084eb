"""A card's barcode and QR code as rows of modules, from well-kept libraries.

python-barcode draws the Code 128 bars (start code, character sets, check character, stop) and
segno the QR code; both give their modules (the narrowest bar, the smallest square) as data, so
the proof sheet (gateway/issuance/proofsheet.py) draws exactly those with SVG rectangles, and a
test can draw the same modules into a PNG and decode them (tests/test_artwork.py). Each row is a
list of (start, length) runs of dark modules, quiet zones included in the coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import segno
from barcode import Code128

# Quiet zones: 10 modules each side of a Code 128 symbol (ISO/IEC 15417), 4 round a QR code
# (ISO/IEC 18004).
CODE128_QUIET = 10
QR_QUIET = 4


@dataclass(frozen=True)
class Symbol:
    """Dark runs row by row; `width` and `height` in modules, quiet zones included. A linear
    barcode has one row, stretched to its height by whoever draws it."""

    width: int
    height: int
    rows: tuple[tuple[tuple[int, int], ...], ...]


def _runs(bits, offset: int) -> tuple[tuple[int, int], ...]:
    runs = []
    start = -1
    for i, dark in enumerate(bits):
        if dark and start < 0:
            start = i
        elif not dark and start >= 0:
            runs.append((offset + start, i - start))
            start = -1
    if start >= 0:
        runs.append((offset + start, len(bits) - start))
    return tuple(runs)


def code128(payload: str) -> Symbol:
    """The Code 128 symbol of `payload` (ASCII text): python-barcode picks the character sets
    (set C for runs of digits, half the width of set B)."""
    bars = Code128(payload).build()[0]
    return Symbol(len(bars) + 2 * CODE128_QUIET, 1,
                  (_runs([b == "1" for b in bars], CODE128_QUIET),))


def qr(payload: str) -> Symbol:
    """The QR code of `payload`: error correction level M (15% of the symbol may be lost to a
    scratch or a fold), the smallest version that holds it; segno raises it to a higher level
    when that costs no size."""
    code = segno.make(payload, error="m", micro=False)
    rows = tuple(_runs(row, QR_QUIET) for row in code.matrix)
    side = len(code.matrix) + 2 * QR_QUIET
    return Symbol(side, side, ((),) * QR_QUIET + rows + ((),) * QR_QUIET)

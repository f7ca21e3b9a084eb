"""The proof sheet of a batch: SVG pages of card cells, each with the card's Code 128 barcode,
its QR code and its number (docs/artwork.md, "Proof sheet").

A page is A4 portrait in millimetres with 2 x 5 cells of the ID-1 card size (85.6 x 54 mm), so a
printed proof shows each card at its real size. The symbols are drawn from their modules
(gateway/issuance/symbols.py) as black rectangles on white, nothing else: any SVG viewer or
printer renders them alike, and tests/test_artwork.py rasterises them and decodes them back.

The number under the barcode is the whole number, as the card's face shows it: the printer
checks barcode against text, and the barcode and QR code carry the whole number anyway, so a
masked text would protect nothing. A proof is as secret as the manufacturer file and goes to the
same people (docs/artwork.md, "Who sees what"). A PIN is never on a proof.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from xml.sax.saxutils import escape, quoteattr

from gateway.issuance import symbols
from gateway.issuance.artwork import CardArt

PAGE_W, PAGE_H = 210.0, 297.0
CARD_W, CARD_H = 85.6, 54.0
COLUMNS, ROWS = 2, 5
CARDS_PER_PAGE = COLUMNS * ROWS
GAP = 4.0
MARGIN_X = (PAGE_W - COLUMNS * CARD_W - (COLUMNS - 1) * GAP) / 2
MARGIN_Y = (PAGE_H - ROWS * CARD_H - (ROWS - 1) * GAP) / 2
# Symbol sizes on the card: Code 128 bars 0.25 mm a module, 12 mm tall (a 19-digit number in set
# C is 176 modules with its quiet zones, 44 mm); the QR code 26 mm square with its quiet zone.
BAR_MODULE = 0.25
BAR_HEIGHT = 12.0
BAR_SPACE = 50.0  # mm left of the QR code, quiet zones included
QR_SIDE = 26.0
PAD = 4.0


def _fmt(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _symbol_rects(symbol: symbols.Symbol, x: float, y: float, module_w: float, module_h: float,
                  row_h: float) -> Iterator[str]:
    """One rectangle for each run of dark modules; a linear symbol's single row is `row_h`
    tall, a matrix symbol's rows `module_h`."""
    for r, row in enumerate(symbol.rows):
        top = y + r * module_h
        for start, length in row:
            yield (f'<rect x="{_fmt(x + start * module_w)}" y="{_fmt(top)}" '
                   f'width="{_fmt(length * module_w)}" height="{_fmt(row_h)}"/>')


def _cell(card: CardArt, x: float, y: float, title: str) -> Iterator[str]:
    bars = symbols.code128(card.code128)
    # A long alphanumeric number (set B) is wider: narrower modules keep it clear of the QR code.
    bar_module = min(BAR_MODULE, BAR_SPACE / bars.width)
    qr = symbols.qr(card.qr)
    yield (f'<g class="card" data-sequence="{card.sequence}" '
           f'transform="translate({_fmt(x)} {_fmt(y)})">')
    yield (f'<rect class="outline" width="{_fmt(CARD_W)}" height="{_fmt(CARD_H)}" rx="3.18" '
           'fill="#fff" stroke="#999" stroke-width="0.2"/>')
    yield f'<text x="{_fmt(PAD)}" y="{_fmt(PAD + 4)}" font-size="4">{escape(title)}</text>'
    yield (f'<text x="{_fmt(CARD_W - PAD)}" y="{_fmt(PAD + 4)}" font-size="3" '
           f'text-anchor="end">#{card.sequence}</text>')
    bar_y = CARD_H - PAD - 5 - BAR_HEIGHT
    yield f'<g class="code128" data-payload={quoteattr(card.code128)} fill="#000">'
    yield from _symbol_rects(bars, PAD - symbols.CODE128_QUIET * bar_module, bar_y,
                             bar_module, BAR_HEIGHT, BAR_HEIGHT)
    yield "</g>"
    yield (f'<text class="number" x="{_fmt(PAD)}" y="{_fmt(CARD_H - PAD)}" font-size="3.6" '
           f'font-family="monospace">{escape(card.number)}</text>')
    module = QR_SIDE / qr.width
    yield f'<g class="qr" data-payload={quoteattr(card.qr)} fill="#000">'
    yield from _symbol_rects(qr, CARD_W - PAD - QR_SIDE, PAD + 5, module, module, module)
    yield "</g>"
    yield "</g>"


def page_svg(cards: Sequence[CardArt], title: str, page: int, pages: int) -> str:
    """One A4 page of at most CARDS_PER_PAGE cards, as an SVG document."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_fmt(PAGE_W)}mm" '
        f'height="{_fmt(PAGE_H)}mm" viewBox="0 0 {_fmt(PAGE_W)} {_fmt(PAGE_H)}" '
        'font-family="sans-serif">',
        f"<title>{escape(title)}: proof, page {page} of {pages}</title>",
        f'<rect width="{_fmt(PAGE_W)}" height="{_fmt(PAGE_H)}" fill="#fff"/>',
        f'<text x="{_fmt(MARGIN_X)}" y="{_fmt(MARGIN_Y - 3)}" font-size="3.5">'
        f"{escape(title)}: proof, page {page} of {pages}</text>",
    ]
    for i, card in enumerate(cards[:CARDS_PER_PAGE]):
        col, row = i % COLUMNS, i // COLUMNS
        parts.extend(_cell(card, MARGIN_X + col * (CARD_W + GAP),
                           MARGIN_Y + row * (CARD_H + GAP), title))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def pages(cards: Sequence[CardArt]) -> int:
    return max(1, -(-len(cards) // CARDS_PER_PAGE))


def page_name(page: int) -> str:
    """`proof-0001.svg`: zero-padded so that a directory listing is in page order."""
    return f"proof-{page:04d}.svg"

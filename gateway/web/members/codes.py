"""The card's QR code and Code 128 barcode, as inline SVG markup to show at a till's scanner.

The QR code's payload is `tillgate:card/<number>`, which protocols/carddata decodes as a till's
scan; the barcode holds the number itself. Both are drawn with fill and stroke attributes only
(never `style`): the page's Content-Security-Policy allows no inline styles, which would blank
them. Encoding is the libraries' (segno, python-barcode); this only lays out the modules.
"""

from __future__ import annotations

import segno
from barcode import Code128

QR_PREFIX = "tillgate:card/"
BAR_HEIGHT = 60  # module widths: a bar as tall as the number is wide at 16 digits
QUIET = 10  # modules of white either side (Code 128 asks for at least 10)


def qr_svg(card: str) -> str:
    """The QR code with a fixed mask pattern: segno's choice among the eight (scoring each) is
    most of its time (11 ms against 2.5 ms on the development VM), and any mask is a valid
    code; scanners read it alike on a screen's clean contrast."""
    svg: str = segno.make(QR_PREFIX + card, error="m", mask=0).svg_inline(
        scale=5, dark="#000", light="#fff", title="QR code of your card")
    return svg


def barcode_svg(card: str) -> str:
    """Code 128 of the number: one rect per run of dark modules, in a viewBox of module units,
    so the stylesheet scales it without blurring."""
    modules = Code128(card).build()[0]
    width = len(modules) + 2 * QUIET
    rects = []
    x = 0
    while x < len(modules):
        if modules[x] == "1":
            run = x
            while run < len(modules) and modules[run] == "1":
                run += 1
            rects.append(f'<rect x="{QUIET + x}" y="0" width="{run - x}" height="{BAR_HEIGHT}"/>')
            x = run
        else:
            x += 1
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="bars" role="img" '
            f'viewBox="0 0 {width} {BAR_HEIGHT}" preserveAspectRatio="none">'
            f'<title>Barcode of your card</title>'
            f'<rect width="{width}" height="{BAR_HEIGHT}" fill="#fff"/>'
            f'<g fill="#000">{"".join(rects)}</g></svg>')

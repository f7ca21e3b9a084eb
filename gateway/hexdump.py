"""Hex dumps of refused messages for the log, with card numbers masked in the bytes themselves.

The log formatter masks card numbers in text, but a hex dump spells digits as `36 30 33 ...`,
which no text filter can see; so digit runs of card length are masked before dumping.
"""

from __future__ import annotations

import re

# Any run of 13 or more digits: in a raw ISO message the PAN sits inside a longer run (its length
# prefix before it, fixed numeric fields after it), so runs are masked whole, keeping 6 + 4.
_CARD_DIGITS = re.compile(rb"[0-9]{13,}")
# A TGL/1 `pin=` value runs to the next field separator (FS) or the frame's end (ETX).
_TGL_PIN = re.compile(rb"(?<=pin=)[^\x1c\x03]+")


def _mask(match: re.Match[bytes]) -> bytes:
    digits = match.group(0)
    keep_head, keep_tail = (6, 4) if len(digits) > 10 else (2, 2)
    return digits[:keep_head] + b"*" * (len(digits) - keep_head - keep_tail) + digits[-keep_tail:]


def mask_digits(data: bytes) -> bytes:
    return _TGL_PIN.sub(lambda m: b"*" * len(m.group(0)), _CARD_DIGITS.sub(_mask, data))


def hide(data: bytes, values: object) -> bytes:
    """`data` with each of `values` (str or bytes, e.g. a decoded ISO field 52: a PIN block)
    replaced by asterisks, for a dump whose field positions only the decoder knew."""
    for value in values or ():  # type: ignore[attr-defined]
        raw = value.encode() if isinstance(value, str) else value
        if raw:
            data = data.replace(raw, b"*" * len(raw))
    return data


def masked_hexdump(data: bytes, limit: int = 512) -> str:
    """`offset  hex bytes  |ascii|` lines of at most `limit` bytes, card numbers and TGL/1 PINs
    masked."""
    shown = mask_digits(data[:limit])
    lines = []
    for offset in range(0, len(shown), 16):
        chunk = shown[offset:offset + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:04x}  {hexes:<47}  |{text}|")
    if len(data) > limit:
        lines.append(f"... {len(data) - limit} more bytes")
    return "\n".join(lines)

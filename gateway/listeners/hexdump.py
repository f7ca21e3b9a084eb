"""Hex dumps of refused messages for the log, with no card number or PIN material in them.

The log formatter masks card numbers in text, but a hex dump spells digits as `36 30 33 ...`,
which no text filter can see; so digit runs of card length are masked before dumping.

A PIN block is 16 hex characters, indistinguishable from other bytes, and a message is refused
precisely when its decoder could not say where its fields are; so PIN material is kept out by
position, never by recognising it (docs/security.md, "What is never logged"):

- ISO 8583 (`iso_dump`): when the MTI and primary bitmap are readable and field 52 is absent,
  the whole message is dumped; when 52 is present, only the bytes before the earliest offset
  field 52 could start at (every present field 2-51 at its shortest); when the MTI or bitmap
  cannot be read, no byte of the body: its length, MTI bytes and why.
- TGL/1 (`tgl_dump`): the frame's field structure, with the value of `pin`, of any key that is
  not a known one (a garbled `pin`) and of any value that is not clean printable text (a
  garbled separator may have merged `pin=` into it) replaced by asterisks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from protocols import tgl

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


# --- ISO 8583 ------------------------------------------------------------------------------

_MTI_LEN = 4
_PIN_FIELD = 52


def _field_min_len(definition: Mapping[str, Any]) -> int:
    """The fewest bytes a field can take: a fixed field its length, a variable one its prefix."""
    return int(definition["len_type"]) or int(definition["max_len"])


def _bitmap_len(definition: Mapping[str, Any]) -> int:
    return 8 if definition["data_enc"] == "b" else 16


def _primary_bitmap(payload: bytes, spec: Mapping[str, Mapping[str, Any]]) -> int | None:
    """The primary bitmap as an int, or None when the MTI or the bitmap cannot be read."""
    mti = payload[:_MTI_LEN]
    if len(mti) < _MTI_LEN or not (mti.isascii() and mti.isdigit()):
        return None  # not even an MTI: whatever follows is not where the spec says it is
    raw = payload[_MTI_LEN:_MTI_LEN + _bitmap_len(spec["p"])]
    if len(raw) < _bitmap_len(spec["p"]):
        return None
    if spec["p"]["data_enc"] == "b":
        return int.from_bytes(raw, "big")
    if not (raw.isascii() and all(c in b"0123456789ABCDEFabcdef" for c in raw)):
        return None
    return int(raw, 16)


def pin_safe_length(payload: bytes, spec: Mapping[str, Mapping[str, Any]]) -> int | None:
    """How many leading bytes of an ISO 8583 `payload` can hold no PIN block: all of them when
    the bitmap says field 52 is absent, those before the earliest start of field 52 when it is
    present, None when the MTI or the primary bitmap cannot be read."""
    bitmap = _primary_bitmap(payload, spec)
    if bitmap is None:
        return None

    def present(field: int) -> bool:
        return bool(bitmap >> (64 - field) & 1)

    if not present(_PIN_FIELD):
        return len(payload)
    start = _MTI_LEN + _bitmap_len(spec["p"])
    if present(1):
        start += _bitmap_len(spec["1"])
    start += sum(_field_min_len(spec[str(f)]) for f in range(2, _PIN_FIELD) if present(f))
    return min(start, len(payload))


def iso_dump(payload: bytes, spec: Mapping[str, Mapping[str, Any]], limit: int = 512) -> str:
    """A refused ISO 8583 message for the log: a masked hex dump of what cannot hold field 52,
    or, when the bitmap cannot be read, its length and MTI bytes only."""
    safe = pin_safe_length(payload, spec)
    if safe is None:
        return (f"{len(payload)} bytes, MTI bytes {payload[:_MTI_LEN].hex(' ') or '-'}; body "
                f"not shown: unreadable MTI or bitmap, so a PIN block could be anywhere")
    if safe == len(payload):
        return masked_hexdump(payload, limit)
    return (masked_hexdump(payload[:safe], limit) +
            f"\n... {len(payload) - safe} bytes from where field 52 (PIN block) can start "
            f"not shown")


# --- TGL/1 ---------------------------------------------------------------------------------

_TGL_HEAD = (tgl.MAGIC, tgl.REQUEST, tgl.RESPONSE)
_TGL_FIELD = re.compile(rb"([a-z]{1,16})=(.*)", re.DOTALL)
# Values shown as sent: printable text (a swipe may end in the reader's CR LF), never one that
# mentions a pin, however cased (a corrupted separator may have merged `pin=` into it).
_TGL_CLEAN_VALUE = re.compile(rb"(?![\s\S]*[pP][iI][nN])[ -~]*[\r\n]*")
_TGL_SHOWN_KEYS = frozenset(key.encode() for key in tgl.KNOWN_KEYS - {"pin"})


def _tgl_part(index: int, part: bytes) -> bytes:
    if index < 2 and part in _TGL_HEAD:
        return part
    match = _TGL_FIELD.fullmatch(part)
    if match is None:
        return b"*" * len(part)
    key, value = match.group(1), match.group(2)
    if key in _TGL_SHOWN_KEYS and _TGL_CLEAN_VALUE.fullmatch(value):
        return part
    return key + b"=" + b"*" * len(value)


def tgl_dump(payload: bytes, limit: int = 512) -> str:
    """A TGL/1 payload for the log: its fields, every value that could be PIN material hidden,
    card numbers masked."""
    parts = payload.split(tgl.FS)
    return masked_hexdump(tgl.FS.join(_tgl_part(i, p) for i, p in enumerate(parts)), limit)

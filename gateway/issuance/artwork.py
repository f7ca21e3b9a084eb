"""What goes on each card of a batch: stripe tracks and barcode payloads (docs/artwork.md).

A batch comes from `tillgate cards issue --out` (columns card, pin, ...) or any CSV with a `card`
column (and `pin` where the program has PINs). `Layout` says how the program's cards are encoded;
`card_art` turns one card into a `CardArt`, the row of the manufacturer file
(gateway/issuance/printfile.py) and a cell of the proof sheet (gateway/issuance/proofsheet.py).

Which tracks a card gets: the layout's tracks, except that a number holding letters goes to
track 1 only. Track 2 (ABA) and ISO 4909 track 3 are 5-bit numeric tracks: they cannot carry a
letter, and the decoders refuse one there (docs/card-data.md, "Writing card data").
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

from gateway.config.cardrules import number_fits
from gateway.config.model import Program
from protocols import cardwrite

TRACKS = (1, 2, 3)
NAME_CHARS = frozenset(" ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/.-")


@dataclass(frozen=True)
class Layout:
    """How a program's cards are encoded: the stripe's tracks and their fields."""

    tracks: tuple[int, ...] = (1, 2)
    name: str = "GIFT CARD"  # track 1's name field: the program's title on anonymous cards
    expiry: str | None = None  # YYMM printed on every card of the batch; None = no expiry
    service_code: str | None = None  # three digits, e.g. 120 (domestic, PIN where available)
    with_lrc: bool = False  # most bureaus compute the LRC themselves; some files want it written


@dataclass(frozen=True)
class CardArt:
    """One card of the batch: its data, each track's text ("" when the card has no such track)
    and its barcode payloads."""

    sequence: int  # 1-based position in the batch: what a proof cell and a PIN mailer show
    number: str
    pin: str
    track1: str
    track2: str
    track3: str
    code128: str
    qr: str


def default_name(program: Program) -> str:
    """Track 1's name field for a program's anonymous cards: its id in capitals, as `GIFT CARD`
    for a program `gift`; what the 6-bit set cannot hold becomes a space."""
    title = "".join(c if c in NAME_CHARS else " " for c in program.id.upper().replace("_", " "))
    return (title.strip() + " CARD")[:cardwrite.NAME_MAX]


def check_layout(layout: Layout, program: Program) -> None:
    """Refuse, before the first card, a layout no card of the program could be written with."""
    if not layout.tracks or not set(layout.tracks) <= set(TRACKS):
        raise ValueError("tracks: one or more of 1, 2, 3")
    if program.alphanumeric and 1 not in layout.tracks:
        raise ValueError(f"program {program.id!r} has alphanumeric numbers: they go to track 1 "
                         "(tracks 2 and 3 cannot carry letters); add track 1")
    # A test card through every track checks the name, expiry and service code once.
    sample = "1" * max(program.card_length_min, cardwrite.CARD_MIN)
    _tracks(sample, layout)


def _tracks(number: str, layout: Layout) -> tuple[str, str, str]:
    numeric = number.isdigit()
    track1 = track2 = track3 = ""
    if 1 in layout.tracks:
        track1 = cardwrite.encode_track1(number, layout.name, layout.expiry, layout.service_code,
                                         with_lrc=layout.with_lrc)
    if 2 in layout.tracks and numeric:
        track2 = cardwrite.encode_track2(number, layout.expiry, layout.service_code,
                                         with_lrc=layout.with_lrc)
    if 3 in layout.tracks and numeric:
        track3 = cardwrite.encode_track3(number, with_lrc=layout.with_lrc)
    return track1, track2, track3


def card_art(sequence: int, number: str, pin: str, layout: Layout) -> CardArt:
    track1, track2, track3 = _tracks(number, layout)
    return CardArt(sequence, number, pin, track1, track2, track3,
                   cardwrite.code128_payload(number), cardwrite.qr_payload(number))


class BatchError(ValueError):
    """A row of the batch file that cannot be made into a card: says which row and why."""


def read_batch(source: TextIO, program: Program, layout: Layout) -> Iterator[CardArt]:
    """The cards of a batch CSV (a `card` column; `pin` when the program has PINs), checked
    against the program's number rules, one at a time. Nothing is written for a bad batch: the
    caller collects every card before it opens its output (a few hundred bytes a card)."""
    reader = csv.DictReader(source)
    if reader.fieldnames is None or "card" not in reader.fieldnames:
        raise BatchError("line 1: the batch needs a header with a 'card' column "
                         "(the output of `tillgate cards issue --out`)")
    has_pin = "pin" in reader.fieldnames
    if program.pin_required and not has_pin:
        raise BatchError(f"line 1: program {program.id!r} has PINs: the batch needs a 'pin' "
                         "column")
    seen: set[str] = set()
    for sequence, row in enumerate(reader, start=1):
        line = reader.line_num
        number = (row.get("card") or "").strip()
        pin = (row.get("pin") or "").strip() if has_pin else ""
        if not number_fits(program, number):
            raise BatchError(f"line {line}: not a card number of program {program.id!r}")
        if number in seen:
            raise BatchError(f"line {line}: a card that is already in the batch")
        seen.add(number)
        if program.pin_required and not (len(pin) == program.pin_length and pin.isdigit()):
            raise BatchError(f"line {line}: the PIN must be {program.pin_length} digits")
        try:
            yield card_art(sequence, number, pin, layout)
        except ValueError as e:
            raise BatchError(f"line {line}: {e}") from None

"""The manufacturer file and the PIN mailer file of a batch (docs/artwork.md, "Files").

Both are CSV (RFC 4180, UTF-8, a header row, CRLF line ends as the csv module writes them): every
card bureau's job set-up maps named columns, a spreadsheet shows them for a check, and quoting
keeps track 1 intact whatever punctuation its name field holds. The columns below are the
format's contract: new ones are only ever added at the end.

Files that hold PINs are secrets: every file here is created new with mode 0600 (never over an
existing file, whose mode would survive), and a half-written file is removed.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TextIO

from gateway.issuance.artwork import CardArt
from protocols.model import mask_card

PRINTER_COLUMNS = ("sequence", "card", "pin", "track1", "track2", "track3", "code128", "qr")
MAILER_COLUMNS = ("sequence", "card_masked", "last4", "pin")


@contextmanager
def private_file(path: str) -> Iterator[TextIO]:
    """A new text file that only its owner can read (0600); refuses a path that exists, and
    removes what it wrote when the writing fails."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            yield out
    except BaseException:
        os.unlink(path)
        raise


def write_private_bytes(path: str, data: bytes) -> None:
    """`data` into a new 0600 file, as private_file does for text (an encrypted file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except BaseException:
        os.unlink(path)
        raise


def printer_rows(cards: Iterable[CardArt], with_pins: bool) -> Iterator[list[str]]:
    """The manufacturer file's rows, header first; the `pin` column is empty without PINs."""
    yield list(PRINTER_COLUMNS)
    for card in cards:
        yield [str(card.sequence), card.number, card.pin if with_pins else "", card.track1,
               card.track2, card.track3, card.code128, card.qr]


def mailer_rows(cards: Iterable[CardArt]) -> Iterator[list[str]]:
    """The PIN mailer's rows: what matches a sealed mailer to its card (the batch sequence, the
    masked number, its last four) and the PIN; never the whole number, so that a mailer and a
    card stolen apart are each useless."""
    yield list(MAILER_COLUMNS)
    for card in cards:
        yield [str(card.sequence), mask_card(card.number), card.number[-4:], card.pin]


class _Line:
    """A file-like sink for csv.writer that hands back the one line just written."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text = text


def csv_lines(rows: Iterable[list[str]]) -> Iterator[str]:
    """Rows as CSV lines (RFC 4180 quoting, CRLF), lazily: a file of 100,000 cards is written
    line by line, never held whole."""
    line = _Line()
    writer = csv.writer(line)
    for row in rows:
        writer.writerow(row)
        yield line.text

"""Every frame shown in docs/till-integration.md is a good frame of the payload printed above it."""

from __future__ import annotations

import re
from pathlib import Path

import iso8583
import pytest

from protocols.isospec import SPEC_ASCII
from protocols.stxetx import parse_frame
from protocols.tgl import TglFormatError, parse_request, parse_response

DOC = Path(__file__).resolve().parent.parent / "docs" / "till-integration.md"
_HEX_LINE = re.compile(r"^  [0-9a-f]{4}  ((?:[0-9a-f]{2} ?)+)\s+\|")


def shown_frames() -> list[tuple[str, bytes]]:
    """(the text line before a hex dump, the bytes of the dump) for each dump in the doc."""
    frames: list[tuple[str, bytes]] = []
    label, data = "", bytearray()
    for line in DOC.read_text().splitlines() + [""]:
        m = _HEX_LINE.match(line)
        if m:
            data += bytes.fromhex(m.group(1))
            continue
        if data:
            frames.append((label, bytes(data)))
            data = bytearray()
        if "->" in line:
            label = line
    return frames


FRAMES = shown_frames()


def test_the_doc_shows_every_operation():
    ops = {m for label, _ in FRAMES for m in re.findall(r"op=(\w+)", label)}
    assert ops >= {"signon", "echo", "activate", "prevalidate", "reload", "redeem", "refund",
                   "cashout", "balance", "pbalance", "void", "reverse", "transfer", "earn",
                   "padd", "return", "predeem"}


@pytest.mark.parametrize(("label", "data"), FRAMES, ids=range(len(FRAMES)))
def test_shown_frame_is_good(label, data):
    payload = parse_frame(data)
    if "TGL1" not in label:  # the ISO 8583 example
        doc, _ = iso8583.decode(payload, SPEC_ASCII)
        assert (doc["t"], doc["3"], doc["4"]) == ("0200", "006000", "000000001250")
        return
    text = label.split("  ", 1)[1]
    assert payload == text.replace("<FS>", "\x1c").encode()
    if label.startswith("gateway"):
        assert "rc" in parse_response(payload)
        return
    try:
        parse_request(payload, today="20261124")
    except TglFormatError:
        assert "12.50" in text  # the one example of a format error

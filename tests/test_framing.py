"""protocols.framing: every framing kind, fed whole, byte by byte and split at every position."""

from __future__ import annotations

import pytest

from protocols.framing import Deframer, Frame, FramingError, frame, swap_tpdu

MESSAGES = [b"0800822000000000000004000000000000001124030000000001301", b"x", b"0200" * 40]
TPDU = bytes.fromhex("6000120034")


def framed(kind: str) -> bytes:
    tpdu = TPDU if kind == "tpdu" else None
    return b"".join(frame(m, kind, tpdu) for m in MESSAGES)


def expected(kind: str) -> list[Frame]:
    return [Frame(m, TPDU if kind == "tpdu" else None) for m in MESSAGES]


def test_headers():
    assert frame(b"abc", "len2b") == b"\x00\x03abc"
    assert frame(b"abc", "len4a") == b"0003abc"
    assert frame(b"abc", "tpdu", TPDU) == b"\x00\x08" + TPDU + b"abc"


@pytest.mark.parametrize("kind", ["len2b", "len4a", "tpdu"])
def test_whole_stream_in_one_feed(kind):
    assert Deframer(kind).feed(framed(kind)) == expected(kind)


@pytest.mark.parametrize("kind", ["len2b", "len4a", "tpdu"])
def test_byte_by_byte(kind):
    deframer = Deframer(kind)
    frames = []
    for i, byte in enumerate(framed(kind)):
        frames += deframer.feed(bytes([byte]))
        assert deframer.buffered <= i + 1
    assert frames == expected(kind)
    assert deframer.buffered == 0


@pytest.mark.parametrize("kind", ["len2b", "len4a", "tpdu"])
def test_split_at_every_position(kind):
    data = framed(kind)
    for cut in range(len(data) + 1):
        deframer = Deframer(kind)
        assert deframer.feed(data[:cut]) + deframer.feed(data[cut:]) == expected(kind), cut


def test_tpdu_swapped_in_reply():
    deframer = Deframer("tpdu")
    (request,) = deframer.feed(frame(b"0800", "tpdu", TPDU))
    assert request.tpdu == TPDU
    reply = deframer.reply(request, b"0810")
    assert reply == b"\x00\x09" + bytes.fromhex("6000340012") + b"0810"
    assert swap_tpdu(swap_tpdu(TPDU)) == TPDU


@pytest.mark.parametrize("kind", ["len2b", "len4a"])
def test_reply_has_same_framing(kind):
    deframer = Deframer(kind)
    (request,) = deframer.feed(frame(b"0800", kind))
    assert deframer.reply(request, b"0810") == frame(b"0810", kind)


@pytest.mark.parametrize("kind, bad", [
    ("len2b", b"\x00\x00abc"),
    ("len4a", b"0000abc"),
    ("tpdu", b"\x00\x00"),
    ("len4a", b"00a5hello"),
    ("len4a", b" 005hello"),
    ("tpdu", b"\x00\x05" + TPDU),                    # nothing after the TPDU
    ("tpdu", b"\x00\x09" + bytes.fromhex("6100120034") + b"0800"),  # not a TPDU
])
def test_zero_or_garbled_length_is_fatal(kind, bad):
    deframer = Deframer(kind)
    with pytest.raises(FramingError) as info:
        deframer.feed(bad)
    assert info.value.head  # what the caller dumps (masked) into the log
    with pytest.raises(FramingError):  # the stream cannot be resynchronised
        deframer.feed(frame(b"0800", kind, TPDU if kind == "tpdu" else None))


@pytest.mark.parametrize("kind", ["len2b", "len4a", "tpdu"])
def test_oversize(kind):
    deframer = Deframer(kind, max_frame=100)
    tpdu = TPDU if kind == "tpdu" else None
    body_limit = 100 - (5 if kind == "tpdu" else 0)
    assert deframer.feed(frame(b"a" * body_limit, kind, tpdu)) == [Frame(b"a" * body_limit, tpdu)]
    with pytest.raises(FramingError, match="max_frame"):
        header = 4 if kind == "len4a" else 2
        deframer.feed(frame(b"a" * (body_limit + 1), kind, tpdu)[:header])  # refused on the header


def test_frames_before_a_bad_length_are_handed_over():
    data = frame(b"first", "len2b") + b"\x00\x00"
    with pytest.raises(FramingError) as info:
        Deframer("len2b").feed(data)
    assert info.value.frames == [Frame(b"first")]


def test_bad_arguments():
    with pytest.raises(ValueError):
        Deframer("len3x")
    with pytest.raises(ValueError):
        Deframer("len4a", max_frame=10000)
    with pytest.raises(ValueError):
        frame(b"", "len2b")
    with pytest.raises(ValueError):
        frame(b"a" * 10000, "len4a")
    with pytest.raises(ValueError):
        frame(b"abc", "tpdu")
    with pytest.raises(ValueError):
        frame(b"abc", "len2b", TPDU)

"""STX/ETX/LRC codec: frames split at every byte, noise, bad LRC, oversize, the sender's retries.

Expected bytes are written out by hand (or with `_frame`, an independent three-line framer), so
the codec is never checked against itself.
"""

from __future__ import annotations

import construct
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.stxetx import (
    ACK_BYTE,
    FRAME,
    NAK_BYTE,
    Ack,
    BadFrame,
    CancelTimer,
    Frame,
    FrameError,
    GiveUp,
    Nak,
    Noise,
    Oversize,
    Receiver,
    Sender,
    StartTimer,
    Write,
    encode_frame,
    lrc,
    parse_frame,
)

PAYLOAD = b"TGL1\x1cQ\x1cid=1\x1cop=echo\x1cterm=TILL0001\x1cmerch=STORE0000000001"


def _frame(payload: bytes) -> bytes:
    x = 0x03
    for b in payload:
        x ^= b
    return b"\x02" + payload + b"\x03" + bytes([x])


def _frames(events):
    return [e.payload for e in events if isinstance(e, Frame)]


# --- layout --------------------------------------------------------------------------------


def test_lrc_is_xor_of_payload_and_etx():
    # Hand-computed: 'A' ^ 'B' ^ ETX = 0x41 ^ 0x42 ^ 0x03 = 0x00
    assert lrc(b"AB\x03") == 0x00
    assert encode_frame(b"AB") == b"\x02AB\x03\x00"
    assert encode_frame(b"1") == b"\x021\x03\x32"
    assert encode_frame(b"") == b"\x02\x03\x03"


def test_encode_matches_independent_framer():
    assert encode_frame(PAYLOAD) == _frame(PAYLOAD)


@pytest.mark.parametrize("payload", [b"a\x02b", b"a\x03b"])
def test_payload_with_control_byte_cannot_be_framed(payload):
    with pytest.raises(FrameError):
        encode_frame(payload)


def test_payload_over_max_frame_cannot_be_framed():
    with pytest.raises(FrameError):
        encode_frame(b"x" * 65, max_frame=64)


def test_layout_parses_and_rejects_bad_checksum():
    assert FRAME.parse(_frame(b"hello")).payload == b"hello"
    with pytest.raises(construct.ChecksumError):
        FRAME.parse(b"\x02hello\x03\x00")


def test_parse_frame():
    assert parse_frame(_frame(b"hello")) == b"hello"
    for bad in (b"\x02hello\x03\x00", b"hello", _frame(b"a") + b"x", b"\x02abc"):
        with pytest.raises(FrameError):
            parse_frame(bad)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200).map(lambda b: b.replace(b"\x02", b"").replace(b"\x03", b"")))
def test_hand_written_framer_is_the_declared_layout(payload):
    assert encode_frame(payload) == FRAME.build({"payload": payload}) == _frame(payload)
    assert FRAME.parse(encode_frame(payload)).payload == payload
    assert Receiver().feed(encode_frame(payload)) == [Frame(payload)]


# --- receiver ------------------------------------------------------------------------------


def test_one_frame_whole():
    assert Receiver().feed(_frame(PAYLOAD)) == [Frame(PAYLOAD)]


def test_frame_at_every_split():
    data = _frame(PAYLOAD) + _frame(b"second")
    for cut in range(len(data) + 1):
        rx = Receiver()
        events = rx.feed(data[:cut]) + rx.feed(data[cut:])
        assert _frames(events) == [PAYLOAD, b"second"], cut
        assert all(isinstance(e, Frame) for e in events)


def test_frame_byte_by_byte():
    rx = Receiver()
    events = []
    for b in _frame(PAYLOAD):
        events += rx.feed(bytes([b]))
    assert events == [Frame(PAYLOAD)]


def test_noise_between_frames_is_skipped_and_reported():
    data = b"\r\nATZ\x00" + _frame(b"one") + b"\xff\x7f" + _frame(b"two") + b"junk"
    events = Receiver().feed(data)
    assert events == [Noise(b"\r\nATZ\x00"), Frame(b"one"), Noise(b"\xff\x7f"), Frame(b"two"),
                      Noise(b"junk")]


def test_control_bytes_between_frames():
    events = Receiver().feed(ACK_BYTE + _frame(b"x") + NAK_BYTE)
    assert events == [Ack(), Frame(b"x"), Nak()]


def test_ack_and_nak_bytes_inside_a_frame_are_payload():
    payload = b"a\x06b\x15c"
    assert Receiver().feed(_frame(payload)) == [Frame(payload)]


def test_bad_lrc_then_good_retransmission():
    good = _frame(b"redeem")
    bad = good[:-1] + bytes([good[-1] ^ 0x01])
    rx = Receiver()
    assert rx.feed(bad) == [BadFrame(b"redeem", expected=good[-1], got=good[-1] ^ 0x01)]
    # The retransmission after our NAK is a first good frame, not a repeat.
    assert rx.feed(good) == [Frame(b"redeem", repeat=False)]


def test_identical_frame_after_good_one_is_marked_repeat():
    rx = Receiver()
    assert rx.feed(_frame(b"p")) == [Frame(b"p")]
    assert rx.feed(_frame(b"p")) == [Frame(b"p", repeat=True)]
    assert rx.feed(_frame(b"q")) == [Frame(b"q")]
    assert rx.feed(_frame(b"p")) == [Frame(b"p")]


def test_new_stx_inside_frame_restarts():
    data = b"\x02cut sho" + _frame(b"whole")
    events = Receiver().feed(data)
    assert events == [Noise(b"\x02cut sho", truncated=True), Frame(b"whole")]


def test_oversize_frame_is_reported_once_and_stream_resyncs():
    rx = Receiver(max_frame=8)
    events = rx.feed(b"\x02" + b"y" * 20)
    assert events == [Oversize(9), Noise(b"y" * 11)]
    events = rx.feed(b"yy\x03\x00" + _frame(b"ok"))
    assert _frames(events) == [b"ok"]
    assert not any(isinstance(e, Oversize) for e in events)


def test_payload_of_exactly_max_frame_is_accepted():
    assert Receiver(max_frame=8).feed(_frame(b"12345678")) == [Frame(b"12345678")]


@settings(max_examples=150, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\x02", b"").replace(
        b"\x03", b"")), min_size=1, max_size=5),
    noise=st.lists(st.binary(max_size=6).map(
        lambda b: bytes(c for c in b if c not in (0x02, 0x06, 0x15))), min_size=6, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_any_split_with_noise_yields_the_frames(payloads, noise, cuts):
    data = b"".join(noise[i] + _frame(p) for i, p in enumerate(payloads)) + noise[-1]
    rx = Receiver()
    events = []
    start = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        events += rx.feed(data[start:cut])
        start = cut
    assert _frames(events) == payloads
    assert not any(isinstance(e, (BadFrame, Oversize)) for e in events)


# --- sender --------------------------------------------------------------------------------


def test_sender_writes_and_waits_for_ack():
    tx = Sender(retries=3, interval=3.0)
    assert tx.send(b"r1") == [Write(_frame(b"r1")), StartTimer(3.0)]
    assert tx.waiting
    assert tx.ack_received() == [CancelTimer()]
    assert not tx.waiting


def test_sender_queues_while_waiting():
    tx = Sender()
    tx.send(b"r1")
    assert tx.send(b"r2") == []
    assert tx.queued == 1
    assert tx.ack_received() == [CancelTimer(), Write(_frame(b"r2")), StartTimer(3.0)]
    assert tx.ack_received() == [CancelTimer()]


def test_sender_retransmits_on_nak_and_timeout_then_gives_up():
    tx = Sender(retries=3, interval=2.0)
    tx.send(b"r1")
    frame = _frame(b"r1")
    assert tx.nak_received() == [Write(frame), StartTimer(2.0)]
    assert tx.timeout() == [Write(frame), StartTimer(2.0)]
    assert tx.timeout() == [Write(frame), StartTimer(2.0)]
    # Three retransmissions done: the next silence gives up, and the queue moves on.
    tx.send(b"r2")
    assert tx.timeout() == [CancelTimer(), GiveUp(b"r1", 4), Write(_frame(b"r2")), StartTimer(2.0)]
    assert tx.retransmissions == 3
    assert tx.given_up == 1


def test_sender_with_zero_retries_gives_up_at_first_silence():
    tx = Sender(retries=0)
    tx.send(b"r1")
    assert tx.timeout() == [CancelTimer(), GiveUp(b"r1", 1)]


def test_stray_ack_nak_and_timeout_do_nothing():
    tx = Sender()
    assert tx.ack_received() == []
    assert tx.nak_received() == []
    assert tx.timeout() == []


def test_sender_without_ack_just_writes():
    tx = Sender(ack=False)
    assert tx.send(b"r1") == [Write(_frame(b"r1"))]
    assert tx.send(b"r2") == [Write(_frame(b"r2"))]
    assert not tx.waiting


def test_sender_refuses_unframeable_payload_at_send():
    tx = Sender()
    with pytest.raises(FrameError):
        tx.send(b"bad\x03")
    assert not tx.waiting

"""The line protocol on a StringTransport and a MemoryReactorClock: ACK/NAK, retries, joins.

The processor here is scripted (each submit returns a Deferred the test fires), because these
tests are about the line: what is ACKed, what is submitted how often, what is written when. The
same behaviours run end to end against the real Processor and redis-server in test_line_tcp.py
and test_line_serial.py.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock, StringTransport

from gateway.config.model import load_config
from gateway.listeners.line_protocol import LineEndpoint
from protocols.model import Request, Result

CONFIG = load_config("config/tillgate.toml")
LINE = next(lst for lst in CONFIG.listeners if lst.protocol == "line")
GIFT = "6039530000000000006"

ACK, NAK = b"\x06", b"\x15"


def frame(payload: bytes) -> bytes:
    x = 0x03
    for b in payload:
        x ^= b
    return b"\x02" + payload + b"\x03" + bytes([x])


def tgl(seq: str, op: str = "redeem", **extra: str) -> bytes:
    fields = {"id": seq, "op": op, "term": "TILL0001", "merch": "STORE0000000001", "card": GIFT,
              "amt": "100", **extra}
    return b"\x1c".join([b"TGL1", b"Q", *(f"{k}={v}".encode() for k, v in fields.items())])


def response(seq: str | None, rc: str, **extra: str) -> bytes:
    fields = ([f"id={seq}"] if seq else []) + [f"rc={rc}"] + [f"{k}={v}" for k, v in extra.items()]
    return frame(b"\x1c".join([b"TGL1", b"R", *(f.encode() for f in fields)]))


class ScriptedProcessor:
    def __init__(self):
        self.submitted: list[tuple[Request, Deferred]] = []

    def submit(self, request: Request) -> Deferred:
        d: Deferred = Deferred()
        self.submitted.append((request, d))
        return d


class Line:
    """One connection: the protocol on a StringTransport, and what it wrote since last asked."""

    def __init__(self, **listener_overrides):
        self.clock = MemoryReactorClock()
        self.clock.advance(1_795_000_000)  # 2026-11-18 UTC
        self.processor = ScriptedProcessor()
        listener = dataclasses.replace(LINE, **listener_overrides)
        self.endpoint = LineEndpoint(self.clock, listener, self.processor, CONFIG)
        self.proto = self.endpoint.build_protocol()
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)

    def feed(self, data: bytes) -> None:
        self.proto.dataReceived(data)

    def written(self) -> bytes:
        out = self.transport.value()
        self.transport.clear()
        return out

    def answer(self, i: int, result: Result) -> None:
        self.processor.submitted[i][1].callback(result)


def test_good_frame_is_acked_submitted_and_answered():
    line = Line()
    line.feed(frame(tgl("1")))
    assert line.written() == ACK
    [(request, _)] = line.processor.submitted
    assert request.key == "L:TILL0001:STORE0000000001:1:20261118"
    assert (request.card, request.amount, request.channel) == (GIFT, 100, "tgl")
    assert request.source == "192.168.1.1:54321"  # StringTransport's peer
    line.answer(0, Result("00", amount=100, balance=900, auth_id="123456"))
    assert line.written() == response("1", "00", auth="123456", amt="100", bal="900")
    line.feed(ACK)
    line.clock.advance(60)
    assert line.written() == b""


def test_frame_fed_byte_by_byte():
    line = Line()
    for b in frame(tgl("2")):
        line.feed(bytes([b]))
    assert line.written() == ACK
    assert len(line.processor.submitted) == 1


def test_bad_lrc_is_naked_and_the_retransmission_accepted_once(caplog):
    line = Line()
    good = frame(tgl("3"))
    with caplog.at_level(logging.WARNING):
        line.feed(good[:-1] + bytes([good[-1] ^ 0xFF]))
    assert line.written() == NAK
    assert line.processor.submitted == []
    assert "bad LRC" in caplog.text and GIFT not in caplog.text
    line.feed(good)
    assert line.written() == ACK
    assert len(line.processor.submitted) == 1
    assert line.proto.counts["bad_lrc"] == 1


def test_noise_between_frames_is_skipped():
    line = Line()
    line.feed(b"\r\n\xff" + frame(tgl("4")) + b"\x00garbage" + frame(tgl("5")))
    assert line.written() == ACK + ACK
    assert [r.key.split(":")[3] for r, _ in line.processor.submitted] == ["4", "5"]
    assert line.proto.counts["noise_bytes"] == 11


def test_retransmission_while_in_flight_joins_the_first():
    line = Line()
    line.feed(frame(tgl("6")))
    line.feed(frame(tgl("6")))  # the till missed our ACK
    assert line.written() == ACK + ACK
    assert len(line.processor.submitted) == 1
    line.answer(0, Result("00", amount=100, balance=900))
    assert line.written() == response("6", "00", amt="100", bal="900")
    assert line.proto.counts["joined"] == 1


def test_retransmission_after_the_answer_is_resubmitted_for_the_ledger_to_repeat():
    line = Line()
    line.feed(frame(tgl("7")))
    line.answer(0, Result("00"))
    line.feed(ACK)
    line.feed(frame(tgl("7")))
    assert len(line.processor.submitted) == 2
    first, second = (r for r, _ in line.processor.submitted)
    assert (first.key, first.fingerprint()) == (second.key, second.fingerprint())


def test_unacknowledged_response_is_retried_then_given_up(caplog):
    line = Line(retries=3, retry_interval=3.0)
    line.feed(frame(tgl("8")))
    line.written()
    line.answer(0, Result("00"))
    sent = response("8", "00")
    assert line.written() == sent
    for _ in range(3):
        line.clock.advance(2.9)
        assert line.written() == b""
        line.clock.advance(0.1)
        assert line.written() == sent
    with caplog.at_level(logging.WARNING):
        line.clock.advance(3)
    assert line.written() == b""
    assert "given up" in caplog.text
    assert line.proto.counts["retransmitted"] == 3
    assert line.proto.counts["given_up"] == 1
    line.clock.advance(30)
    assert line.written() == b""


def test_nak_of_a_response_retransmits_at_once():
    line = Line()
    line.feed(frame(tgl("9")))
    line.written()
    line.answer(0, Result("51"))
    sent = line.written()
    line.feed(NAK)
    assert line.written() == sent
    line.feed(ACK)
    line.clock.advance(10)
    assert line.written() == b""


def test_responses_wait_their_turn_stop_and_wait():
    line = Line()
    line.feed(frame(tgl("10")) + frame(tgl("11")))
    line.written()
    line.answer(1, Result("00"))  # the second finishes first
    line.answer(0, Result("05"))
    assert line.written() == response("11", "00")
    line.feed(ACK)
    assert line.written() == response("10", "05")


def test_ack_off_no_handshake_bad_frames_dropped():
    line = Line(ack=False)
    good = frame(tgl("12"))
    line.feed(good[:-1] + b"\x00" + good)
    assert line.written() == b""
    assert len(line.processor.submitted) == 1
    line.answer(0, Result("00"))
    assert line.written() == response("12", "00")
    line.clock.advance(60)
    assert line.written() == b""


def test_format_error_answers_30_with_the_id():
    line = Line()
    line.feed(frame(tgl("13", amt="12.50")))
    assert line.written() == ACK + response("13", "30")
    assert line.processor.submitted == []


def test_processor_failure_answers_96():
    line = Line()
    line.feed(frame(tgl("14")))
    line.processor.submitted[0][1].errback(RuntimeError("boom"))
    assert line.written() == ACK + response("14", "96")
    assert line.endpoint.in_flight == 0


def test_load_shed_answers_91():
    line = Line(max_in_flight=1)
    line.feed(frame(tgl("15")) + frame(tgl("16")))
    assert line.written() == ACK + ACK + response("16", "91")
    assert len(line.processor.submitted) == 1


def test_oversize_frame_closes_the_connection():
    line = Line(max_frame=64)
    line.feed(b"\x02" + b"x" * 100)
    assert line.transport.disconnecting
    assert line.processor.submitted == []


def test_idle_connection_is_closed():
    line = Line(idle_timeout=30)
    line.clock.advance(29)
    line.feed(frame(tgl("17", op="echo")))
    line.clock.advance(29)
    assert not line.transport.disconnecting
    line.clock.advance(2)
    assert line.transport.disconnecting


def test_answer_after_the_line_is_gone_is_dropped():
    line = Line()
    line.feed(frame(tgl("18")))
    line.written()
    line.proto.connectionLost(None)
    line.answer(0, Result("00"))
    assert line.written() == b""
    assert line.endpoint.in_flight == 0


@pytest.mark.parametrize("cut", range(1, 20))
def test_two_frames_split_anywhere(cut):
    line = Line()
    data = frame(tgl("20")) + frame(tgl("21"))
    line.feed(data[:cut])
    line.feed(data[cut:])
    assert [r.key.split(":")[3] for r, _ in line.processor.submitted] == ["20", "21"]

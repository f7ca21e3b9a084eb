"""Faults a scenario step can inject: what real tills and lines do wrong (HOST-SPEC 1, 2.6).

Each fault sends the step's request in a damaged or unusual way and returns a `FaultOutcome`:
the exchange whose reply the step's `expect` is checked against, whether the gateway closed
the connection, and problems found on the way (a retransmission answered differently). After
a fault that closes the connection the till is reconnected, so the next step starts clean.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.sim.links import LengthChannel, LinkClosed, StxEtxChannel
from gateway.sim.messages import Call, Exchange
from gateway.sim.till import Till
from protocols.model import Op

CLOSE_WAIT = 2.0  # seconds to wait for the gateway to close a connection it cannot read
SLOW_CHUNK = 3  # bytes per write of a slow line
SLOW_PAUSE = 0.02  # seconds between them
SLOW_READ_DELAY = 0.5  # seconds the slow till waits before it reads the answer


@dataclass
class FaultOutcome:
    exchange: Exchange | None  # the exchange `expect` applies to
    original: Exchange | None = None  # the step's own request, when `exchange` is another
    closed: bool = False
    problems: list[str] = field(default_factory=list)
    note: str = ""


def drop_response(till: Till, call: Call, same_as: Exchange | None) -> FaultOutcome:
    """Send, ignore the answer as a till that timed out, then reverse (HOST-SPEC 2.6)."""
    sent = till.submit(till.prepare(call))
    reversal = till.request(Call(Op.REVERSAL, card=call.card, amount=call.amount,
                                 original=sent))
    return FaultOutcome(reversal, original=sent, note="response dropped, reversal sent")


def retransmit(till: Till, call: Call, same_as: Exchange | None) -> FaultOutcome:
    """The same bytes twice (a till that missed the answer): both answers must agree."""
    first = till.request(call)
    again = till.retransmit(first)
    problems = []
    a, b = first.reply, again.reply
    if a is None or b is None or (a.rc, a.auth, a.balance) != (b.rc, b.auth, b.balance):
        problems.append("the retransmission was answered differently: "
                        f"{a and (a.rc, a.auth, a.balance)} then {b and (b.rc, b.auth, b.balance)}")
    return FaultOutcome(first, problems=problems, note="retransmitted, same answer")


def duplicate_stan(till: Till, call: Call, same_as: Exchange | None) -> FaultOutcome:
    """Another request under an earlier step's request key (STAN and field 7, or TGL/1 id)."""
    assert same_as is not None
    exchange = till.prepare(call, seq=same_as.seq)
    for key in ("7", "12", "13"):
        if key in same_as.request and key in exchange.request:
            exchange.request[key] = same_as.request[key]
    till.submit(exchange)
    till.wait(exchange)
    return FaultOutcome(exchange, note=f"reused {same_as.seq}")


def _await_close(till: Till) -> bool:
    deadline = time.monotonic() + CLOSE_WAIT
    try:
        while time.monotonic() < deadline:
            till.link.receive(max(deadline - time.monotonic(), 0.01))
    except LinkClosed:
        return True
    except TimeoutError:
        return False
    return False


def _after_close(till: Till, closed: bool) -> None:
    if closed:
        till.reconnect()


def bad_length(till: Till, call: Call, same_as: Exchange | None) -> FaultOutcome:
    """A length header the gateway cannot use (zero, or letters for len4a); on STX/ETX lines
    a frame with a wrong LRC, which must be NAKed."""
    exchange = till.prepare(call)
    payload = till.dialect.encode(exchange.request)
    link = till.link
    if isinstance(link, StxEtxChannel):
        framed = bytearray(link.frame(payload))
        framed[-1] ^= 0xFF
        naks = link.naks
        link.send_raw(bytes(framed))
        deadline = time.monotonic() + CLOSE_WAIT
        while link.naks == naks and time.monotonic() < deadline:
            try:
                link.pump(0.05)
            except TimeoutError:
                pass
        problems = [] if (link.naks > naks or not link.ack) else ["the bad frame was not NAKed"]
        return FaultOutcome(None, problems=problems, note="bad LRC, NAKed")
    assert isinstance(link, LengthChannel)
    header = b"ABCD" if link.framing == "len4a" else b"\x00\x00"
    link.send_raw(header + payload)
    closed = _await_close(till)
    _after_close(till, closed)
    return FaultOutcome(None, closed=closed, note="zero/garbled length")


def garbage(till: Till, call: Call, same_as: Exchange | None) -> FaultOutcome:
    """Bytes that are no message (seeded, so a failure can be replayed)."""
    rng = random.Random(8583)
    # No STX/ETX/ACK/NAK among them: on lines they are noise between frames; on length
    # framings the first two bytes (0xF0..0xFF) make a length above any max_frame.
    noise = bytes(rng.randrange(0xF0, 0x100) for _ in range(2))
    noise += bytes(rng.choice(b"GARBAGE-%&*#@!~") for _ in range(30))
    till.link.send_raw(noise)
    if isinstance(till.link, StxEtxChannel):
        answered = till.request(call)  # the line must still work after the noise
        return FaultOutcome(answered, note="noise then a good frame")
    closed = _await_close(till)
    _after_close(till, closed)
    return FaultOutcome(None, closed=closed, note=f"{len(noise)} garbage bytes")


def slow_reader(till: Till, call: Call, same_as: Exchange | None) -> FaultOutcome:
    """The request trickles in a few bytes at a time (a slow card reader or modem), and the
    till reads its answer late."""
    exchange = till.prepare(call)
    framed = till.link.frame(till.dialect.encode(exchange.request))
    exchange.seconds = time.perf_counter()
    for i in range(0, len(framed), SLOW_CHUNK):
        till.link.send_raw(framed[i:i + SLOW_CHUNK])
        time.sleep(SLOW_PAUSE)
    if isinstance(till.link, StxEtxChannel) and till.link.ack:
        if till.link.await_control(till.link.interval) != "ack":
            return FaultOutcome(exchange, problems=["the trickled frame was not ACKed"])
    time.sleep(SLOW_READ_DELAY)
    till.wait(exchange)
    return FaultOutcome(exchange, note=f"{len(framed)} bytes in {SLOW_CHUNK}-byte writes")


FAULTS: dict[str, Callable[[Till, Call, Exchange | None], FaultOutcome]] = {
    "drop_response": drop_response,
    "retransmit": retransmit,
    "duplicate_stan": duplicate_stan,
    "bad_length": bad_length,
    "garbage": garbage,
    "slow_reader": slow_reader,
}


def run_fault(name: str, till: Till, call: Call, *, same_as: Exchange | None = None
              ) -> FaultOutcome:
    return FAULTS[name](till, call, same_as)

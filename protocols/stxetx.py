"""STX/ETX/LRC framing with ACK/NAK (HOST-SPEC 1), sans-IO: no transport, no clock, no Twisted.

Frame on the wire::

    STX(0x02) payload ETX(0x03) LRC        LRC = XOR of every byte after STX up to and including ETX

The payload may hold any byte but STX and ETX (there is no escaping in this family of protocols:
TGL/1 is printable ASCII and ISO 8583 over serial uses an ASCII bitmap). `max_frame` bounds the
payload length.

Two state machines, each fed from outside:

- `Receiver.feed(data)` turns bytes, split anywhere, into events: `Frame` (good LRC: answer ACK),
  `BadFrame` (bad LRC: answer NAK), `Ack` / `Nak` (control bytes between frames), `Noise` (bytes
  between frames that are none of these, reported once per run) and `Oversize` (a payload longer
  than `max_frame`; HOST-SPEC 1 says the connection is then closed). An STX inside a frame means
  the previous frame was cut short (a till reset mid-frame): it is reported as `Noise` and the new
  frame starts there, so one lost ETX costs one frame, never the stream.
- `Sender` is stop-and-wait: one frame awaits its ACK at a time (an ACK names no frame, so two
  could not be told apart); later payloads queue. Its timers are driven from outside: each call
  returns a list of actions (`Write`, `StartTimer`, `CancelTimer`, `GiveUp`) that the transport
  carries out, and the transport calls `Sender.timeout()` when a started timer fires. A NAK causes
  an immediate retransmission, silence one after `interval` seconds; after `retries`
  retransmissions the frame is given up (`GiveUp`, to be logged) and the next queued one is sent.
  With `ack=False` frames are written as they come and nothing is awaited.

Retransmissions received ("accepted once"): when a till misses our ACK it sends the same frame
again. `Receiver` marks a good frame whose payload equals the previous good frame's with
`Frame.repeat=True` and still ACKs and delivers it; it is the line layer that decides what a
repeat means (gateway/listeners/line_protocol.py joins it to the request still in flight, and
otherwise resubmits it, which the ledger answers from its idempotency record without changing
anything).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import xor

from construct import (
    Checksum,
    Const,
    ConstructError,
    GreedyBytes,
    Int8ub,
    NullTerminated,
    Struct,
    this,
)

STX = 0x02
ETX = 0x03
ACK = 0x06
NAK = 0x15

ACK_BYTE = b"\x06"
NAK_BYTE = b"\x15"
_STX_BYTE = b"\x02"
_ETX_BYTE = b"\x03"

DEFAULT_MAX_FRAME = 4096


def lrc(data: bytes) -> int:
    """XOR of every byte of `data` (pass payload + ETX for a frame's LRC)."""
    return reduce(xor, data, 0)


# The frame layout, declared once. NullTerminated reads the payload up to ETX and consumes ETX;
# the checksum covers payload + ETX, as the LRC definition says. `parse_frame` and the tests use
# it; the hot paths (encode_frame, Receiver) are hand-written twins proven identical to it.
FRAME = Struct(
    "stx" / Const(_STX_BYTE),
    "payload" / NullTerminated(GreedyBytes, term=_ETX_BYTE),
    "lrc" / Checksum(Int8ub, lambda data: lrc(data + _ETX_BYTE), this.payload),
)


class FrameError(ValueError):
    """A payload that cannot be framed (it holds STX or ETX, or is too long), or bytes that are
    not one whole good frame (parse_frame)."""


def parse_frame(data: bytes) -> bytes:
    """The payload of exactly one whole frame, through the declared layout; FrameError if not."""
    try:
        parsed = FRAME.parse(data)
    except ConstructError as e:
        raise FrameError(f"not a good frame: {e}") from None
    if len(parsed.payload) + 3 != len(data):  # STX, ETX and LRC around the payload
        raise FrameError("bytes after the frame")
    return parsed.payload


def encode_frame(payload: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """STX payload ETX LRC. Raises FrameError for a payload the receiver could not take back."""
    if _STX_BYTE in payload or _ETX_BYTE in payload:
        raise FrameError("payload holds STX or ETX, which cannot be framed")
    if len(payload) > max_frame:
        raise FrameError(f"payload of {len(payload)} bytes exceeds max_frame {max_frame}")
    # Built by hand: byte-identical to FRAME.build (tests/test_stxetx.py proves it), at 4 us
    # instead of construct's 28 us per response (bench/bench_line.py).
    return b"\x02" + payload + bytes([ETX, lrc(payload) ^ ETX])


# --- receiver -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    payload: bytes
    repeat: bool = False  # same payload as the previous good frame: a till's retransmission


@dataclass(frozen=True, slots=True)
class BadFrame:
    payload: bytes
    expected: int  # LRC computed over what arrived
    got: int  # LRC byte the sender put


@dataclass(frozen=True, slots=True)
class Ack:
    pass


@dataclass(frozen=True, slots=True)
class Nak:
    pass


@dataclass(frozen=True, slots=True)
class Noise:
    data: bytes  # bytes skipped between frames, or a frame cut short by a new STX
    truncated: bool = False  # True when `data` was the start of a frame that never ended


@dataclass(frozen=True, slots=True)
class Oversize:
    length: int  # payload bytes seen so far, more than max_frame


Event = Frame | BadFrame | Ack | Nak | Noise | Oversize

_HUNT, _PAYLOAD, _LRC = range(3)
_CONTROL: dict[int, Event] = {ACK: Ack(), NAK: Nak()}


class Receiver:
    """Bytes in, events out. Keeps at most `max_frame` bytes of a frame in progress."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME):
        self.max_frame = max_frame
        self._state = _HUNT
        self._buf = bytearray()  # payload so far, or noise run while hunting
        self._last_good: bytes | None = None

    @property
    def in_frame(self) -> bool:
        """True between a frame's STX and its LRC: a frame has begun and not ended."""
        return self._state != _HUNT

    def abandon(self) -> bytes:
        """Drop the frame in progress (one that took too long); returns what it held."""
        payload = bytes(self._buf) if self._state != _HUNT else b""
        if self._state != _HUNT:
            self._buf.clear()
            self._state = _HUNT
        return payload

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        i, n = 0, len(data)
        while i < n:
            if self._state == _HUNT:
                i = self._hunt(data, i, events)
            elif self._state == _PAYLOAD:
                i = self._payload(data, i, events)
            else:
                self._check(data[i], events)
                i += 1
        if self._state == _HUNT and self._buf:
            events.append(Noise(bytes(self._buf)))
            self._buf.clear()
        return events

    def _hunt(self, data: bytes, i: int, events: list[Event]) -> int:
        # Scan for the next byte that means something between frames; the rest is noise.
        j = i
        n = len(data)
        while j < n and data[j] not in (STX, ACK, NAK):
            j += 1
        self._buf += data[i:j]
        if j == n:
            return n
        if self._buf:
            events.append(Noise(bytes(self._buf)))
            self._buf.clear()
        if data[j] == STX:
            self._state = _PAYLOAD
        else:
            events.append(_CONTROL[data[j]])
        return j + 1

    def _payload(self, data: bytes, i: int, events: list[Event]) -> int:
        end = data.find(_ETX_BYTE, i)
        restart = data.find(_STX_BYTE, i, end if end >= 0 else len(data))
        if restart >= 0:
            # A new frame began before this one ended: report the stub, start over.
            self._buf += data[i:restart]
            events.append(Noise(_STX_BYTE + bytes(self._buf), truncated=True))
            self._buf.clear()
            return restart + 1
        stop = end if end >= 0 else len(data)
        # Never hold more than max_frame + 1 bytes, however large the chunk.
        stop = min(stop, i + self.max_frame + 1 - len(self._buf))
        self._buf += data[i:stop]
        if len(self._buf) > self.max_frame:
            events.append(Oversize(len(self._buf)))
            self._buf.clear()
            self._state = _HUNT
            # Whatever is left of this frame is skipped as noise up to the next STX.
            return stop
        if end >= 0:
            self._state = _LRC
            return end + 1
        return stop

    def _check(self, got: int, events: list[Event]) -> None:
        payload = bytes(self._buf)
        self._buf.clear()
        self._state = _HUNT
        expected = lrc(payload) ^ ETX
        if got != expected:
            events.append(BadFrame(payload, expected, got))
            return
        events.append(Frame(payload, repeat=payload == self._last_good))
        self._last_good = payload


# --- sender ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Write:
    data: bytes


@dataclass(frozen=True, slots=True)
class StartTimer:
    seconds: float  # replaces any timer already running


@dataclass(frozen=True, slots=True)
class CancelTimer:
    pass


@dataclass(frozen=True, slots=True)
class GiveUp:
    payload: bytes
    attempts: int  # how many times the frame went out


Action = Write | StartTimer | CancelTimer | GiveUp


class Sender:
    """Stop-and-wait sender of frames. See the module docstring for the action contract."""

    def __init__(self, *, ack: bool = True, retries: int = 3, interval: float = 3.0,
                 max_frame: int = DEFAULT_MAX_FRAME):
        self.ack = ack
        self.retries = retries
        self.interval = interval
        self.max_frame = max_frame
        self._queue: list[tuple[bytes, bytes]] = []  # (payload, frame) waiting for the line
        self._head = 0
        self._current: bytes | None = None  # framed bytes awaiting ACK
        self._current_payload = b""
        self._attempts = 0
        self.retransmissions = 0  # counters, for metrics
        self.given_up = 0

    @property
    def waiting(self) -> bool:
        """True while a frame awaits its ACK."""
        return self._current is not None

    @property
    def queued(self) -> int:
        return len(self._queue) - self._head

    def send(self, payload: bytes) -> list[Action]:
        frame = encode_frame(payload, self.max_frame)  # raises here, not when dequeued
        if not self.ack:
            return [Write(frame)]
        self._queue.append((payload, frame))
        if self._current is not None:
            return []
        return self._next()

    def ack_received(self) -> list[Action]:
        if self._current is None:
            return []  # a stray ACK (a late one for a frame already given up): nothing to do
        self._current = None
        return [CancelTimer(), *self._next()]

    def nak_received(self) -> list[Action]:
        if self._current is None:
            return []
        return self._retry()

    def timeout(self) -> list[Action]:
        if self._current is None:
            return []
        return self._retry()

    def _retry(self) -> list[Action]:
        # NAK and silence are answered alike: the frame goes out again now, and the timer restarts.
        assert self._current is not None
        if self._attempts > self.retries:
            payload, attempts = self._current_payload, self._attempts
            self._current = None
            self.given_up += 1
            return [CancelTimer(), GiveUp(payload, attempts), *self._next()]
        self._attempts += 1
        self.retransmissions += 1
        return [Write(self._current), StartTimer(self.interval)]

    def _next(self) -> list[Action]:
        if self._head == len(self._queue):
            self._queue.clear()
            self._head = 0
            return []
        self._current_payload, self._current = self._queue[self._head]
        self._queue[self._head] = (b"", b"")  # let the bytes go while the list is drained
        self._head += 1
        self._attempts = 1
        return [Write(self._current), StartTimer(self.interval)]

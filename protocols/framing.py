"""Sans-IO length framing for ISO 8583 over TCP (HOST-SPEC 1): `len2b`, `len4a` and `tpdu`.

A listener's protocol feeds whatever bytes arrive to a `Deframer` and gets back whole frames; it
writes replies with `Deframer.reply`, which frames them the same way (for `tpdu`, with the
request's TPDU source and destination swapped). Modelled on Twisted's `Int16StringReceiver`, but
without Twisted, so the same code serves the simulator and tests.

- `len2b`: 2-byte unsigned big-endian length, not counting itself, then the message.
- `len4a`: 4 ASCII digits of length, then the message.
- `tpdu`:  a `len2b` length, then a 5-byte TPDU `60 DDDD SSSS` (destination, source), then the
           message; the length counts the TPDU.

A zero or garbled length, or one above `max_frame` (the length value as sent, so it includes a
TPDU), cannot be resynchronised: `feed` raises `FramingError` and the caller closes the
connection. After that the deframer stays broken.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KINDS", "Deframer", "Frame", "FramingError", "TPDU_ID", "frame", "swap_tpdu"]

KINDS = ("len2b", "len4a", "tpdu")
TPDU_ID = 0x60
TPDU_LEN = 5
DEFAULT_MAX_FRAME = 4096
_HEADER_LEN = {"len2b": 2, "len4a": 4, "tpdu": 2}
_LIMIT = {"len2b": 0xFFFF, "len4a": 9999, "tpdu": 0xFFFF}


class FramingError(ValueError):
    """The stream cannot be split into frames any more; close the connection.

    `head` holds the bad length header (with the TPDU, for `tpdu`) and nothing after it, for
    the log: once framing is lost nobody can say where a message, or its PIN block, starts;
    `frames` the whole frames that arrived before it in the same `feed` (the caller may still
    answer them before it closes).
    """

    def __init__(self, reason: str, head: bytes = b""):
        super().__init__(reason)
        self.reason = reason
        self.head = head
        self.frames: list[Frame] = []


@dataclass(frozen=True, slots=True)
class Frame:
    """One message: `payload` is the ISO 8583 message, `tpdu` the 5 TPDU bytes (tpdu framing)."""

    payload: bytes
    tpdu: bytes | None = None


def _check_kind(kind: str) -> None:
    if kind not in _HEADER_LEN:
        raise ValueError(f"framing must be one of {', '.join(KINDS)}, not {kind!r}")


def swap_tpdu(tpdu: bytes) -> bytes:
    """The reply TPDU: source and destination exchanged (60 DDDD SSSS -> 60 SSSS DDDD)."""
    if len(tpdu) != TPDU_LEN:
        raise ValueError(f"a TPDU is {TPDU_LEN} bytes, not {len(tpdu)}")
    return tpdu[:1] + tpdu[3:5] + tpdu[1:3]


def frame(payload: bytes, kind: str = "len2b", tpdu: bytes | None = None) -> bytes:
    """Frame one message for sending. For `tpdu`, `tpdu` is written as given (see `swap_tpdu`)."""
    _check_kind(kind)
    body = payload
    if kind == "tpdu":
        if tpdu is None or len(tpdu) != TPDU_LEN:
            raise ValueError("tpdu framing needs a 5-byte TPDU")
        body = bytes(tpdu) + payload
    elif tpdu is not None:
        raise ValueError(f"{kind} framing has no TPDU")
    size = len(body)
    if size == 0 or size > _LIMIT[kind]:
        raise ValueError(f"a {kind} frame carries 1 to {_LIMIT[kind]} bytes, not {size}")
    if kind == "len4a":
        return b"%04d" % size + body
    return size.to_bytes(2, "big") + body


class Deframer:
    """Splits a byte stream into `Frame`s. One per connection; not thread-safe."""

    __slots__ = ("kind", "max_frame", "_buffer", "_broken", "_header_len")

    def __init__(self, kind: str = "len2b", max_frame: int = DEFAULT_MAX_FRAME):
        _check_kind(kind)
        if not 1 <= max_frame <= _LIMIT[kind]:
            raise ValueError(f"max_frame for {kind} must be 1..{_LIMIT[kind]}, not {max_frame}")
        self.kind = kind
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._broken: FramingError | None = None
        self._header_len = _HEADER_LEN[kind]

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a whole frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Take the bytes that arrived; return every frame they complete (possibly none)."""
        if self._broken is not None:
            raise FramingError(self._broken.reason, self._broken.head)
        buf = self._buffer
        buf += data
        frames: list[Frame] = []
        pos = 0
        header_len = self._header_len
        try:
            while len(buf) - pos >= header_len:
                size = self._length(buf, pos)
                end = pos + header_len + size
                if len(buf) < end:
                    break
                body = bytes(buf[pos + header_len:end])
                if self.kind == "tpdu":
                    frames.append(self._tpdu_frame(body, buf, pos))
                else:
                    frames.append(Frame(body))
                pos = end
        except FramingError as exc:
            exc.frames = frames
            raise
        del buf[:pos]
        return frames

    def reply(self, request: Frame, payload: bytes) -> bytes:
        """Frame a reply to `request`: same framing, TPDU source and destination swapped."""
        tpdu = swap_tpdu(request.tpdu) if request.tpdu is not None else None
        return frame(payload, self.kind, tpdu)

    def _length(self, buf: bytearray, pos: int) -> int:
        if self.kind == "len4a":
            digits = bytes(buf[pos:pos + 4])
            if not digits.isdigit():
                self._fail("garbled len4a length (not 4 ASCII digits)", buf, pos)
            size = int(digits)
        else:
            size = (buf[pos] << 8) | buf[pos + 1]
        if size == 0:
            self._fail("zero frame length", buf, pos)
        if size > self.max_frame:
            self._fail(f"frame length {size} above max_frame {self.max_frame}", buf, pos)
        if self.kind == "tpdu" and size <= TPDU_LEN:
            self._fail(f"frame length {size} leaves no room for a message after the TPDU",
                       buf, pos)
        return size

    def _tpdu_frame(self, body: bytes, buf: bytearray, pos: int) -> Frame:
        if body[0] != TPDU_ID:
            self._fail(f"TPDU id 0x{body[0]:02x}, expecting 0x{TPDU_ID:02x}", buf, pos)
        return Frame(body[TPDU_LEN:], body[:TPDU_LEN])

    def _fail(self, reason: str, buf: bytearray, pos: int) -> None:
        header = self._header_len + (TPDU_LEN if self.kind == "tpdu" else 0)
        self._broken = FramingError(reason, bytes(buf[pos:pos + header]))
        buf.clear()
        raise self._broken

"""A test till for STX/ETX lines, over a real TCP socket or the master end of a real pty.

It frames and checks LRCs with its own few lines of code (not protocols.stxetx), so the gateway's
codec is never checked against itself. Reads wait on the reactor with a timeout, so a gateway that
stays silent fails the test instead of hanging it.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from twisted.internet import defer, protocol, task
from twisted.internet.defer import Deferred

STX, ETX, ACK, NAK, FS = 0x02, 0x03, 0x06, 0x15, b"\x1c"
WAIT = 5.0


def lrc_of(payload: bytes) -> int:
    x = ETX
    for b in payload:
        x ^= b
    return x


def frame(payload: bytes) -> bytes:
    return bytes([STX]) + payload + bytes([ETX, lrc_of(payload)])


def tgl_request(**fields: str) -> bytes:
    return FS.join([b"TGL1", b"Q", *(f"{k}={v}".encode() for k, v in fields.items())])


def tgl_fields(payload: bytes) -> dict[str, str]:
    parts = payload.split(FS)
    assert parts[:2] == [b"TGL1", b"R"], payload
    return dict(p.decode().split("=", 1) for p in parts[2:])


class TillLine:
    """The till's view of the line: bytes it received, and what it writes."""

    def __init__(self, reactor, write: Callable[[bytes], None]):
        self.reactor = reactor
        self.write = write
        self.buf = bytearray()
        self._waiter: Deferred | None = None
        self.closed = False

    def received(self, data: bytes) -> None:
        self.buf += data
        self._wake()

    def lost(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.callback(None)

    async def _more(self, what: str) -> None:
        if self.closed:
            raise ConnectionError(f"line closed while waiting for {what}")
        self._waiter = Deferred()
        try:
            await self._waiter.addTimeout(WAIT, self.reactor)
        except defer.TimeoutError:
            raise AssertionError(f"no {what} within {WAIT} s; have {bytes(self.buf)!r}") from None

    async def read_byte(self) -> int:
        while not self.buf:
            await self._more("byte")
        b = self.buf[0]
        del self.buf[0]
        return b

    async def read_frame(self, *, ack: bool | None = True) -> bytes:
        """The next frame's payload; its LRC is checked. ACK it (or NAK it with ack=False)."""
        while True:
            start = self.buf.find(bytes([STX]))
            end = self.buf.find(bytes([ETX]), start + 1) if start >= 0 else -1
            if start >= 0 and end >= 0 and len(self.buf) > end + 1:
                break
            await self._more("frame")
        assert start == 0, f"bytes before the frame: {bytes(self.buf[:start])!r}"
        payload = bytes(self.buf[1:end])
        got = self.buf[end + 1]
        del self.buf[:end + 2]
        assert got == lrc_of(payload), f"bad LRC from the gateway: {payload!r}"
        if ack is not None:
            self.write(bytes([ACK if ack else NAK]))
        return payload

    async def expect(self, control: int) -> None:
        got = await self.read_byte()
        assert got == control, f"expected {control:#04x}, got {got:#04x}"

    async def quiet(self, seconds: float) -> None:
        """Assert nothing arrives for `seconds`."""
        await task.deferLater(self.reactor, seconds, lambda: None)
        assert not self.buf, f"unexpected bytes: {bytes(self.buf)!r}"

    async def request(self, payload: bytes, *, handshake: bool = True) -> dict[str, str]:
        """Send one TGL/1 request and return the response's fields (ACKing both ways)."""
        self.write(frame(payload))
        if handshake:
            await self.expect(ACK)
        return tgl_fields(await self.read_frame(ack=True if handshake else None))


class TcpTill(protocol.Protocol):
    def __init__(self, reactor):
        self.line = TillLine(reactor, self._write)

    def _write(self, data: bytes) -> None:
        self.transport.write(data)

    def dataReceived(self, data: bytes) -> None:
        self.line.received(data)

    def connectionLost(self, reason=None) -> None:
        self.line.lost()


class PtyTill:
    """The master end of a pseudo-terminal, read by the reactor (an IReadDescriptor)."""

    def __init__(self, reactor, master_fd: int):
        self.reactor = reactor
        self.fd = master_fd
        os.set_blocking(master_fd, False)
        self.line = TillLine(reactor, self._write)
        reactor.addReader(self)

    def _write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def fileno(self) -> int:
        return self.fd

    def logPrefix(self) -> str:
        return "pty-till"

    def doRead(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError:  # EIO: the other end is not open (yet); wait for it
            return
        if data:
            self.line.received(data)

    def connectionLost(self, reason=None) -> None:
        pass

    def unplug(self) -> None:
        """Pull the cable: the till end goes away and the gateway's reads fail."""
        self.reactor.removeReader(self)
        self.line.lost()
        os.close(self.fd)

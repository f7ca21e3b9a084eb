"""Blocking byte channels a simulated till talks through: one frame in, one frame out.

`LengthChannel`: ISO 8583 over TCP with `len2b`, `len4a` or `tpdu` framing (protocols.framing).
`StxEtxChannel`: STX payload ETX LRC frames (protocols.stxetx), with the ACK/NAK handshake of
HOST-SPEC 1 when `ack` is on: a request is sent again on NAK or silence, up to `retries` times;
a response with a good LRC is ACKed, a bad one NAKed (the gateway resends it).

Both run over a `Stream`: a TCP socket or a serial device (pyserial). `send_raw` writes bytes as
they are, for fault injection (bad lengths, garbage, trickled writes).
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Protocol

from gateway.sim.target import Target
from protocols import stxetx
from protocols.framing import Deframer, FramingError, frame


class LinkClosed(ConnectionError):
    """The other end closed the connection (or the device went away)."""


class Stream(Protocol):
    def write(self, data: bytes) -> None: ...
    def read(self, timeout: float) -> bytes: ...  # b"" on timeout, LinkClosed at EOF
    def close(self) -> None: ...


def ssl_context(target: Target) -> ssl.SSLContext | None:
    """The client TLS context for a target (None for plain TCP).

    The trust anchor may be the gateway's own (leaf) certificate, so partial chains are
    accepted; hostname checking stays on unless verification is switched off entirely.
    """
    if not target.tls:
        return None
    context = ssl.create_default_context(cafile=target.tls_ca)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    if not target.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if target.tls_cert:
        context.load_cert_chain(target.tls_cert, target.tls_key)
    return context


class SocketStream:
    def __init__(self, host: str, port: int, timeout: float,
                 context: ssl.SSLContext | None = None):
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is not None:
            try:
                sock = context.wrap_socket(sock, server_hostname=host)
            except (ssl.SSLError, OSError):
                sock.close()
                raise
        self.sock = sock

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, timeout: float) -> bytes:
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except (TimeoutError, ssl.SSLWantReadError):
            return b""
        except OSError as e:
            raise LinkClosed(f"connection lost: {e}") from None
        if not data:
            raise LinkClosed("the gateway closed the connection")
        return data

    def close(self) -> None:
        self.sock.close()


class SerialStream:
    def __init__(self, device: str, baud: int):
        import serial  # pyserial; imported here so TCP-only users never load it

        try:
            self.port = serial.serial_for_url(device, baudrate=baud, timeout=0.05)
        except (serial.SerialException, ValueError) as e:
            raise LinkClosed(f"cannot open {device}: {e}") from None

    def write(self, data: bytes) -> None:
        self.port.write(data)
        self.port.flush()

    def read(self, timeout: float) -> bytes:
        self.port.timeout = max(timeout, 0.001)
        waiting = max(self.port.in_waiting, 1)
        return self.port.read(waiting)

    def close(self) -> None:
        self.port.close()


def open_stream(target: Target, timeout: float) -> Stream:
    if target.transport == "serial":
        if not target.device:
            raise LinkClosed("a serial target needs a device")
        return SerialStream(target.device, target.baud)
    return SocketStream(target.host, target.port, timeout, ssl_context(target))


class FrameChannel:
    """What both framings share: a stream, the frames read but not yet taken, and `receive`,
    which reads (`pump`) until a frame is there or the time is up."""

    def __init__(self, stream: Stream):
        self.stream = stream
        self.frames: list[bytes] = []

    def pump(self, timeout: float) -> object:
        """Read what arrives within `timeout` seconds into `frames`."""
        raise NotImplementedError

    def receive(self, timeout: float) -> bytes:
        """The next frame's payload; TimeoutError when none comes within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not self.frames:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no response within {timeout:g} s")
            self.pump(left)
        return self.frames.pop(0)

    def send_raw(self, data: bytes) -> None:
        self.stream.write(data)

    def close(self) -> None:
        self.stream.close()


class LengthChannel(FrameChannel):
    """Length-prefixed ISO 8583 frames (HOST-SPEC 1) over a stream."""

    def __init__(self, stream: Stream, framing: str = "len2b", tpdu: bytes | None = None):
        super().__init__(stream)
        self.framing = framing
        self.tpdu = tpdu
        self.deframer = Deframer(framing, 65535 if framing != "len4a" else 9999)

    def send(self, payload: bytes) -> None:
        self.stream.write(frame(payload, self.framing, tpdu=self.tpdu))

    def frame(self, payload: bytes) -> bytes:
        return frame(payload, self.framing, tpdu=self.tpdu)

    def pump(self, timeout: float) -> None:
        data = self.stream.read(timeout)
        if data:
            try:
                self.frames.extend(f.payload for f in self.deframer.feed(data))
            except FramingError as e:
                raise LinkClosed(f"unreadable frame from the gateway: {e.reason}") from None


class StxEtxChannel(FrameChannel):
    """STX/ETX/LRC frames with the ACK/NAK handshake, as a till on a line (HOST-SPEC 1)."""

    def __init__(self, stream: Stream, *, ack: bool = True, retries: int = 3,
                 interval: float = 3.0, max_frame: int = stxetx.DEFAULT_MAX_FRAME):
        super().__init__(stream)
        self.ack = ack
        self.retries = retries
        self.interval = interval
        self.max_frame = max_frame
        self.receiver = stxetx.Receiver(max_frame=65535)
        self.acks = 0
        self.naks = 0
        self.retransmissions = 0

    def frame(self, payload: bytes) -> bytes:
        return stxetx.encode_frame(payload, max(self.max_frame, len(payload)))

    def send(self, payload: bytes) -> None:
        data = self.frame(payload)
        self.stream.write(data)
        if not self.ack:
            return
        for _attempt in range(self.retries + 1):
            got = self.await_control(self.interval)
            if got == "ack":
                return
            self.retransmissions += 1
            self.stream.write(data)
        raise TimeoutError(f"no ACK after {self.retries} retransmissions")

    def await_control(self, timeout: float) -> str | None:
        """Read until an ACK or NAK arrives (frames meanwhile are kept); None on silence."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            for kind in self.pump(left):
                return kind

    def pump(self, timeout: float) -> list[str]:
        data = self.stream.read(timeout)
        controls = []
        for event in self.receiver.feed(data) if data else ():
            if isinstance(event, stxetx.Frame):
                if self.ack:
                    self.stream.write(stxetx.ACK_BYTE)
                # A repeat is kept: a retransmitted request is answered twice, both count.
                self.frames.append(event.payload)
            elif isinstance(event, stxetx.BadFrame):
                if self.ack:
                    self.stream.write(stxetx.NAK_BYTE)
            elif isinstance(event, stxetx.Ack):
                self.acks += 1
                controls.append("ack")
            elif isinstance(event, stxetx.Nak):
                self.naks += 1
                controls.append("nak")
        return controls


Channel = LengthChannel | StxEtxChannel


def open_channel(target: Target, timeout: float = 10.0) -> Channel:
    stream = open_stream(target, timeout)
    if target.stxetx:
        return StxEtxChannel(stream, ack=target.ack, retries=target.retries,
                             interval=target.retry_interval, max_frame=target.max_frame)
    return LengthChannel(stream, target.framing, target.tpdu)

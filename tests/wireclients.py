"""Blocking clients for tests that drive a `tillgate serve` subprocess over real sockets: many
requests at once on one connection, each answer read back (ISO 8583 len2b, TGL/1 with ACK on)."""

from __future__ import annotations

import socket

from linetill import ACK, ETX, STX, frame, tgl_fields

from gateway.sim.isoclient import IsoClient


def iso_batch(port: int, payloads: list[bytes]) -> list[dict[str, str]]:
    """Send every payload on one connection, then read as many answers."""
    from protocols import isocodec

    with IsoClient("127.0.0.1", port) as client:
        for payload in payloads:
            client.send_raw(payload)
        return [isocodec.decode(client.receive_frame().payload, client.spec)
                for _ in payloads]


def iso_closes(port: int, payload: bytes, timeout: float = 5.0) -> bool:
    """Send one message; True when the gateway closes the connection without an answer."""
    with IsoClient("127.0.0.1", port, timeout=timeout) as client:
        client.send_raw(payload)
        try:
            client.receive_frame()
        except ConnectionError:
            return True
        return False


class LineClient:
    """A TGL/1 till on a TCP socket with ACK/NAK on: ACKs each answer as it reads it."""

    def __init__(self, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def send(self, payload: bytes) -> None:
        self.sock.sendall(frame(payload))

    def receive(self) -> dict[str, str]:
        """The next answer frame (the gateway's ACKs of our frames are skipped)."""
        while True:
            start = self.buffer.find(bytes([STX]))
            end = self.buffer.find(bytes([ETX]), start + 1) if start >= 0 else -1
            if start >= 0 and 0 <= end < len(self.buffer) - 1:
                payload = self.buffer[start + 1:end]
                self.buffer = self.buffer[end + 2:]
                self.sock.sendall(bytes([ACK]))
                return tgl_fields(payload)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the gateway closed the connection")
            self.buffer += data

    def batch(self, payloads: list[bytes]) -> list[dict[str, str]]:
        for payload in payloads:
            self.send(payload)
        return [self.receive() for _ in payloads]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> LineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""A small blocking ISO 8583 client over TCP: what a till does, for tests, demos and scripts.

It frames and encodes with the same sans-IO code the gateway uses. `send` may be called many
times before `receive` (pipelining); responses are matched by the caller (HOST-SPEC 1: by MTI
class, field 11 and field 41), since the gateway answers each request when it is done.
"""

from __future__ import annotations

import socket

from protocols import isocodec
from protocols.framing import Deframer, frame
from protocols.isospec import spec_for_bitmap


class IsoClient:
    def __init__(self, host: str, port: int, *, framing: str = "len2b", bitmap: str = "ascii",
                 tpdu: bytes | None = None, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.framing = framing
        self.spec = spec_for_bitmap(bitmap)
        self.tpdu = tpdu if framing == "tpdu" else None
        if framing == "tpdu" and self.tpdu is None:
            self.tpdu = bytes.fromhex("6000010002")
        # the largest frame each framing can carry (len4a: 4 ASCII digits)
        self.deframer = Deframer(framing, 9999 if framing == "len4a" else 65535)
        self.pending: list = []

    def send(self, fields: dict[str, str]) -> None:
        self.send_raw(isocodec.encode(fields, self.spec))

    def send_raw(self, payload: bytes) -> None:
        self.sock.sendall(frame(payload, self.framing, tpdu=self.tpdu))

    def receive_frame(self):
        while not self.pending:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the gateway closed the connection")
            self.pending.extend(self.deframer.feed(data))
        return self.pending.pop(0)

    def receive(self) -> dict[str, str]:
        return isocodec.decode(self.receive_frame().payload, self.spec)

    def exchange(self, fields: dict[str, str]) -> dict[str, str]:
        self.send(fields)
        return self.receive()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> IsoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

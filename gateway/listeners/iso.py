"""ISO 8583 over TCP (HOST-SPEC 1 and 2): a thin Twisted protocol around the sans-IO codec.

Per connection: bytes -> `Deframer` -> `isocodec.decode` -> `isomap.message_to_request` ->
`processor.submit` -> `isomap.result_to_response` -> `isocodec.encode` -> framed reply. Many
requests may be in flight on one connection; each is answered when its own result is ready.

What is refused, and how (HOST-SPEC 1, issue 4):
- a frame that cannot be split (zero/garbled length, over `max_frame`): the connection is closed;
- a message that cannot be decoded: `30` when its MTI and STAN can be read, else the connection
  is closed; either way it is logged and counted, with a hex dump that shows no card number and
  nothing from where field 52 (the PIN block) can start (gateway.listeners.hexdump.iso_dump);
- a message missing what its operation requires: `30`, echoing what it can;
- more than `max_in_flight` requests in progress on this listener: `91` at once (load shed),
  never an unbounded queue; so is every request that arrives once the gateway shuts down;
- a frame not complete `frame_timeout` s after its first byte: the connection is closed;
- a connection past `max_connections` or `max_connections_per_source`: closed at once
  (gateway/listeners/admission.py).
"""

from __future__ import annotations

import logging
import time
from typing import cast

from twisted.internet import protocol
from twisted.internet.address import IPv4Address
from twisted.internet.defer import maybeDeferred
from twisted.internet.interfaces import IListeningPort, ITCPTransport
from twisted.protocols.policies import TimeoutMixin

from gateway.config.model import Config, Listener
from gateway.listeners.admission import Admission, FrameDeadline
from gateway.listeners.endpoints import server_endpoint
from gateway.listeners.hexdump import iso_dump, masked_hexdump
from gateway.metrics import families as metrics
from gateway.metrics.hot import count_gauge
from gateway.services import AsyncService, drain
from protocols import isocodec, isomap
from protocols.framing import Deframer, Frame, FramingError
from protocols.isospec import spec_for_bitmap
from protocols.model import RC, Request, Result

log = logging.getLogger(__name__)


class IsoProtocol(protocol.Protocol, TimeoutMixin):
    transport: ITCPTransport  # set by Twisted before connectionMade

    def __init__(self, service: IsoTCPService):
        self.service = service
        self.listener = service.listener
        self.name = service.listener.name
        self.metrics = service.metrics
        self.spec = service.spec
        self.deframer = Deframer(self.listener.framing, self.listener.max_frame)
        self.peer = "?"
        self.source = ""  # the peer's address, once admitted (its place in the caps)
        self.closing = False
        self.frame_deadline = FrameDeadline(service.reactor, self.listener.frame_timeout,
                                            self.frame_too_slow)

    # -- connection -------------------------------------------------------------------------
    def connectionMade(self) -> None:
        address = self.transport.getPeer()
        host = getattr(address, "host", "?")
        self.peer = f"{host}:{getattr(address, 'port', '?')}"
        if self.service.admission.admit(host) is not None:
            self.closing = True
            self.transport.abortConnection()
            return
        self.source = host
        self.service.connections.add(self)
        # Responses are small and must leave at once: Nagle would hold each one until the
        # previous segment is acknowledged (measured: p99 757 ms -> 15 ms, docs/benchmarks.md).
        self.transport.setTcpNoDelay(True)
        self.metrics.connections.inc()
        self.metrics.accepted.inc()
        self.setTimeout(self.listener.idle_timeout or None)

    def connectionLost(self, reason=None) -> None:
        self.setTimeout(None)
        self.frame_deadline.cancel()
        if self in self.service.connections:
            self.service.connections.discard(self)
            self.service.admission.release(self.source)
            self.metrics.connections.dec()

    def timeoutConnection(self) -> None:
        self.close_for_cause("idle", f"idle for {self.listener.idle_timeout} s")

    def frame_too_slow(self) -> None:
        self.close_for_cause("frame_timeout", f"frame not complete within "
                             f"{self.listener.frame_timeout} s of its first byte")

    def close_for_cause(self, reason: str, detail: str, dump: str = "") -> None:
        """Close the connection, logging why (with `dump`, a hex dump already safe to log)."""
        if self.closing:
            return
        self.closing = True
        self.metrics.closed(reason)
        if dump:
            log.warning("%s: closing %s: %s\n%s", self.name, self.peer, detail, dump)
        else:
            log.info("%s: closing %s: %s", self.name, self.peer, detail)
        self.transport.loseConnection()

    # -- inbound ----------------------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        if self.closing:
            return
        self.resetTimeout()
        try:
            frames = self.deframer.feed(data)
        except FramingError as e:
            for frame in e.frames:  # whole messages that came before the bad length
                self.frame_received(frame)
            # e.head is the bad length header only, never a message's body
            self.close_for_cause("framing", e.reason, masked_hexdump(e.head))
            return
        for frame in frames:
            self.frame_received(frame)
        self.frame_deadline.update(bool(frames), self.deframer.buffered > 0)

    def frame_received(self, frame: Frame) -> None:
        started = time.monotonic()
        try:
            fields = isocodec.decode(frame.payload, self.spec)
        except isocodec.IsoDecodeError as e:
            self.refuse(frame, e, "decode")
            return
        mti = fields["t"]
        self.metrics.message_in(mti)
        try:
            request = isomap.message_to_request(fields, source=self.peer, decoded=True)
        except isomap.IsoFormatError as e:
            self.refuse(frame, e, "format")
            return
        if request.extras:
            log.info("%s: ignored unknown field 63 tags %s from %s", self.name,
                     ",".join(sorted(request.extras)), request.terminal)
        if self.service.in_flight >= self.listener.max_in_flight or self.service.shutting_down:
            if not self.service.shutting_down:
                self.metrics.shed.inc()
            self.answer(Result(RC.OVERLOADED), fields, frame, request, started)
            return
        self.service.in_flight += 1
        self.service.processor.submit_to(
            request, lambda result: self._completed(result, fields, frame, request, started))

    def refuse(self, frame: Frame, error: isocodec.IsoDecodeError | isomap.IsoFormatError,
               reason: str) -> None:
        """Log and count a malformed message; answer it (30, or the error's code) when the till
        can match the answer (readable MTI and STAN), else close the connection."""
        self.metrics.malformed(reason)
        response = isomap.format_error_response(error.fields_to_echo, code=error.code,
                                                mask_pan=self.listener.mask_pan)
        # The PIN block (field 52, clear or not) never reaches the log, even as hex, wherever
        # decoding stopped: the dump is cut by position, from the bitmap
        # (gateway.listeners.hexdump).
        dump = iso_dump(frame.payload, self.spec)
        if response is None:
            self.close_for_cause("undecodable", f"unanswerable message: {error}", dump)
            return
        log.warning("%s: refused with %s from %s: %s\n%s", self.name, error.code, self.peer,
                    error, dump)
        self.send(response, frame)

    # -- outbound ---------------------------------------------------------------------------
    def _completed(self, result: Result, fields, frame, request: Request, started: float) -> None:
        self.service.in_flight -= 1
        self.answer(result, fields, frame, request, started)

    def answer(self, result: Result, fields, frame, request: Request, started: float) -> None:
        self.send(isomap.result_to_response(fields, result, mask_pan=self.listener.mask_pan),
                  frame)
        self.metrics.latency(request.op.value, time.monotonic() - started)

    def send(self, response: dict, frame: Frame) -> None:
        try:
            payload = isocodec.encode(response, self.spec)
        except isocodec.IsoEncodeError:
            log.exception("%s: cannot encode a response to MTI %s", self.name, response.get("t"))
            return
        self.metrics.message_out(response.get("t", "?"), response.get("39", ""))
        if self.transport is not None and self.connected:
            self.transport.write(self.deframer.reply(frame, payload))


class IsoFactory(protocol.Factory):
    noisy = False  # the service logs its own start line

    def __init__(self, service: IsoTCPService):
        self.service = service

    def buildProtocol(self, addr) -> IsoProtocol:
        p = IsoProtocol(self.service)
        p.factory = self
        return p


class IsoTCPService(AsyncService):
    """One configured ISO 8583 TCP listener and its connections."""

    def __init__(self, reactor, listener: Listener, processor, config: Config):
        self.reactor = reactor
        self.listener = listener
        self.processor = processor
        self.config = config
        self.name = listener.name
        self.spec = spec_for_bitmap(listener.bitmap)
        self.metrics = metrics.ListenerMetrics(listener.name)
        self.connections: set[IsoProtocol] = set()
        self.admission = Admission(listener, self.metrics.refused)
        self.shutting_down = False  # a plain attribute: read for every request
        self.in_flight = 0
        # read when scraped, instead of a locked inc() and dec() on every message
        count_gauge(self.metrics.in_flight, lambda: self.in_flight)
        self.port: IListeningPort | None = None

    async def start(self) -> None:
        endpoint = server_endpoint(self.reactor, self.listener.host, self.listener.port,
                                   self.listener.tls, self.listener.backlog)
        self.port = await endpoint.listen(IsoFactory(self))
        log.info("%s: ISO 8583 (%s, %s bitmap) on %s:%d", self.name, self.listener.framing,
                 self.listener.bitmap, self.listener.host, self.bound_port)

    def shut_down(self) -> None:
        """From now on, answer every request 91 at once and refuse new connections: a busy
        till must not keep a stopping gateway alive until shutdown_grace."""
        self.shutting_down = self.admission.shutting_down = True

    def reconfig(self, config: Config) -> None:
        """A reloaded config (gateway/reloader.py): its own listener settings need a restart and
        are unchanged; what a request is judged by lives in the processor."""
        self.config = config

    @property
    def bound_port(self) -> int:
        assert self.port is not None, "not listening"
        return cast(IPv4Address, self.port.getHost()).port

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests be answered (up to the grace), then close."""
        if self.port is not None:
            await maybeDeferred(self.port.stopListening)
            self.port = None
        await drain(self, self.config.shutdown_grace)

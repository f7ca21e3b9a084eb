"""STX/ETX/LRC-framed tills (HOST-SPEC 1): a thin Twisted protocol around protocols.stxetx.

One protocol serves every framed line: TGL/1 over TCP or a serial port, and ISO 8583 inside
STX/ETX over a serial port. What differs is the payload codec (`TglPayloads`, `IsoPayloads`),
chosen from the listener's `protocol`. Per connection:

    bytes -> stxetx.Receiver -> ACK/NAK -> codec.decode -> processor.submit -> codec response
          -> stxetx.Sender (stop-and-wait, retries driven by the reactor's clock) -> bytes

Behaviour on the line (docs/till-integration.md is the integrator's version of this):
- ACK on (default): a good frame is ACKed at once, a bad LRC NAKed; our responses wait for the
  till's ACK and are retransmitted on NAK or after `retry_interval` s, `retries` times, then given
  up (logged and counted, never a crash). ACK off (TCP listeners only, `ack = false`): frames are
  still STX/ETX/LRC, but nothing is ACKed or NAKed, a bad LRC frame is dropped (logged and
  counted), responses are written once.
- Many requests in flight: each is answered when its own result is ready, in any order. More
  than `max_in_flight` on one listener are answered `91` at once.
- A till's retransmission of a frame (it missed our ACK) is never processed twice: a frame whose
  payload equals one still in flight is ACKed and joined to it (one response goes out); once the
  first is answered, an identical frame is a new submission which the ledger recognises by its
  request key and content, answering the original result again without changing anything
  (HOST-SPEC 2.2), so the till, which evidently lost our answer too, gets it once more.
- A payload longer than `max_frame` closes the connection (HOST-SPEC 1); on a serial port the
  listener reopens the device. Noise between frames is skipped and counted. `idle_timeout` closes
  idle TCP connections; serial listeners pass 0 (a till on a wire is not a session to time out).
- A frame not complete `frame_timeout` s after its STX closes a TCP connection (a peer trickling
  bytes resets the idle timer with each); on a serial line the half frame is dropped instead
  (the wire stays, and the till's retransmission starts a new frame). TCP connections past
  `max_connections` or `max_connections_per_source` are closed at once
  (gateway/listeners/admission.py).
- Once the gateway shuts down, every request is answered `91` at once.
- Logs carry the codec's safe hex dumps only (gateway.listeners.hexdump: `tgl_dump`,
  `iso_dump`), never a whole card number, a PIN or a PIN block, for garbled (NAKed, dropped)
  and refused frames.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import Protocol as TypingProtocol

from twisted.internet import protocol
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.protocols.policies import TimeoutMixin

from gateway.config.model import Config, Listener
from gateway.listeners.admission import Admission, FrameDeadline
from gateway.listeners.hexdump import iso_dump, tgl_dump
from gateway.metrics import families as metrics
from gateway.metrics.hot import count_gauge
from protocols import stxetx, tgl
from protocols.model import RC, Request, Result

log = logging.getLogger(__name__)


# --- payload codecs ------------------------------------------------------------------------


@dataclass(slots=True)
class Decoded:
    """One payload, decoded: the request to submit, or why there is none.

    `respond` turns a Result into the response payload for this request; it is None when the
    payload could not even be addressed (no response can be matched by the till), and then the
    frame is only logged and counted.
    """

    label: str  # op (TGL/1) or MTI (ISO), for metrics
    request: Request | None
    respond: Callable[[Result], bytes] | None
    error: str | None = None


class PayloadCodec(TypingProtocol):
    name: str

    def decode(self, payload: bytes, source: str) -> Decoded: ...

    def dump(self, payload: bytes) -> str:
        """`payload` as a hex dump safe to log: no card number, no PIN or PIN block."""
        ...


def utc_day(clock: IReactorTime) -> str:
    """The UTC day of the request key (HOST-SPEC 3), from the reactor's clock."""
    return time.strftime("%Y%m%d", time.gmtime(clock.seconds()))


class TglPayloads:
    """TGL/1 payloads. `activate` of a card whose program has face values is a pre-valued one."""

    name = "tgl"

    def __init__(self, config: Config, clock: IReactorTime):
        self.config = config
        self.clock = clock

    def prevalued(self, card: str) -> bool:
        program = self.config.program_of_card(card)
        return bool(program is not None and program.face_values)

    def decode(self, payload: bytes, source: str) -> Decoded:
        try:
            request = tgl.parse_request(payload, today=utc_day(self.clock),
                                        prevalued=self.prevalued)
        except tgl.TglFormatError as e:
            seq = e.seq_id
            return Decoded("format", None, lambda result: tgl.format_response(seq, result),
                           error=e.reason)
        request.source = source
        seq = request.extras["tgl_id"]
        return Decoded(request.op.value, request, lambda result: tgl.format_response(seq, result))

    def dump(self, payload: bytes) -> str:
        return tgl_dump(payload)


class IsoPayloads:
    """ISO 8583 messages carried in STX/ETX frames on a serial line (HOST-SPEC 1)."""

    name = "iso"

    def __init__(self, listener: Listener):
        from protocols.isospec import spec_for_bitmap

        self.spec = spec_for_bitmap(listener.bitmap)
        self.mask_pan = listener.mask_pan

    def decode(self, payload: bytes, source: str) -> Decoded:
        from protocols import isocodec, isomap

        try:
            fields = isocodec.decode(payload, self.spec)
        except isocodec.IsoDecodeError as e:
            return self._refused(e.mti or "undecodable", e.fields_to_echo, e.code, str(e))
        try:
            request = isomap.message_to_request(fields, source=source, decoded=True)
        except isomap.IsoFormatError as e:
            return self._refused(fields["t"], fields, e.code, str(e))

        def respond(result: Result) -> bytes:
            response = isomap.result_to_response(fields, result, mask_pan=self.mask_pan)
            return isocodec.encode(response, self.spec)

        return Decoded(fields["t"], request, respond)

    def dump(self, payload: bytes) -> str:
        return iso_dump(payload, self.spec)

    def _refused(self, label: str, fields: dict, code: str, error: str) -> Decoded:
        """A message that cannot become a Request: answered `code` when MTI and STAN are
        readable (HOST-SPEC 2.5: 30 echoes what it can), else only logged."""
        from protocols import isocodec, isomap

        response = isomap.format_error_response(fields, code=code, mask_pan=self.mask_pan)
        if response is None:
            return Decoded(label, None, None, error)
        try:
            encoded = isocodec.encode(response, self.spec)
        except isocodec.IsoEncodeError:
            return Decoded(label, None, None, error)
        return Decoded(label, None, lambda _result: encoded, error)


def payload_codec(listener: Listener, config: Config, clock: IReactorTime) -> PayloadCodec:
    if listener.protocol == "iso8583":
        return IsoPayloads(listener)
    return TglPayloads(config, clock)


# --- the protocol --------------------------------------------------------------------------


class LineEndpoint:
    """What the connections of one listener share: settings, codec, processor, in-flight count.

    LineTCPService (gateway/listeners/line.py) and SerialListenerService
    (gateway/listeners/serial_port.py) are line endpoints; a test may build one directly.
    """

    # A frame past its deadline closes the connection (TCP); False: only the frame is dropped.
    slow_frame_closes = True

    def __init__(self, reactor, listener: Listener, processor, config: Config,
                 codec: PayloadCodec | None = None, *, idle_timeout: int | None = None):
        self.reactor = reactor
        self.listener = listener
        self.processor = processor
        self.config = config
        self.name = listener.name
        self.codec = codec or payload_codec(listener, config, reactor)
        self.idle_timeout = listener.idle_timeout if idle_timeout is None else idle_timeout
        self.connections: set[LineProtocol] = set()
        self.in_flight = 0
        self.metrics = metrics.ListenerMetrics(listener.name)
        # read when scraped, instead of a locked inc() and dec() on every message
        count_gauge(self.metrics.in_flight, lambda: self.in_flight)
        self.admission = Admission(listener, self.metrics.refused)
        self.shutting_down = False  # a plain attribute: read for every request

    def shut_down(self) -> None:
        """From now on, answer every request 91 at once and refuse new connections: a busy
        till must not keep a stopping gateway alive until shutdown_grace."""
        self.shutting_down = self.admission.shutting_down = True

    def reconfig(self, config: Config) -> None:
        """A reloaded config (gateway/reloader.py): a TGL/1 activation is pre-valued or not by
        the card's program in it. Called between two reactor turns, like every part's."""
        self.config = config
        if isinstance(self.codec, TglPayloads):
            self.codec.config = config

    def build_protocol(self) -> LineProtocol:
        return LineProtocol(self)


class LineFactory(protocol.Factory):
    noisy = False  # the listener service logs its own start line

    def __init__(self, endpoint: LineEndpoint):
        self.endpoint = endpoint

    def buildProtocol(self, addr) -> LineProtocol:
        p = self.endpoint.build_protocol()
        p.factory = self
        return p


class LineProtocol(protocol.Protocol, TimeoutMixin):
    transport: Any  # a TCP connection or a SerialPort, set by makeConnection

    def __init__(self, endpoint: LineEndpoint, on_lost: Callable[[object], None] | None = None):
        self.endpoint = endpoint
        self.listener = endpoint.listener
        self.name = endpoint.name
        self.metrics = endpoint.metrics
        self.clock: IReactorTime = endpoint.reactor
        self.on_lost = on_lost
        self.ack = self.listener.ack
        self.receiver = stxetx.Receiver(self.listener.max_frame)
        self.sender = stxetx.Sender(ack=self.ack, retries=self.listener.retries,
                                    interval=self.listener.retry_interval,
                                    max_frame=self.listener.max_frame)
        self._timer: IDelayedCall | None = None
        self._pending: dict[bytes, Decoded] = {}  # payload -> its decoded request, in flight
        self.peer = "?"
        self.source: str | None = None  # a TCP peer's address, once admitted
        self.closing = False
        self.frame_deadline = FrameDeadline(self.clock, self.listener.frame_timeout,
                                            self.frame_too_slow)
        self.counts: dict[str, int] = {}  # what happened on this line, for tests and logs

    def callLater(self, period, func):
        # TimeoutMixin's hook: the idle timer runs on the endpoint's clock, like the retry timer.
        return self.clock.callLater(period, func)

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    # -- connection -------------------------------------------------------------------------
    def connectionMade(self) -> None:
        self.peer = self.listener.device or "?"
        address: Any
        try:
            address = self.transport.getPeer()
        except NotImplementedError:  # a serial port has no peer address
            address = None
        if getattr(address, "host", None):
            self.peer = f"{address.host}:{address.port}"
            if self.endpoint.admission.admit(address.host) is not None:
                self.closing = True
                self.transport.abortConnection()
                return
            self.source = address.host
        self.endpoint.connections.add(self)
        no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if no_delay is not None:  # TCP (a serial port has none): answers must not wait on Nagle
            no_delay(True)
        self.metrics.connections.inc()
        self.metrics.accepted.inc()
        self.setTimeout(self.endpoint.idle_timeout or None)

    def connectionLost(self, reason=None) -> None:
        self.setTimeout(None)
        self._cancel_timer()
        self.frame_deadline.cancel()
        self.closing = True
        if self in self.endpoint.connections:
            self.endpoint.connections.discard(self)
            if self.source is not None:
                self.endpoint.admission.release(self.source)
            self.metrics.connections.dec()
        if self.on_lost is not None:
            self.on_lost(reason)

    def timeoutConnection(self) -> None:
        self.close_for_cause("idle", f"idle for {self.endpoint.idle_timeout} s")

    def frame_too_slow(self) -> None:
        detail = f"frame not complete within {self.listener.frame_timeout} s of its STX"
        if self.endpoint.slow_frame_closes:
            self.close_for_cause("frame_timeout", detail)
            return
        dropped = self.receiver.abandon()
        self.count("frame_timeouts")
        self.metrics.malformed("frame_timeout")
        log.warning("%s: %s: dropped (%d bytes)", self.name, detail, len(dropped))

    def close_for_cause(self, reason: str, detail: str) -> None:
        if self.closing:
            return
        self.closing = True
        self.metrics.closed(reason)
        log.warning("%s: closing %s: %s", self.name, self.peer, detail)
        self.transport.loseConnection()

    # -- inbound ----------------------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        if self.closing:
            return
        self.resetTimeout()
        completed = False
        for event in self.receiver.feed(data):
            if isinstance(event, stxetx.Frame):
                completed = True
                self.frame_received(event)
            elif isinstance(event, stxetx.Ack):
                self.run(self.sender.ack_received())
            elif isinstance(event, stxetx.Nak):
                self.count("nak_received")
                self._retry(self.sender.nak_received)
            elif isinstance(event, stxetx.BadFrame):
                completed = True
                self.bad_frame(event)
            elif isinstance(event, stxetx.Noise):
                self.count("truncated" if event.truncated else "noise_bytes",
                           1 if event.truncated else len(event.data))
                metrics.LINE_NOISE.labels(self.name).inc(len(event.data))
            elif isinstance(event, stxetx.Oversize):
                self.metrics.malformed("oversize")
                self.close_for_cause("oversize", f"frame over max_frame "
                                     f"({self.listener.max_frame} bytes)")
                return
        if not self.closing:
            self.frame_deadline.update(completed, self.receiver.in_frame)

    def bad_frame(self, event: stxetx.BadFrame) -> None:
        self.count("bad_lrc")
        self.metrics.malformed("lrc")
        log.warning("%s: bad LRC from %s (expected %02x, got %02x), %s\n%s", self.name, self.peer,
                    event.expected, event.got, "NAKed" if self.ack else "dropped",
                    self.endpoint.codec.dump(event.payload))
        if self.ack:
            self.transport.write(stxetx.NAK_BYTE)

    def frame_received(self, frame: stxetx.Frame) -> None:
        if self.ack:
            self.transport.write(stxetx.ACK_BYTE)
        self.count("frames")
        if frame.repeat:
            self.count("repeats")
        if frame.payload in self._pending:
            # The till missed our ACK and sent it again: the first one is still being processed.
            self.count("joined")
            metrics.LINE_RETRANSMISSIONS.labels(self.name, "joined").inc()
            return
        decoded = self.endpoint.codec.decode(frame.payload, self.peer)
        self.metrics.message_in(decoded.label)
        if decoded.request is None:
            self.refuse(frame.payload, decoded)
            return
        if self.endpoint.in_flight >= self.listener.max_in_flight or self.endpoint.shutting_down:
            if not self.endpoint.shutting_down:
                self.metrics.shed.inc()
            self.answer(decoded, Result(RC.OVERLOADED), time.monotonic())
            return
        self.endpoint.in_flight += 1
        self._pending[frame.payload] = decoded
        started = time.monotonic()
        d = self.endpoint.processor.submit(decoded.request)
        d.addErrback(self._failed, decoded)
        d.addCallback(self._completed, frame.payload, decoded, started)

    def refuse(self, payload: bytes, decoded: Decoded) -> None:
        self.count("format_errors")
        self.metrics.malformed("format")
        log.warning("%s: %s from %s: %s\n%s", self.name,
                    "format error" if decoded.respond else "unaddressable message", self.peer,
                    decoded.error, self.endpoint.codec.dump(payload))
        if decoded.respond is not None:
            self.answer(decoded, Result(RC.FORMAT_ERROR), None)

    # -- outbound ---------------------------------------------------------------------------
    def _failed(self, failure, decoded: Decoded) -> Result:
        # The processor never errbacks by contract; if it does, the till still gets an answer.
        log.error("%s: processing failed: %s", self.name, failure.getTraceback())
        return Result(RC.SYSTEM_ERROR)

    def _completed(self, result: Result, payload: bytes, decoded: Decoded, started: float) -> None:
        self.endpoint.in_flight -= 1
        self._pending.pop(payload, None)
        self.answer(decoded, result, started)

    def answer(self, decoded: Decoded, result: Result, started: float | None) -> None:
        if self.closing or decoded.respond is None:
            return  # the line went away; the ledger kept the outcome for a retransmission
        try:
            payload = decoded.respond(result)
            actions = self.sender.send(payload)
        except Exception:
            log.exception("%s: cannot encode the response to a %s", self.name, decoded.label)
            return
        self.metrics.message_out(decoded.label, result.code)
        if started is not None and decoded.request is not None:
            self.metrics.latency(decoded.request.op.value, time.monotonic() - started)
        self.run(actions)

    def run(self, actions: list[stxetx.Action]) -> None:
        """Carry out what the sender asked for: writes, its retry timer, give-ups."""
        for action in actions:
            if isinstance(action, stxetx.Write):
                self.transport.write(action.data)
            elif isinstance(action, stxetx.StartTimer):
                self._cancel_timer()
                self._timer = self.clock.callLater(action.seconds, self._timer_fired)
            elif isinstance(action, stxetx.CancelTimer):
                self._cancel_timer()
            elif isinstance(action, stxetx.GiveUp):
                self.count("given_up")
                metrics.LINE_RETRANSMISSIONS.labels(self.name, "given_up").inc()
                log.warning("%s: %s did not acknowledge a response after %d attempts; given up\n%s",
                            self.name, self.peer, action.attempts,
                            self.endpoint.codec.dump(action.payload))

    def _timer_fired(self) -> None:
        self._timer = None
        if self.closing:
            return
        self._retry(self.sender.timeout)

    def _retry(self, step: Callable[[], list[stxetx.Action]]) -> None:
        before = self.sender.retransmissions
        actions = step()
        if self.sender.retransmissions > before:
            self.count("retransmitted")
            metrics.LINE_RETRANSMISSIONS.labels(self.name, "sent").inc()
        self.run(actions)

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

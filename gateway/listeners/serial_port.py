"""Serial tills (HOST-SPEC 1): TGL/1 or ISO 8583 in STX/ETX frames on an RS-232 port.

`SerialListenerService` opens the listener's device with `twisted.internet.serialport.SerialPort`
(pyserial underneath) at its baud rate, data bits, parity, stop bits and flow control, and runs
one `LineProtocol` on it; the payload codec follows the listener's `protocol` (`line` = TGL/1,
`iso8583` = ISO 8583 messages as frame payloads).

A device that cannot be opened (not plugged in yet, permissions, busy) or that goes away while
open (a USB adapter pulled out: the read fails and the port reports connectionLost) is reopened
with exponential back-off, `initial_delay` doubling up to `max_delay`, each attempt logged; it is
never a crash and never stops the gateway. The back-off starts over once a device has stayed open
for `max_delay` seconds. A frame over `max_frame` closes the port like a TCP connection, and it
is reopened the same way. A frame not complete `frame_timeout` s after its STX is dropped (the
port stays open). Serial lines have no idle timeout, and ACK/NAK is always on (HOST-SPEC 1
lets only TCP listeners switch it off).
"""

from __future__ import annotations

import dataclasses
import logging

import serial
from twisted.internet.interfaces import IDelayedCall

from gateway.config.model import Config, Listener
from gateway.listeners.line_protocol import LineEndpoint, LineProtocol
from gateway.services import AsyncService, drain

log = logging.getLogger(__name__)


def serial_port_class():
    # Imported late: twisted.internet.serialport pulls in the platform's implementation.
    from twisted.internet.serialport import SerialPort

    return SerialPort


def serial_settings(listener: Listener) -> dict:
    """The listener's line settings as SerialPort / pyserial keyword arguments."""
    return {
        "baudrate": listener.baud,
        "bytesize": listener.bytesize,
        "parity": listener.parity,
        "stopbits": listener.stopbits,
        "xonxoff": listener.flow == "xonxoff",
        "rtscts": listener.flow == "rtscts",
    }


class SerialListenerService(LineEndpoint, AsyncService):
    """One configured serial listener: keeps its device open, reopening it when it goes away."""

    slow_frame_closes = False  # a frame past frame_timeout is dropped; the line stays open

    def __init__(self, reactor, listener: Listener, processor, config: Config, *,
                 initial_delay: float = 0.5, max_delay: float = 30.0):
        if not listener.ack:
            # HOST-SPEC 1 lets only TCP listeners switch ACK/NAK off: a serial line corrupts
            # bytes, and the NAK is how the till learns to send a frame again.
            log.warning("%s: ack = false applies to TCP listeners only; ACK/NAK stays on",
                        listener.name)
            listener = dataclasses.replace(listener, ack=True)
        super().__init__(reactor, listener, processor, config, idle_timeout=0)
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.delay = initial_delay
        self.port = None  # the open SerialPort, when there is one
        self.running = False
        self.opens = 0  # times the device was opened, for tests and metrics
        self.open_failures = 0
        self._opened_at = 0.0
        self._retry: IDelayedCall | None = None

    @property
    def is_open(self) -> bool:
        return self.port is not None

    async def start(self) -> None:
        self.running = True
        self.open_device()  # a device missing at start is retried, not a failed start

    def open_device(self) -> None:
        self._retry = None
        if not self.running or self.port is not None:
            return
        protocol = LineProtocol(self, on_lost=self._lost)
        try:
            self.port = serial_port_class()(protocol, self.listener.device, self.reactor,
                                            **serial_settings(self.listener))
        except (serial.SerialException, OSError, ValueError) as e:
            self.open_failures += 1
            log.warning("%s: cannot open %s: %s; retrying in %.1f s", self.name,
                        self.listener.device, e, self.delay)
            self._schedule_reopen()
            return
        self.opens += 1
        self._opened_at = self.reactor.seconds()
        log.info("%s: %s open at %d %d%s%d flow %s (%s)", self.name, self.listener.device,
                 self.listener.baud, self.listener.bytesize, self.listener.parity,
                 self.listener.stopbits, self.listener.flow, self.codec.name)

    def _lost(self, reason) -> None:
        self.port = None
        if not self.running:
            return
        if self.reactor.seconds() - self._opened_at >= self.max_delay:
            self.delay = self.initial_delay  # it had been working: start the back-off over
        why = reason.getErrorMessage() if hasattr(reason, "getErrorMessage") else reason
        log.warning("%s: lost %s (%s); reopening in %.1f s", self.name, self.listener.device,
                    why, self.delay)
        self._schedule_reopen()

    def _schedule_reopen(self) -> None:
        self._retry = self.reactor.callLater(self.delay, self.open_device)
        self.delay = min(self.delay * 2, self.max_delay)

    async def stop(self) -> None:
        self.running = False
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        await drain(self, self.config.shutdown_grace)
        if self.port is not None:
            self.port.loseConnection()
            self.port = None

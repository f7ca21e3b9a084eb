"""A TGL/1 TCP listener (HOST-SPEC 1 `line` over TCP): STX/ETX frames, ACK/NAK on or off."""

from __future__ import annotations

import logging
from typing import Any

from gateway.config.model import Config, Listener
from gateway.listeners.endpoints import server_endpoint
from gateway.listeners.line_protocol import LineEndpoint, LineFactory
from gateway.services import AsyncService, drain

log = logging.getLogger(__name__)


def line_tcp_factory(endpoint: LineEndpoint) -> LineFactory:
    """The factory a TCP port (or a test's `listenTCP`) accepts line connections with."""
    return LineFactory(endpoint)


class LineTCPService(LineEndpoint, AsyncService):
    """One configured `line` TCP listener and its connections."""

    def __init__(self, reactor, listener: Listener, processor, config: Config):
        super().__init__(reactor, listener, processor, config)
        self.port: Any = None  # the IListeningPort once started

    async def start(self) -> None:
        endpoint = server_endpoint(self.reactor, self.listener.host, self.listener.port,
                                   self.listener.tls, self.listener.backlog)
        self.port = await endpoint.listen(line_tcp_factory(self))
        log.info("%s: TGL/1 (ACK/NAK %s) on %s:%d", self.name, "on" if self.listener.ack else "off",
                 self.listener.host, self.bound_port)

    @property
    def bound_port(self) -> int:
        return self.port.getHost().port

    async def stop(self) -> None:
        if self.port is not None:
            await self.port.stopListening()
            self.port = None
        await drain(self, self.config.shutdown_grace)

"""Listening sockets that several gateway processes share (`tillgate serve --workers N`).

Each worker binds its own socket to the same address with SO_REUSEPORT: the kernel then spreads
new connections over the workers' sockets (a hash of the connection's addresses), with no
process in between and no accept lock. Twisted has no option for it, so the socket is made here
and handed to the reactor with `adoptStreamPort`, which takes a copy of the descriptor: ours is
closed at once. TLS is layered on the factory, as `SSL4ServerEndpoint` does.

Linux has SO_REUSEPORT with this balancing since 3.9; where the socket module lacks it, `serve
--workers` above 1 is refused before anything starts (`supported`).
"""

from __future__ import annotations

import socket

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IListeningPort


def supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def shared_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A non-blocking listening IPv4 socket on host:port with SO_REUSEPORT set."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class SharedPortEndpoint:
    """An IStreamServerEndpoint-like `listen(factory)` on a socket shared with other workers."""

    def __init__(self, reactor, host: str, port: int, backlog: int = 50, tls_options=None):
        self.reactor = reactor
        self.host = host
        self.port = port
        self.backlog = backlog
        self.tls_options = tls_options

    def listen(self, factory) -> Deferred[IListeningPort]:
        if self.tls_options is not None:
            from twisted.protocols.tls import TLSMemoryBIOFactory

            factory = TLSMemoryBIOFactory(self.tls_options, False, factory)
        with shared_socket(self.host, self.port, self.backlog) as sock:
            port = self.reactor.adoptStreamPort(sock.fileno(), socket.AF_INET, factory)
        return succeed(port)

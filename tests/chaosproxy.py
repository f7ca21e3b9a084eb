"""A TCP proxy on loopback that cuts the network between a client and its server, for tests.

Between the gateway and its redis-server, it passes bytes both ways until told to fail as a
network fails (SIGSTOP on the server is a different fault: the kernel still answers for it):

- `blackhole()`: packets vanish. Every connection stays open and its bytes are dropped both
  ways (no FIN, no RST: the sender learns nothing); a new connection is accepted and never
  answered, so a client's handshake hangs. A connection the outage cut stays cut after it
  heals, as one whose state a firewall lost: its owner must give up on it by its own time-out.
- `reset()`: the peer resets. Every connection is closed with an RST, and new ones are refused
  (nothing listens on the port).
- `heal()`: new connections are passed through again, on the same port.

It runs its own asyncio loop in a thread, so blocking tests drive it from theirs.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from typing import Any

BLACKHOLE, RESET, PASS = "blackhole", "reset", "pass"


class _Link:
    """One client connection and, while it is not cut, its connection to the server."""

    def __init__(self, proxy: ChaosProxy):
        self.proxy = proxy
        self.client: asyncio.Transport | None = None
        self.server: asyncio.Transport | None = None
        self.pending: list[bytes] = []  # from the client before the server's side is open
        self.cut = False  # bytes dropped both ways from now on, for good

    def close(self, rst: bool = False) -> None:
        for transport in (self.client, self.server):
            if transport is not None and not transport.is_closing():
                if rst:  # SO_LINGER 0: close() sends an RST, not a FIN
                    sock = transport.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
                    transport.abort()
                else:
                    transport.close()
        self.proxy.links.discard(self)


class _ClientSide(asyncio.Protocol):
    def __init__(self, proxy: ChaosProxy):
        self.link = _Link(proxy)

    def connection_made(self, transport: Any) -> None:
        link = self.link
        link.client = transport
        link.proxy.links.add(link)
        link.proxy.accepted += 1
        if link.proxy.mode == BLACKHOLE:  # accepted, never answered
            link.cut = True
        else:
            link.proxy.spawn(self._connect())

    async def _connect(self) -> None:
        link = self.link
        try:
            _, server_side = await link.proxy.loop.create_connection(
                lambda: _ServerSide(link), "127.0.0.1", link.proxy.target_port)
        except OSError:
            link.close(rst=True)
            return
        link.server = server_side.transport
        if link.client is None or link.client.is_closing():
            link.close()
        elif not link.cut:
            for data in link.pending:
                link.server.write(data)
        link.pending.clear()

    def data_received(self, data: bytes) -> None:
        link = self.link
        if link.cut:
            link.proxy.dropped += len(data)
        elif link.server is None:
            link.pending.append(data)
        else:
            link.server.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.close()


class _ServerSide(asyncio.Protocol):
    def __init__(self, link: _Link):
        self.link = link
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        link = self.link
        if link.cut:
            link.proxy.dropped += len(data)
        elif link.client is not None:
            link.client.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.link.cut:  # a cut link's client hears nothing, a FIN neither
            self.link.close()


class ChaosProxy:
    """`with ChaosProxy(server_port) as proxy:` clients connect to `proxy.port`."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = 0  # chosen by the kernel at start, kept across reset and heal
        self.mode = PASS
        self.links: set[_Link] = set()
        self.accepted = 0  # connections, for the test's report
        self.dropped = 0  # bytes
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._run, name="chaosproxy", daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> ChaosProxy:
        self._thread.start()
        self._call(self._listen)
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._shut)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def blackhole(self) -> None:
        self._call(self._blackhole)

    def reset(self) -> None:
        self._call(self._reset)

    def heal(self) -> None:
        self._call(self._heal)

    # -- in the proxy's loop -----------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _call(self, coroutine_function: Any) -> None:
        asyncio.run_coroutine_threadsafe(coroutine_function(), self.loop).result(10)

    def spawn(self, coroutine: Any) -> None:
        task = self.loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _listen(self) -> None:
        self._server = await self.loop.create_server(
            lambda: _ClientSide(self), "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _blackhole(self) -> None:
        self.mode = BLACKHOLE
        for link in self.links:
            link.cut = True

    async def _reset(self) -> None:
        self.mode = RESET
        if self._server is not None:  # refused: nothing listens (close() shuts the socket)
            self._server.close()
            self._server = None
        for link in list(self.links):
            link.close(rst=True)

    async def _heal(self) -> None:
        self.mode = PASS
        if self._server is None:
            await self._listen()

    async def _shut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in list(self.links):
            link.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.sleep(0.05)  # let the transports' connection_lost run and close them

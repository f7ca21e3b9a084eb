"""Who may hold a connection to a listener, and for how long a frame may take (issue 12).

One `Admission` per TCP listener counts its open connections in total and per source address;
a connection past `max_connections` or `max_connections_per_source` (0 = no cap), or one that
arrives while the gateway shuts down, is closed at once and counted in
tillgate_connections_refused_total{listener, reason}. The source address is only a key of a
dict that shrinks when its last connection goes: it never becomes a metric label.

`FrameDeadline` closes a connection whose frame, once its first byte arrived, is not complete
within `frame_timeout` seconds: the idle timer alone is reset by every byte, so a peer sending
one byte every few seconds held a connection (and its buffer) for ever.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from gateway.config.model import Listener


class Admission:
    def __init__(self, listener: Listener, refused: Callable[[str], None]):
        self.max_connections = listener.max_connections
        self.max_per_source = listener.max_connections_per_source
        self.refused = refused  # counts a refusal by reason
        self.shutting_down = False
        self.open = 0
        self.by_source: dict[str, int] = {}

    def admit(self, source: str) -> str | None:
        """Take a place for a connection from `source`; the refusal's reason if there is none."""
        reason = None
        if self.shutting_down:
            reason = "shutdown"
        elif self.max_connections and self.open >= self.max_connections:
            reason = "listener"
        elif self.max_per_source and self.by_source.get(source, 0) >= self.max_per_source:
            reason = "source"
        if reason is not None:
            self.refused(reason)
            return reason
        self.open += 1
        self.by_source[source] = self.by_source.get(source, 0) + 1
        return None

    def release(self, source: str) -> None:
        self.open -= 1
        left = self.by_source.get(source, 1) - 1
        if left > 0:
            self.by_source[source] = left
        else:
            self.by_source.pop(source, None)


class FrameDeadline:
    """A timer started by a frame's first byte and stopped by its last (`update`)."""

    def __init__(self, clock: IReactorTime, seconds: float, expired: Callable[[], None]):
        self.clock = clock
        self.seconds = seconds
        self.expired = expired
        self._call: IDelayedCall | None = None

    def update(self, completed: bool, partial: bool) -> None:
        """After bytes were fed: `completed` if they ended a frame, `partial` if a frame is
        now unfinished. A frame that ends restarts the deadline for the next one."""
        if self._call is not None and (completed or not partial):
            self.cancel()
        if partial and self._call is None and self.seconds:
            self._call = self.clock.callLater(self.seconds, self._fire)

    def _fire(self) -> None:
        self._call = None
        self.expired()

    def cancel(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

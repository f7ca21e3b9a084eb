"""Twisted on the asyncio reactor, and the one way to cross from Twisted into asyncio.

DESIGN.md: create the event loop, make it current, then install the reactor, before anything
imports `twisted.internet.reactor`. Awaiting redis.asyncio directly inside `ensureDeferred` does
not work; wrap the coroutine in an asyncio future and hand it to `Deferred.fromFuture`. Each
crossing costs ~14 us, so callers cross once per batch, not once per call.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from twisted.internet.defer import Deferred

T = TypeVar("T")

log = logging.getLogger("tillgate")


def install_asyncio_reactor() -> asyncio.AbstractEventLoop:
    """Install the asyncio reactor (idempotent); return its event loop."""
    if "twisted.internet.reactor" in sys.modules:
        from twisted.internet import reactor

        loop = getattr(reactor, "_asyncioEventloop", None)
        if loop is None:
            raise RuntimeError("a non-asyncio Twisted reactor was installed before tillgate's")
        return loop
    from twisted.internet import asyncioreactor

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    asyncioreactor.install(loop)
    return loop


def deferred_from_coro(coro: Coroutine[Any, Any, T]) -> Deferred[T]:
    """Run an asyncio coroutine on the reactor's loop and get its outcome as a Deferred."""
    return Deferred.fromFuture(asyncio.ensure_future(coro))


def stop_on_signals(loop, stop, signals=(signal.SIGTERM, signal.SIGINT)) -> None:
    """The first SIGTERM/SIGINT calls `stop()`; another while stopping is ignored (an init system
    or a shell often sends two), rather than logged as an error.

    Through the loop (`add_signal_handler`), never in the signal handler itself: a handler runs
    between two bytecodes of whatever the process was doing, and one that logged while the
    process was writing a log line to stderr met a "reentrant call" error, lost its own
    `stop()`, and left the gateway running until it was killed (seen in CI, a serial line
    dropped just before SIGTERM).
    """
    stopping: list[int] = []

    def on_signal(signum: int) -> None:
        if stopping:
            return
        stopping.append(signum)
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop()

    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)

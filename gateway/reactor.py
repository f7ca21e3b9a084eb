"""Twisted on the asyncio reactor, and the one way to cross from Twisted into asyncio.

DESIGN.md: create the event loop, make it current, then install the reactor, before anything
imports `twisted.internet.reactor`. Awaiting redis.asyncio directly inside `ensureDeferred` does
not work; wrap the coroutine in an asyncio future and hand it to `Deferred.fromFuture`. Each
crossing costs ~14 us, so callers cross once per batch, not once per call.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from twisted.internet.defer import Deferred

T = TypeVar("T")


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

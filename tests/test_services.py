"""The service tree: reverse-order stop, bounded so that one stuck part cannot hang shutdown."""

from __future__ import annotations

import logging

from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock

from gateway.services import AsyncService, ServiceTree


class Recorder(AsyncService):
    def __init__(self, name: str, events: list[str], hang: bool = False):
        self.name = name
        self.events = events
        self.hang = hang

    async def start(self) -> None:
        self.events.append(f"start {self.name}")

    async def stop(self) -> None:
        self.events.append(f"stop {self.name}")
        if self.hang:
            await defer.Deferred()  # never fires, as a stuck drain would
        self.events.append(f"stopped {self.name}")


def test_children_stop_in_reverse_order():
    events: list[str] = []
    tree = ServiceTree([Recorder("store", events), Recorder("listener", events)])
    defer.ensureDeferred(tree.start())
    stopped = defer.ensureDeferred(tree.stop())
    assert stopped.called
    assert events == ["start store", "start listener", "stop listener", "stopped listener",
                      "stop store", "stopped store"]


def test_a_stuck_child_is_named_and_the_rest_still_stops(caplog):
    events: list[str] = []
    clock = MemoryReactorClock()
    tree = ServiceTree([Recorder("store", events), Recorder("com1", events, hang=True)],
                       reactor=clock, stop_budget=5.0)
    defer.ensureDeferred(tree.start())
    with caplog.at_level(logging.ERROR, logger="gateway.services"):
        stopped = defer.ensureDeferred(tree.stop())
        clock.advance(4.9)
        assert not stopped.called and "stop store" not in events
        clock.advance(0.2)
    assert stopped.called
    assert events[-2:] == ["stop store", "stopped store"]
    assert "stopped com1" not in events
    assert "com1 did not stop within" in caplog.text
    assert tree.stuck == ["com1"]


def test_without_a_reactor_stop_is_unbounded():
    events: list[str] = []
    tree = ServiceTree([Recorder("com1", events, hang=True)])
    defer.ensureDeferred(tree.start())
    assert not defer.ensureDeferred(tree.stop()).called

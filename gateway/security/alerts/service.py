"""The alert delivery service: one loop per configured sink, on the reactor's asyncio loop.

Each loop reads its group's alerts (its own pending ones first), delivers them in order and acks
each one after the sink took it. A failure leaves the alert pending and the loop waits before it
tries again, twice as long each time up to the sink's maximum; the first success resets the
wait. Alerts are ordered per sink, so a receiver that is down holds back the alerts behind it
and gets them all, each once, when it is back. A restart resumes from Redis (nothing is kept in
the process): an alert read but not acked is read again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from gateway.config.model import Config
from gateway.metrics import families as metrics
from gateway.reactor import deferred_from_coro
from gateway.security.alerts.queue import AlertQueue
from gateway.security.alerts.sinks import HTTPWebhookSink, LogSink, SMTPEmailSink
from gateway.services import AsyncService

log = logging.getLogger("tillgate.alerts")


@dataclass(slots=True)
class Backoff:
    initial: float
    maximum: float
    current: float = 0.0

    def failed(self) -> float:
        self.current = min(self.current * 2 if self.current else self.initial, self.maximum)
        return self.current

    def succeeded(self) -> None:
        self.current = 0.0


def build_sinks(reactor, config: Config) -> list[tuple[Any, Backoff]]:
    cfg = config.alerts
    sinks: list[tuple[Any, Backoff]] = []
    if cfg.log:
        sinks.append((LogSink(), Backoff(1.0, 60.0)))
    if cfg.webhook is not None:
        sinks.append((HTTPWebhookSink(reactor, cfg.webhook),
                      Backoff(cfg.webhook.retry_initial_ms / 1000, cfg.webhook.retry_max_s)))
    if cfg.email is not None:
        sinks.append((SMTPEmailSink(config.email, cfg.email, config.merchants),
                      Backoff(cfg.email.retry_initial_ms / 1000, cfg.email.retry_max_s)))
    return sinks


class AlertService(AsyncService):
    """Start after the store and before the listeners: the groups exist before any alert."""

    name = "alerts"

    def __init__(self, reactor, config: Config, queue_source, sinks=None, *,
                 deliver: bool = True):
        self.reactor = reactor
        # False in workers other than 0 of `serve --workers N`: the groups are made (an alert
        # raised here before worker 0 made them would be missed), worker 0 delivers.
        self.deliver = deliver
        self.config = config
        self.queue_source = queue_source  # callable -> AlertQueue (the store starts first)
        self.sinks = sinks if sinks is not None else build_sinks(reactor, config)
        self.queue: AlertQueue | None = None
        self._tasks: list[asyncio.Task] = []
        self._wake: list[asyncio.Event] = []
        self._stopping = False

    def reconfig(self, config: Config) -> None:
        """A reloaded config: the sinks and their settings need a restart (gateway/config/diff.py),
        but an e-mail also goes to the alert's merchant, whose address may have changed."""
        self.config = config
        for sink, _ in self.sinks:
            if isinstance(sink, SMTPEmailSink):
                sink.merchants = config.merchants

    async def start(self) -> None:
        self.queue = self.queue_source()
        self._stopping = False
        await deferred_from_coro(self._groups())
        # tasks made here, so a stop right after finds them
        for sink, backoff in self.sinks if self.deliver else ():
            wake = asyncio.Event()
            self._wake.append(wake)
            self._tasks.append(asyncio.ensure_future(self._run(sink, backoff, wake)))
        self.queue.listeners.append(self.poke)

    async def _groups(self) -> None:
        assert self.queue is not None
        for sink, _ in self.sinks:
            await self.queue.ensure_group(sink.name)

    async def _finish(self, tasks: list[asyncio.Task]) -> None:
        # redis-py may turn a cancellation in the middle of a command into a connection error,
        # which the loop takes for a store outage: the flag ends it at its next turn.
        self._stopping = True
        while not all(task.done() for task in tasks):
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=0.05)

    def poke(self) -> None:
        """An alert was raised here: sinks look now rather than at their next poll."""
        for wake in self._wake:
            wake.set()

    async def stop(self) -> None:
        if self.queue is not None and self.poke in self.queue.listeners:
            self.queue.listeners.remove(self.poke)
        tasks, self._tasks = self._tasks, []
        await deferred_from_coro(self._finish(tasks))
        self._wake.clear()

    async def _run(self, sink, backoff: Backoff, wake: asyncio.Event) -> None:
        assert self.queue is not None
        queue, cfg = self.queue, self.config.alerts
        poll = cfg.poll_ms / 1000
        while not self._stopping:
            wait = poll
            try:
                batch = await queue.read(sink.name, cfg.consumer)
            except Exception as e:  # the store is down: wait like a failed delivery
                if self._stopping:
                    return
                log.warning("alerts: cannot read the queue for %s: %s", sink.name, e)
                batch, wait = [], backoff.failed()
            else:
                if not batch:
                    backoff.succeeded()
            for alert_id, alert in batch:
                try:
                    await sink.deliver(alert, alert_id)
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    metrics.ALERT_FAILURES.labels(sink.name).inc()
                    wait = backoff.failed()
                    log.warning("alerts: %s could not deliver %s (%s); retry in %.2f s",
                                sink.name, alert_id, e, wait)
                    break
                await queue.ack(sink.name, alert_id)
                metrics.ALERTS_DELIVERED.labels(alert.rule, sink.name).inc()
                backoff.succeeded()
                wait = 0.0
            if wait:
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    if backoff.current:  # failing: sleep out the back-off, ignore pokes
                        await asyncio.sleep(wait)
                    else:
                        await asyncio.wait_for(wake.wait(), wait)

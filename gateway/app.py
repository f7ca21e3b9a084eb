"""Wiring: the service tree of a running gateway, built from a Config.

Start order: store (embedded redis-server if no URL, then the connection and its health probe),
the processor, the alert delivery (its groups exist before any alert), the back office (its
database and feed consumer, in the background: SQL being down never fails the start), each
configured listener, the admin HTTP listener. Stop order is the reverse: stop accepting, let
in-flight requests finish (bounded by gateway.shutdown_grace), close Redis, stop the embedded
server.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import Deferred

from gateway.admin.alerts import AlertsStatus
from gateway.admin.cards import Cards
from gateway.admin.claims import Claims
from gateway.admin.config import ConfigAPI
from gateway.admin.customers import Customers, CustomerTypes
from gateway.admin.ecards import Ecards
from gateway.admin.http import AdminHTTPService, api_resources
from gateway.admin.reports import Reports
from gateway.admin.rewards import Rewards
from gateway.admin.staff import Staff
from gateway.admin.terminals import Terminals
from gateway.admin.tokens import Tokens
from gateway.backoffice.service import BackofficeService
from gateway.backoffice.trimservice import JournalTrimService
from gateway.config.model import Config, Listener
from gateway.embedded_redis import EmbeddedRedis
from gateway.issuance.ecardqueue import EcardQueue
from gateway.ledger.compensate import Compensator
from gateway.ledger.processor import Processor
from gateway.ledger.store import Store, StoreError
from gateway.ledger.storeconnect import describe_store
from gateway.ledger.sweepservice import PointsSweepService
from gateway.ledger.undoservice import CompensationReplay
from gateway.metrics import families as metrics
from gateway.reactor import deferred_from_coro
from gateway.reloader import Outcome, Reloader
from gateway.security.alerts.record import Alert
from gateway.security.alerts.service import AlertService
from gateway.security.logmask import card_pattern, reconfigure_logging
from gateway.security.tokens import Guarded, TokenAuth
from gateway.services import AsyncService, ServiceTree
from gateway.storeoutage import DEDUP_SECONDS as OUTAGE_DEDUP_SECONDS
from gateway.storeoutage import Outage
from gateway.supervise import EmbeddedSupervisor
from gateway.web.members.pages import members_resource
from gateway.web.members.service import Members
from gateway.web.portal.service import Portal, portal_resource
from gateway.workers.role import WorkerRole
from protocols.model import Request, Result

log = logging.getLogger(__name__)

EMBEDDED_RESTART_ALERT = "embedded_redis_restart"
COMPENSATION_GRACE = 5.0  # seconds pending compensating reversals get at shutdown
EMBEDDED_RESTART_DEDUP_SECONDS = 86400

# (protocol, transport) -> "module:class" of the AsyncService that serves such a listener.
LISTENER_SERVICES = {
    ("iso8583", "tcp"): "gateway.listeners.iso:IsoTCPService",
    ("line", "tcp"): "gateway.listeners.line:LineTCPService",
    ("line", "serial"): "gateway.listeners.serial_port:SerialListenerService",
    ("iso8583", "serial"): "gateway.listeners.serial_port:SerialListenerService",
}


class StoreService(AsyncService):
    """Owns the store connection (and the embedded server, supervised), and knows its health.

    Health turns down at the first call that cannot reach Redis (the store tells its failure
    listeners) or when the embedded child exits, and up again when a probe answers: probes run
    every `probe_interval` while healthy and every `down_probe_interval` while not, so /healthz
    follows an outage within about a second each way. A failed call written (or its connection
    begun) before the store last answered again says nothing new and is not counted: one begun
    into a network outage fails only after the network heals.
    """

    name = "store"

    def __init__(self, reactor, config: Config, probe_interval: float = 5.0,
                 down_probe_interval: float = 0.5):
        self.reactor = reactor
        self.config = config
        self.probe_interval = probe_interval
        self.down_probe_interval = down_probe_interval
        self.store: Store | None = None
        self.embedded: EmbeddedRedis | None = None
        self.supervisor: EmbeddedSupervisor | None = None
        self.on_restarted: Callable[[int, str], Awaitable[object]] = _nothing
        self.on_recovered: Callable[[Outage], Awaitable[object]] = _nothing
        self.healthy = False
        self.outage: Outage | None = None  # since the store went down, until it answers
        self.unreported: list[Outage] = []  # ended, their alert not yet queued
        self._reporting = False
        self._answered_again = 0.0  # monotonic: when a probe last ended an outage
        self._probe_call = None
        self._probing = False
        self._downs = 0  # times marked down: a probe that began before the last one is stale

    async def start(self) -> None:
        from gateway.ledger.storeconnect import open_store

        self.store, self.embedded = await deferred_from_coro(
            open_store(self.config, role="gateway", say=log.info))
        self.store.failure_listeners.append(self._call_failed)
        if self.embedded is not None:
            self.supervisor = EmbeddedSupervisor(
                self.reactor, self.embedded, self.store.ping, on_down=self._mark_down,
                on_restarted=lambda count, why: self.on_restarted(count, why))
            self.supervisor.start()
        self.healthy = True
        metrics.REDIS_UP.set(1)
        self._schedule_probe(self.probe_interval)

    def _call_failed(self, error: Exception) -> None:
        if self.supervisor is not None:
            self.supervisor.check()  # a dead child is noticed now, not at the next check
        began = getattr(error, "began", None)
        if began is not None and began < self._answered_again:
            return  # stale: written before the store answered again
        if self.healthy:
            self._mark_down(f"a call failed: {error}")

    def _mark_down(self, why: str) -> None:
        self._downs += 1
        if self.healthy:
            log.warning("store down (%s): /healthz answers 503 until Redis answers", why)
            self.healthy = False
            self.outage = Outage.begin()
            metrics.REDIS_UP.set(0)
            self._schedule_probe(self.down_probe_interval)

    def _schedule_probe(self, delay: float) -> None:
        if self._probing or self.store is None:
            return  # the probe in flight schedules the next one
        if self._probe_call is not None and self._probe_call.active():
            self._probe_call.cancel()
        self._probe_call = self.reactor.callLater(delay, self._probe)

    def _probe(self) -> None:
        if self.store is None:
            return
        started = time.monotonic()
        self._probing = True
        downs = self._downs

        def done(ok):
            self._probing = False
            if downs != self._downs:  # marked down meanwhile: this answer may predate it
                self._schedule_probe(self.down_probe_interval)
                return
            if not ok and self.healthy:  # the probe noticed first: an outage all the same
                self._mark_down("a probe failed")
                return
            if ok and not self.healthy:
                log.warning("store answers again: /healthz answers 200")
                self._answered_again = time.monotonic()
                self._recovered()
            self.healthy = bool(ok)
            metrics.REDIS_UP.set(1 if ok else 0)
            if ok:
                metrics.REDIS_PING.observe(time.monotonic() - started)
                self._report_next()
            self._schedule_probe(self.probe_interval if ok else self.down_probe_interval)

        d = deferred_from_coro(self.store.ping())
        d.addCallbacks(done, lambda _failure: done(False))

    def _recovered(self) -> None:
        """Report the outage that just ended (on_recovered raises its alert)."""
        outage, self.outage = self.outage, None
        if outage is not None:
            self.unreported.append(outage.end())

    def _report_next(self) -> None:
        """Raise the alert of the oldest outage not yet reported, one at a time; one that
        fails (Redis failing again as the alert is queued) is retried after the next probe
        that answers, so no outage goes unreported."""
        if self.unreported and not self._reporting:
            self._reporting = True
            deferred_from_coro(self._report(self.unreported[0]))

    async def _report(self, outage: Outage) -> None:
        try:
            await self.on_recovered(outage)
            self.unreported.remove(outage)
        except StoreError as e:  # Redis failed again: the alert waits for it
            log.warning("the store's outage not reported yet (%s); retried once it answers", e)
        except Exception:  # the alert is a report; the store is up again without it
            self.unreported.remove(outage)
            log.exception("reporting the store's outage failed")
        finally:
            self._reporting = False

    async def stop(self) -> None:
        if self._probe_call is not None and self._probe_call.active():
            self._probe_call.cancel()
        if self.supervisor is not None:  # before the server is stopped on purpose
            await deferred_from_coro(self.supervisor.stop())
            self.supervisor = None
        store, self.store = self.store, None
        if store is not None:
            await deferred_from_coro(store.close())
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None
        metrics.REDIS_UP.set(0)


async def _nothing(*_args: object) -> None:
    pass


class ProcessorService(AsyncService):
    """Creates the Processor once the store is up; listeners hold this and call `submit`.

    A config reload replaces the Processor (`prepare`, then `switch`): requests submitted from
    then on go to the new one, while the old one finishes those it holds (queued this turn, or
    waiting on the store) under the config they began with, and is dropped once it has none.
    """

    name = "processor"

    def __init__(self, config: Config, store_service: StoreService):
        self.config = config
        self.store_service = store_service
        self.processor: Processor | None = None
        self._retired: list[Processor] = []  # replaced by a reload, still answering

    async def start(self) -> None:
        assert self.store_service.store is not None, "the store starts first"
        self.processor = Processor(self.config, self.store_service.store)

    async def stop(self) -> None:
        """Compensating reversals still pending (durable acknowledgement, docs/scaling.md) get
        a few seconds to be answered while the store is still open; the rest are logged."""
        for processor in (self.processor, *self._retired):
            if processor is None or not processor.compensator.pending:
                continue
            compensator = processor.compensator
            if not await deferred_from_coro(compensator.drain(COMPENSATION_GRACE)):
                log.warning("stopping with %d compensating reversal(s) unanswered: they stay "
                            "pending in Redis for the next start", len(compensator.pending))
            compensator.cancel()

    def prepare(self, config: Config) -> Processor:
        """A Processor for `config`, not yet used: its predecessor's store, clock and alert
        queue (the alert delivery listens to that queue)."""
        old = self.processor
        if old is None:
            raise RuntimeError("the processor is not running")
        return Processor(config, old.store, clock=old.clock, alerts=old.alerts)

    def switch(self, config: Config, processor: Processor) -> None:
        old, self.processor, self.config = self.processor, processor, config
        self._retired = [p for p in (*self._retired, old) if p is not None and p.in_flight]

    def submit(self, request: Request) -> Deferred[Result]:
        assert self.processor is not None, "submit before start"
        return self.processor.submit(request)

    def submit_to(self, request: Request, deliver: Callable[[Result], object]) -> None:
        """Processor.submit_to: `deliver(result)` instead of a Deferred (the ISO hot path)."""
        assert self.processor is not None, "submit before start"
        self.processor.submit_to(request, deliver)

    @property
    def in_flight(self) -> int:
        current = self.processor.in_flight if self.processor is not None else 0
        if self._retired:  # forget those that are done (asked at shutdown and by tests)
            self._retired = [p for p in self._retired if p.in_flight]
        return current + sum(p.in_flight for p in self._retired)


class Gateway:
    """The running daemon: a ServiceTree plus what /healthz reports.

    `worker`: this process is one of `serve --workers N` (None: the only one); the work that
    runs once per gateway then runs in worker 0 only (gateway/workers/role.py)."""

    def __init__(self, reactor, config: Config, worker: WorkerRole | None = None):
        self.reactor = reactor
        self.config = config
        self.worker = worker
        singletons = worker is None or worker.runs_singletons
        self.running = False
        self.store_service = StoreService(reactor, config)
        self.store_service.on_restarted = self._embedded_restarted
        self.store_service.on_recovered = self._store_recovered
        self.processor = ProcessorService(config, self.store_service)
        self.alerts = AlertService(reactor, config, self._alert_queue, deliver=singletons)
        self.backoffice = BackofficeService(config, lambda: self.store_service.store,
                                            self._raise_alert, consume=singletons)
        self.points_sweep = PointsSweepService(reactor, lambda: self.config, self._store)
        # Compensating reversals left pending in Redis by a gateway that stopped before they
        # were answered (durable acknowledgement, docs/ledger.md "Pending compensations").
        self.compensation_replay = CompensationReplay(reactor, self._compensator)
        # Journal trimming ([journal] trim = true): folds what SQL holds, so it runs on the back
        # office's engine too (docs/scaling.md, "Journal trimming").
        self.journal_trim = JournalTrimService(reactor, config, self._store,
                                               lambda: self.backoffice.shared.opened)
        # E-cards' e-mail (docs/ecards.md): the queue is a back-office table, so this service
        # runs on the back office's engine (and waits, nothing lost, while SQL is down).
        self.ecards = EcardQueue(config, self.backoffice.engine)
        self.listeners = [self._listener_service(lst) for lst in config.listeners
                          if singletons or lst.transport != "serial"]
        self.auth = auth = TokenAuth(config.security.tokens, self._store_client)
        self.reloader = Reloader(lambda: self.config, self._prepare_config, config.data_dir)
        store = self._store
        terminals = Terminals(config, store, auth)
        alerts_status = AlertsStatus(config, store)
        cards = Cards(config, store, auth, lambda: self.processor.processor)
        tokens = Tokens(config, store, auth)
        config_api = ConfigAPI(self.reloader, auth)
        # One engine for the process: the back office service's (opened and migrated at
        # start in the background, or at the first customer or report request, whichever
        # comes first).
        engine = self.backoffice.engine
        customers = Customers(config, store, auth, engine)
        customer_types = CustomerTypes(config, store, auth, engine)
        reports = Reports(config, engine, auth)
        reward_catalogue = Rewards(config, store, auth)
        reward_claims = Claims(config, store, auth)
        ecards = Ecards(config, store, auth, lambda: self.processor.processor, engine,
                        self.ecards.wake, lambda: self.ecards.clock())  # one clock (tests move it)
        # The web portal for people (docs/portal.md), under /ui/ on the same listener.
        self.portal = Portal(config, store, lambda: self.processor.processor, engine)
        self.portal.wake_ecards = self.ecards.wake
        # The card holders' member page (docs/members.md), under /m/ on the same listener.
        self.members = Members(config, store, lambda: self.processor.processor, engine)
        # What holds the config to answer with; a reload points each at the new one.
        self.config_holders: list[Any] = [terminals, alerts_status, cards, tokens, customers,
                                          customer_types, reports, reward_catalogue, reward_claims,
                                          self.portal, ecards, self.ecards, self.members]
        resources = api_resources({b"terminals": terminals,
                                   b"alerts": Guarded(alerts_status, "alerts:read", auth)},
                                  {b"cards": cards, b"tokens": tokens, b"config": config_api,
                                   b"customers": customers, b"customer-types": customer_types,
                                   b"reports": reports, b"rewards": reward_catalogue,
                                   b"claims": reward_claims,
                                   b"staff": Staff(auth, self.backoffice.engine),
                                   b"ecards": ecards})
        if config.portal.enabled:
            resources[b"ui"] = portal_resource(self.portal)
        if config.members.enabled:
            resources[b"m"] = members_resource(self.members)
        self.http = AdminHTTPService(reactor, config.http, self.health, auth, resources)
        self.lag_probe = metrics.ReactorLagProbe(reactor)
        self.gc_probe = metrics.GCPauseProbe()
        # The listeners drain within shutdown_grace; the rest (alerts, Redis) gets 10 s more.
        once = ([self.ecards, self.points_sweep, self.journal_trim, self.compensation_replay]
                if singletons else [])
        self.tree = ServiceTree([self.store_service, self.processor, self.alerts,
                                 self.backoffice, *once, *self.listeners, self.http],
                                reactor=reactor, stop_budget=config.shutdown_grace + 10.0)

    def _store(self) -> Store | None:
        return self.store_service.store

    def _replica_health(self) -> dict[str, str]:
        """With durable acknowledgement: which primaries' writes did not reach their replicas
        at the last probe (a cluster's by address), or "ok"."""
        store = self.store_service.store
        if not self.config.redis.acknowledge_after_replicas or store is None:
            return {}
        short = store.short_of_replicas()
        return {"replicas": "short on " + ", ".join(short) if short else "ok"}

    def _compensator(self) -> Compensator | None:
        processor = self.processor.processor
        return None if processor is None else processor.compensator

    def _store_client(self):
        """The Redis client that holds tokens made at run time; None while the store is down."""
        store = self.store_service.store
        return None if store is None else store.client

    def _alert_queue(self):
        assert self.processor.processor is not None, "the processor starts first"
        return self.processor.processor.alerts

    def _raise_alert(self, alert: Alert, key_value: str, ttl: int) -> Awaitable[str | None]:
        return self._alert_queue().raise_alert(alert, key_value, ttl)

    async def _embedded_restarted(self, restarts: int, why: str) -> None:
        """Raise the alert `embedded_redis_restart` (once per restart) through the alert
        queue, which lives in the restarted server: delivered like any other alert."""
        if self.processor.processor is None:
            return
        now = time.time()
        alert = Alert.for_gateway(EMBEDDED_RESTART_ALERT, f"{why}; restarted it on "
                                  f"{self.config.data_dir / 'redis'} (restart {restarts})", now)
        await self.processor.processor.alerts.raise_alert(alert, f"{int(now)}-{restarts}",
                                                          EMBEDDED_RESTART_DEDUP_SECONDS)

    async def _store_recovered(self, outage: Outage) -> None:
        """Raise the alert `redis_unreachable` for an outage that has just ended: only now can
        it be queued (gateway/storeoutage.py)."""
        if self.processor.processor is None:
            return
        alert = outage.alert(describe_store(self.config), time.time())
        await self.processor.processor.alerts.raise_alert(alert, outage.key,
                                                          OUTAGE_DEDUP_SECONDS)

    def _listener_service(self, listener: Listener) -> AsyncService:
        target = LISTENER_SERVICES[(listener.protocol, listener.transport)]
        module_name, class_name = target.split(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        return cls(self.reactor, listener, self.processor, self.config)

    def reload(self, trigger: str) -> Deferred[Outcome]:
        """Reload the config file (gateway/reloader.py); fires with the outcome."""
        return self.reloader.reload(trigger)

    def _prepare_config(self, new: Config) -> Callable[[], None]:
        """Build what `new` needs (nothing running is touched); return the commit, which only
        swaps references, so the whole switch happens between two requests on the reactor
        thread."""
        if not self.running:
            raise RuntimeError("the gateway is not running (starting or stopping)")
        processor = self.processor.prepare(new)
        card_numbers = card_pattern(new.programs.values())  # what the log masks

        def commit() -> None:
            self.config = new
            self.processor.switch(new, processor)
            self.auth.tokens = new.security.tokens  # removed ones are refused from now on
            for holder in self.config_holders:
                holder.config = new
            for listener in self.listeners:
                reconfig = getattr(listener, "reconfig", None)
                if reconfig is not None:
                    reconfig(new)
            self.alerts.reconfig(new)
            reconfigure_logging(new.log_level, card_numbers)

        return commit

    async def start(self) -> None:
        await self.tree.start()
        self.running = True
        self.lag_probe.start()
        self.gc_probe.install()

    async def stop(self) -> None:
        self.running = False
        # Every listener answers 91 from now on, before the first of them drains: the tree
        # stops them one after another, and a busy till on the last must not keep it alive.
        for listener in self.listeners:
            shut_down = getattr(listener, "shut_down", None)
            if shut_down is not None:
                shut_down()
        self.lag_probe.stop()
        self.gc_probe.remove()
        await self.tree.stop()

    def health(self) -> tuple[bool, dict]:
        store_ok = self.store_service.healthy
        # Till health is Redis's: the back office is reported, never a reason for a 503.
        return self.running and store_ok, {"redis": "up" if store_ok else "down",
                                           **self._replica_health(),
                                           "config": self.reloader.state(),
                                           **self.backoffice.health(), **self.ecards.health()}

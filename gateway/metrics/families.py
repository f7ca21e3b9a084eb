"""Prometheus metrics of the gateway, defined once, in one registry.

Labels never carry card numbers or PINs: only MTIs, operations, response codes, listener names
and reasons.

`multiprocess_mode` on each gauge says how `serve --workers N` sums it over the workers
(gateway/metrics/multiproc.py; "live": a dead worker's value is dropped): ignored, and nothing
changes, in a single process.

Process metrics (CPU, memory, file descriptors) come from prometheus_client's own
collectors; the reactor lag and Redis health probes below are ours.
"""

from __future__ import annotations

import gc
import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from gateway.metrics.hot import CounterChild, HistogramChild, HotCounter, HotHistogram
from protocols.model import RC, Op

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

BUILD_INFO = Gauge("tillgate_build_info", "Version of the running gateway", ["version"],
                   registry=REGISTRY, multiprocess_mode="livemax")

REACTOR_LAG = Histogram(
    "tillgate_reactor_lag_seconds",
    "How late a 1 s reactor timer fired: time the event loop was busy elsewhere",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
    registry=REGISTRY,
)
REDIS_UP = Gauge("tillgate_redis_up", "1 when the last Redis health probe answered",
                 registry=REGISTRY, multiprocess_mode="livemin")  # 0 if any worker is down
REDIS_PING = Histogram("tillgate_redis_ping_seconds", "Round trip of the Redis health probe",
                       buckets=_LATENCY_BUCKETS, registry=REGISTRY)
WORKER_RESTARTS = Counter(
    "tillgate_worker_restarts_total",
    "Times `serve --workers N` restarted a gateway worker that had exited", registry=REGISTRY)
EMBEDDED_REDIS_RESTARTS = Counter(
    "tillgate_embedded_redis_restarts_total",
    "Times the gateway restarted its embedded redis-server after it exited", registry=REGISTRY)
# Calls the store failed, by kind: timeout (no reply in time), connection (could not connect,
# lost, or an unreadable reply), error_reply (the server answered an error: a script bug),
# noscript (the script cache was empty, e.g. after a restart: reloaded and resent, not lost),
# unacknowledged (ran, but the batch's writes did not reach redis.acknowledge_after_replicas).
REDIS_ERROR_KINDS = ("timeout", "connection", "error_reply", "noscript", "unacknowledged")
REDIS_ERRORS = Counter("tillgate_redis_errors_total", "Redis calls that failed, by kind",
                       ["kind"], registry=REGISTRY)
for _kind in REDIS_ERROR_KINDS:  # every kind shows from the start, at 0
    REDIS_ERRORS.labels(_kind)
# Compensating reversals of requests answered 96 for want of replicas (ledger/compensate.py):
# pending until answered; then done by outcome: undone (00) or refused (any other answer).
COMPENSATIONS_PENDING = Gauge("tillgate_compensations_pending",
                              "Compensating reversals not yet answered", registry=REGISTRY)
COMPENSATION_OUTCOMES = ("undone", "refused")
COMPENSATIONS = Counter("tillgate_compensations_total",
                        "Compensating reversals answered, by outcome", ["outcome"],
                        registry=REGISTRY)
for _outcome in COMPENSATION_OUTCOMES:
    COMPENSATIONS.labels(_outcome)

# Updated for every message, on the reactor thread: lock-free (gateway/metrics/hot.py).
MESSAGES_IN = HotCounter("tillgate_messages_in_total", "Requests received",
                         ["listener", "mti"], registry=REGISTRY)
MESSAGES_OUT = HotCounter("tillgate_messages_out_total", "Responses sent",
                          ["listener", "mti", "code"], registry=REGISTRY)
OPERATION_LATENCY = HotHistogram("tillgate_operation_seconds",
                                 "From a request decoded to its response encoded, by operation",
                                 ["operation"], buckets=_LATENCY_BUCKETS, registry=REGISTRY)
IN_FLIGHT = Gauge("tillgate_in_flight", "Requests being processed", ["listener"], registry=REGISTRY,
                  multiprocess_mode="livesum")
CONNECTIONS = Gauge("tillgate_open_connections", "Open connections", ["listener"],
                    registry=REGISTRY, multiprocess_mode="livesum")
CONNECTIONS_TOTAL = Counter("tillgate_accepted_connections", "Connections accepted", ["listener"],
                            registry=REGISTRY)
CLOSED_FOR_CAUSE = Counter("tillgate_connections_closed_total",
                           "Connections the gateway closed, by reason", ["listener", "reason"],
                           registry=REGISTRY)
MALFORMED = Counter("tillgate_malformed_messages_total", "Messages refused as malformed",
                    ["listener", "reason"], registry=REGISTRY)
REFUSED = Counter("tillgate_connections_refused_total",
                  "Connections closed at accept: over the listener's max_connections "
                  "(listener), over max_connections_per_source (source), or while the gateway "
                  "shuts down (shutdown)", ["listener", "reason"], registry=REGISTRY)
SHED = Counter("tillgate_load_shed_total", "Requests answered 91 because in-flight work was full",
               ["listener"], registry=REGISTRY)
LINE_NOISE = Counter("tillgate_line_noise_bytes_total",
                     "Bytes skipped between STX/ETX frames (line noise, cut-short frames)",
                     ["listener"], registry=REGISTRY)
LINE_RETRANSMISSIONS = Counter("tillgate_line_retransmissions_total",
                               "STX/ETX retransmissions: sent (ours, on NAK or silence), "
                               "given_up (never ACKed), joined (a till's, joined to the request "
                               "in flight)", ["listener", "kind"], registry=REGISTRY)
UNMATCHED_REVERSALS = Counter("tillgate_unmatched_reversals_total",
                              "Reversals whose original was unknown (tombstoned)",
                              registry=REGISTRY)


# Config reloads (gateway/reloader.py): the outcome is one of a closed pair.
RELOAD_OUTCOMES = ("applied", "refused")
CONFIG_RELOADS = Counter("tillgate_config_reloads_total",
                         "Config reloads (SIGHUP, `tillgate config reload`, the admin API), by "
                         "outcome: applied, or refused whole with the running config kept",
                         ["outcome"], registry=REGISTRY)
for _outcome in RELOAD_OUTCOMES:
    CONFIG_RELOADS.labels(_outcome)  # both series exist from the start, at 0
CONFIG_LOADED = Gauge("tillgate_config_loaded_timestamp_seconds",
                      "When the running config was applied (start or last applied reload)",
                      registry=REGISTRY, multiprocess_mode="liveall")
CONFIG_GENERATION = Gauge("tillgate_config_generation",
                          "Configs applied since the process started: 1 at start, one more "
                          "per applied reload", registry=REGISTRY,
                          multiprocess_mode="liveall")  # per worker: did each reload?


GC_PAUSE = Histogram(
    "tillgate_gc_pause_seconds",
    "Collector passes of the Python garbage collector, by generation: the reactor stands still "
    "for each (a cause of p99 latency to look at beside the reactor lag)",
    ["generation"], buckets=(0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5),
    registry=REGISTRY,
)


class GCPauseProbe:
    """Times every garbage-collector pass (gc.callbacks) into GC_PAUSE."""

    def __init__(self) -> None:
        self._started = 0.0
        self._children = [GC_PAUSE.labels(str(generation)) for generation in range(3)]

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._children[info["generation"]].observe(time.perf_counter() - self._started)

    def install(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)


class ReactorLagProbe:
    """Schedules itself every `interval` seconds and records how late it ran."""

    def __init__(self, reactor, interval: float = 1.0):
        self.reactor = reactor
        self.interval = interval
        self._call = None
        self._expected = 0.0

    def start(self) -> None:
        self._schedule()

    def _schedule(self) -> None:
        self._expected = time.monotonic() + self.interval
        self._call = self.reactor.callLater(self.interval, self._fire)

    def _fire(self) -> None:
        REACTOR_LAG.observe(max(time.monotonic() - self._expected, 0.0))
        self._schedule()

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


class ListenerMetrics:
    """The metrics of one listener, with its labelled children looked up once.

    `labels()` costs microseconds per call, several times per message on the hot path; the
    children for a listener (and each MTI, code and operation seen) are kept here instead.

    Label values come from closed sets, never from what a peer sent (issue 12): a message's kind
    is a HOST-SPEC MTI, a TGL/1 operation, `format` or `undecodable`; a code is one of HOST-SPEC
    2.5's. Anything else is counted as `other`, and is not kept by its own value either, so 10,000
    made-up MTIs or op names add neither a series nor a dict entry.
    """

    KNOWN_MTIS = frozenset({"0100", "0110", "0200", "0210", "0220", "0230", "0400", "0401",
                            "0410", "0420", "0421", "0430", "0800", "0810"})
    # What `message_in`/`message_out` are called with: an MTI (ISO), an op name (TGL/1), or the
    # line codec's words for a payload with no readable kind.
    KINDS = KNOWN_MTIS | {op.value for op in Op} | {"format", "undecodable"}
    CODES = RC.ALL
    OTHER = "other"

    def __init__(self, listener: str):
        self.listener = listener
        self.connections = CONNECTIONS.labels(listener)
        self.accepted = CONNECTIONS_TOTAL.labels(listener)
        self.in_flight = IN_FLIGHT.labels(listener)
        self.shed = SHED.labels(listener)
        self._children: dict[tuple, object] = {}
        self._in: dict[str, CounterChild] = {}
        self._out: dict[tuple[str, str], CounterChild] = {}
        self._latency: dict[str, HistogramChild] = {}

    def _child(self, metric, *labels: str):
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def refused(self, reason: str) -> None:
        """A connection refused at accept, by cap (`listener`, `source`) or shutdown."""
        self._child(REFUSED, self.listener, reason).inc()

    # The three calls of every message look their child up in a dict of their own, keyed by
    # the plain label value(s): one dict lookup for every kind and code in the closed sets.
    # A value outside them is mapped to `other` and looked up again under that, never stored.
    def message_in(self, kind: str) -> None:
        child = self._in.get(kind)
        if child is None:
            label = kind if kind in self.KINDS else self.OTHER
            child = self._in.get(label)
            if child is None:
                child = self._in[label] = MESSAGES_IN.labels(self.listener, label)
        child.inc()

    def message_out(self, kind: str, code: str) -> None:
        child = self._out.get((kind, code))
        if child is None:
            key = (kind if kind in self.KINDS else self.OTHER,
                   code if code in self.CODES else self.OTHER)
            child = self._out.get(key)
            if child is None:
                child = self._out[key] = MESSAGES_OUT.labels(self.listener, *key)
        child.inc()

    def latency(self, operation: str, seconds: float) -> None:
        child = self._latency.get(operation)
        if child is None:
            label = operation if operation in self.KINDS else self.OTHER
            child = self._latency.get(label)
            if child is None:
                child = self._latency[label] = OPERATION_LATENCY.labels(label)
        child.observe(seconds)

    def malformed(self, reason: str) -> None:
        self._child(MALFORMED, self.listener, reason).inc()

    def closed(self, reason: str) -> None:
        self._child(CLOSED_FOR_CAUSE, self.listener, reason).inc()

# Alerts (gateway/alerts): rule names come from the config, sinks are log/webhook/email; never a
# card or scope value in a label.
ALERTS_RAISED = Counter("tillgate_alerts_raised_total",
                        "Alerts queued (once per rule, scope value and window)", ["rule"],
                        registry=REGISTRY)
ALERTS_SUPPRESSED = Counter("tillgate_alerts_suppressed_total",
                            "Alerts not queued again: already raised in this window", ["rule"],
                            registry=REGISTRY)
ALERTS_DELIVERED = Counter("tillgate_alerts_delivered_total", "Alerts delivered, by sink",
                           ["rule", "sink"], registry=REGISTRY)
ALERT_FAILURES = Counter("tillgate_alert_delivery_failures_total",
                         "Failed alert deliveries (retried with back-off), by sink", ["sink"],
                         registry=REGISTRY)
HTTP_CARDS_ISSUED = Counter("tillgate_http_cards_issued_total",
                            "Cards issued over the admin HTTP API (POST /v1/cards/issue); a card "
                            "found again for a retried order is not counted twice", ["program"],
                            registry=REGISTRY)
VELOCITY_REFUSALS = Counter("tillgate_velocity_refusals_total",
                            "Requests refused by a velocity rule (65, 62) or a disabled "
                            "terminal (58)", ["rule"], registry=REGISTRY)

# The back office's journal feed (gateway/backoffice): no labels but the closed set of causes.
BACKOFFICE_UP = Gauge("tillgate_backoffice_up",
                      "1 while the back office's SQL database answers (tills never need it)",
                      registry=REGISTRY, multiprocess_mode="livemax")
BACKOFFICE_LAG_ENTRIES = Gauge("tillgate_backoffice_lag_entries",
                               "Journal entries in the feed not yet acknowledged by the back "
                               "office", registry=REGISTRY, multiprocess_mode="livemax")
BACKOFFICE_LAG_SECONDS = Gauge("tillgate_backoffice_lag_seconds",
                               "Age of the oldest journal entry the back office has not yet "
                               "ingested (0 when none)", registry=REGISTRY,
                               multiprocess_mode="livemax")
BACKOFFICE_INGESTED = Counter("tillgate_backoffice_ingested_entries_total",
                              "Feed entries written to the back office (committed, then acked)",
                              registry=REGISTRY)
BACKOFFICE_BATCH = Histogram("tillgate_backoffice_batch_seconds",
                             "Time to write one batch of feed entries to SQL and acknowledge it",
                             buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                             registry=REGISTRY)
BACKOFFICE_FAILURES = Counter("tillgate_backoffice_failures_total",
                              "Feed consumer attempts that failed and were retried, by cause",
                              ["cause"], registry=REGISTRY)  # cause: sql | redis

# E-cards (gateway/issuance/ecards.py, ecardqueue.py): labels are program ids (from the config)
# and closed outcome sets, never a recipient or a card.
ECARDS_ORDERED = Counter("tillgate_ecards_ordered_total",
                         "E-cards ordered (an order asked again is not counted twice)",
                         ["program"], registry=REGISTRY)
ECARDS_DELIVERIES = Counter("tillgate_ecards_delivery_tries_total",
                            "E-card e-mail tries by outcome: sent, retry (SMTP down or a 4xx: "
                            "tried again later), failed (a 5xx, or max_attempts reached)",
                            ["outcome"], registry=REGISTRY)
ECARDS_QUEUED = Gauge("tillgate_ecards_queue",
                      "E-cards in the delivery queue by state (queued includes scheduled ones)",
                      ["state"], registry=REGISTRY, multiprocess_mode="livemax")
ECARDS_OLDEST_DUE = Gauge("tillgate_ecards_oldest_due_seconds",
                          "How long the oldest due e-card has waited for its e-mail (0: none)",
                          registry=REGISTRY, multiprocess_mode="livemax")
for _outcome in ("sent", "retry", "failed"):
    ECARDS_DELIVERIES.labels(_outcome)  # closed sets: every series exists from the start, at 0
for _state in ("queued", "sending", "failed"):
    ECARDS_QUEUED.labels(_state)

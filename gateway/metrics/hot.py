"""Counters and a histogram for the per-message hot path, without prometheus_client's locks.

prometheus_client guards every `inc()` and `observe()` with a mutex, for threads the gateway
does not have: every message is counted on the reactor thread, and /metrics is rendered on it
too. Three of those calls per message were about 3 us, 5 % of the gateway's CPU at 15,000
messages/s (bench/bench_e2e.py under py-spy). These keep plain integers instead and are read
by a collector at scrape time, under the same names, labels and types as prometheus_client's
own Counter and Histogram (`_total`, `_bucket{le}`, `_count`, `_sum`), so dashboards see no
difference. Use them only for metrics updated on the reactor thread.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString


class CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount


class HistogramChild:
    __slots__ = ("_bounds", "counts", "sum")

    def __init__(self, bounds: list[float]) -> None:
        self._bounds = bounds  # upper bounds, ascending, ending with +Inf
        self.counts = [0] * len(bounds)  # per bucket, not cumulative (summed at scrape)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self._bounds, value)] += 1
        self.sum += value


# Gauges read from a listener's own count when scraped (`set_function`), with that reader: a
# worker of `serve --workers N` sets them from it when it copies the hot families, since
# multiprocess mode cannot call a function at scrape time. One per gauge child: a new listener
# of the same name replaces the reader, as its `set_function` does.
COUNTED_GAUGES: dict[Any, Callable[[], float]] = {}


def count_gauge(child: Any, read: Callable[[], float]) -> None:
    """`child` (a prometheus_client Gauge child) shows `read()`: no update per message."""
    child.set_function(read)
    COUNTED_GAUGES[child] = read


# Every family made, for `serve --workers N`: each worker copies their values into its files of
# prometheus_client's multiprocess mode now and then (gateway/metrics/multiproc.py).
FAMILIES: list[_Family] = []


class _Family(Collector):
    """A labelled metric whose children are created on first use and kept."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 registry: CollectorRegistry | None):
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], object] = {}
        FAMILIES.append(self)
        if registry is not None:
            registry.register(self)

    def labels(self, *values: str):
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: labels {self.labelnames}, got {values}")
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._new_child()
        return child

    def _new_child(self) -> object:
        raise NotImplementedError

    def children(self) -> list[tuple[tuple[str, ...], object]]:
        return list(self._children.items())

    def describe(self) -> Iterator[Metric]:
        return iter([self._family()])

    def _family(self) -> Metric:
        raise NotImplementedError


class HotCounter(_Family):
    """prometheus_client.Counter's exposition; `name` without the `_total` suffix is fine too."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                 registry: CollectorRegistry | None = None):
        super().__init__(name.removesuffix("_total"), documentation, labelnames, registry)

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for labels, child in list(self._children.items()):
            assert isinstance(child, CounterChild)
            family.add_metric(list(labels), child.value)
        yield family


class HotHistogram(_Family):
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (), *,
                 buckets: Sequence[float], registry: CollectorRegistry | None = None):
        super().__init__(name, documentation, labelnames, registry)
        bounds = sorted(float(b) for b in buckets)
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        self.bounds = bounds

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self.bounds)

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for labels, child in list(self._children.items()):
            assert isinstance(child, HistogramChild)
            cumulative, buckets = 0, []
            for bound, count in zip(self.bounds, child.counts, strict=True):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))
            family.add_metric(list(labels), buckets, child.sum)
        yield family

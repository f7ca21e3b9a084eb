"""One `/metrics` for all workers of `tillgate serve --workers N`: prometheus_client's
multiprocess mode (docs/scaling.md, "Workers").

The supervisor points PROMETHEUS_MULTIPROC_DIR at `<data_dir>/metrics` (emptied at its start)
in the environment of the workers it starts, so they have it before they import
prometheus_client: every Counter, Gauge and Histogram then keeps its value in a memory-mapped
file per process, and whichever worker answers `/metrics` sums the
files of all (gauges as their `multiprocess_mode` says, gateway/metrics/families.py).

The hot families (gateway/metrics/hot.py: counted per message, without a lock) stay plain
integers, and the gauges read from a listener's count (`count_gauge`) are set from it: a
worker copies them into files of its own (`counter_hot<pid>.db`,
`histogram_hot<pid>.db`, in the format the collector reads) once a second, at a scrape it
answers, and at its stop. So the hot path costs nothing more, and another worker's hot counts
in a scrape are at most FLUSH_INTERVAL old. The supervisor itself had imported prometheus_client
before it knew it would supervise (the CLI's modules do): it copies its own few counters
(worker and embedded Redis restarts) into its files the same way (`copy_counters`).

Process metrics (CPU, memory) are per process and not summed: they are left out of a
multiprocess `/metrics`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from gateway.metrics.hot import (
    COUNTED_GAUGES,
    FAMILIES,
    CounterChild,
    HistogramChild,
    HotCounter,
    HotHistogram,
)

ENV = "PROMETHEUS_MULTIPROC_DIR"
FLUSH_INTERVAL = 1.0


def directory() -> Path | None:
    """The multiprocess directory of this process, or None (a single gateway process)."""
    path = os.environ.get(ENV)
    return Path(path) if path else None


def prepare_directory(path: Path) -> None:
    """Create `path` and remove what an earlier run left (its counts are not this run's)."""
    path.mkdir(parents=True, exist_ok=True)
    for leftover in path.glob("*.db"):
        leftover.unlink()


def process_gone(pid: int, path: Path) -> None:
    """A worker exited: its live gauges stop counting (its counters stay in the sums)."""
    mark_process_dead(pid, str(path))


class HotFiles:
    """This process's hot families, copied into its own multiprocess files."""

    def __init__(self, path: Path, pid: int | None = None):
        pid = os.getpid() if pid is None else pid
        self._counters = MmapedDict(str(path / f"counter_hot{pid}.db"))
        self._histograms = MmapedDict(str(path / f"histogram_hot{pid}.db"))
        self._keys: dict[tuple, str] = {}  # json keys, made once per child and bucket

    def _key(self, family, suffix: str, labels: tuple[str, ...], extra: tuple = ()) -> str:
        ident = (id(family), suffix, labels, extra)
        key = self._keys.get(ident)
        if key is None:
            names, values = family.labelnames, labels
            if extra:
                names, values = (*names, extra[0]), (*values, extra[1])
            key = self._keys[ident] = mmap_key(family.name, family.name + suffix, list(names),
                                               list(values), family.documentation)
        return key

    def flush(self) -> None:
        for child, read in list(COUNTED_GAUGES.items()):
            child.set(read())  # into this process's gauge file
        for family in FAMILIES:
            if isinstance(family, HotCounter):
                for labels, child in family.children():
                    assert isinstance(child, CounterChild)
                    self._counters.write_value(self._key(family, "_total", labels),
                                               child.value, 0.0)
            elif isinstance(family, HotHistogram):
                for labels, child in family.children():
                    assert isinstance(child, HistogramChild)
                    for bound, count in zip(family.bounds, child.counts, strict=True):
                        le = ("le", floatToGoString(bound))
                        self._histograms.write_value(self._key(family, "_bucket", labels, le),
                                                     count, 0.0)
                    self._histograms.write_value(self._key(family, "_sum", labels),
                                                 child.sum, 0.0)

    def copy_counters(self, counters) -> None:
        """Copy prometheus_client Counters of a process not in multiprocess mode."""
        for counter in counters:
            for metric in counter.collect():
                for sample in metric.samples:
                    if sample.name.endswith("_total"):
                        key = mmap_key(metric.name, sample.name, list(sample.labels),
                                       list(sample.labels.values()), metric.documentation)
                        self._counters.write_value(key, sample.value, 0.0)

    def close(self) -> None:
        self._counters.close()
        self._histograms.close()


class _FlushThenCollect(Collector):
    """The sums of every process's files, this process's hot counts copied in first."""

    def __init__(self, hot: HotFiles, path: Path):
        self.hot = hot
        self.files = MultiProcessCollector(None, str(path))

    def collect(self) -> Iterator[Metric]:
        self.hot.flush()
        return iter(self.files.collect())


def scrape_registry(hot: HotFiles, path: Path) -> CollectorRegistry:
    """The registry a worker's `/metrics` renders: all workers' metrics, summed."""
    registry = CollectorRegistry()
    registry.register(_FlushThenCollect(hot, path))
    return registry


_process_files: HotFiles | None = None


def process_hot_files() -> HotFiles | None:
    """This process's HotFiles, made at the first call; None outside multiprocess mode."""
    global _process_files
    path = directory()
    if path is None:
        return None
    if _process_files is None:
        _process_files = HotFiles(path)
    return _process_files


def exposition_registry(own: CollectorRegistry) -> CollectorRegistry:
    """What `/metrics` renders: `own` in a single process, all workers' sums in a worker."""
    path = directory()
    hot = process_hot_files()
    if path is None or hot is None:
        return own
    return scrape_registry(hot, path)

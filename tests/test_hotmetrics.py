"""The hot-path metrics read exactly as prometheus_client's own Counter and Histogram would."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from gateway.metrics.hot import HotCounter, HotHistogram

BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def exposition(registry: CollectorRegistry) -> list[str]:
    """The text format without `_created` samples (ours have none: they add nothing here)."""
    return [line for line in generate_latest(registry).decode().splitlines()
            if "_created" not in line]


labels = st.sampled_from(["0200", "0100", "0800"])
codes = st.sampled_from(["00", "51", "30"])


@given(st.lists(st.tuples(labels, codes), max_size=50))
def test_a_hot_counter_reads_like_a_counter(events):
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Counter("t_messages_total", "Responses", ["mti", "code"], registry=theirs)
    hot = HotCounter("t_messages_total", "Responses", ["mti", "code"], registry=ours)
    for mti, code in events:
        reference.labels(mti, code).inc()
        hot.labels(mti, code).inc()
    assert exposition(ours) == exposition(theirs)


@given(st.lists(st.tuples(labels, st.floats(0, 10, allow_nan=False)), max_size=50))
def test_a_hot_histogram_reads_like_a_histogram(observations):
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("t_seconds", "Latency", ["op"], buckets=BUCKETS, registry=theirs)
    hot = HotHistogram("t_seconds", "Latency", ["op"], buckets=BUCKETS, registry=ours)
    for op, value in observations:
        reference.labels(op).observe(value)
        hot.labels(op).observe(value)
    assert exposition(ours) == exposition(theirs)


def test_bucket_bounds_are_inclusive():
    registry = CollectorRegistry()
    hot = HotHistogram("t_seconds", "Latency", buckets=(0.01, 0.1), registry=registry)
    hot.labels().observe(0.01)
    assert 't_seconds_bucket{le="0.01"} 1.0' in exposition(registry)


def test_label_count_is_checked():
    hot = HotCounter("t_total", "x", ["a", "b"])
    with pytest.raises(ValueError, match="t: labels"):
        hot.labels("only one")

"""What a load run measured, and its report as text and JSON.

Latencies are kept whole (one float per answered request: a 60 s run at 20k/s is 1.2M floats,
10 MB) so percentiles are exact, not bucketed. Percentiles use the nearest-rank method.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class LoadStats:
    latencies: list[float] = field(default_factory=list)  # seconds, answered requests
    by_op: dict[str, list[float]] = field(default_factory=dict)
    codes: Counter[str] = field(default_factory=Counter)  # response code -> count
    errors: Counter[str] = field(default_factory=Counter)  # timeout, closed, unmatched, ...
    # operation -> requests sent as another operation: every card was at the gateway's limit
    held_back: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    elapsed: float = 0.0  # seconds of the measured run

    def answered(self, op: str, rc: str, seconds: float) -> None:
        self.latencies.append(seconds)
        self.by_op.setdefault(op, []).append(seconds)
        self.codes[rc] += 1

    @property
    def completed(self) -> int:
        return len(self.latencies)

    def summary(self, settings: dict[str, Any] | None = None) -> dict[str, Any]:
        lat = sorted(self.latencies)
        elapsed = self.elapsed or math.nan
        ops = {}
        for op, values in sorted(self.by_op.items()):
            values = sorted(values)
            ops[op] = {"count": len(values), "p50_ms": _ms(percentile(values, 50)),
                       "p99_ms": _ms(percentile(values, 99))}
        return {
            "settings": settings or {},
            "duration_s": round(self.elapsed, 3),
            "sent": self.sent,
            "completed": self.completed,
            "throughput_per_s": round(self.completed / elapsed, 1) if self.completed else 0.0,
            "response_codes": dict(sorted(self.codes.items())),
            "errors": dict(sorted(self.errors.items())),
            "latency_ms": {
                "p50": _ms(percentile(lat, 50)), "p95": _ms(percentile(lat, 95)),
                "p99": _ms(percentile(lat, 99)), "max": _ms(lat[-1] if lat else math.nan),
                "mean": _ms(sum(lat) / len(lat) if lat else math.nan),
            },
            "operations": ops,
            "held_back": dict(sorted(self.held_back.items())),
        }


def _ms(seconds: float) -> float | None:
    return None if math.isnan(seconds) else round(seconds * 1000, 3)


def render_text(summary: dict[str, Any]) -> str:
    s, lat = summary, summary["latency_ms"]
    settings = ", ".join(f"{k}={v}" for k, v in s["settings"].items())
    lines = [
        f"load run: {settings}",
        f"  duration     {s['duration_s']:.1f} s",
        f"  requests     {s['sent']} sent, {s['completed']} answered",
        f"  throughput   {s['throughput_per_s']:.1f} answered/s",
        "  latency ms   " + "  ".join(f"{k} {_show(lat[k])}" for k in
                                      ("p50", "p95", "p99", "max")),
        "  responses    " + (", ".join(f"{rc}: {n}" for rc, n in s["response_codes"].items())
                             or "none"),
        "  errors       " + (", ".join(f"{k}: {n}" for k, n in s["errors"].items()) or "none"),
    ]
    if s.get("held_back"):
        lines.append("  held back    " + ", ".join(f"{op}: {n}" for op, n in
                                                   s["held_back"].items())
                     + " (sent as other operations: every card was at its limit; more --cards"
                     " spread them)")
    for op, o in s["operations"].items():
        lines.append(f"  {op:<12} {o['count']:>8}  p50 {_show(o['p50_ms'])} ms  "
                     f"p99 {_show(o['p99_ms'])} ms")
    return "\n".join(lines)


def _show(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.2f}"


def render_json(summary: dict[str, Any]) -> str:
    return json.dumps(summary, indent=2)

"""Writes docs/grafana/tillgate.json, the Grafana dashboard for tillgate's /metrics.

    python docs/grafana/build_dashboard.py     # after changing a panel below

Kept as code so that each panel's query is readable and the test suite can check that every
metric a panel uses is one the gateway exports (tests/test_grafana_dashboard.py). Import the
JSON in Grafana (Dashboards -> New -> Import) and pick the Prometheus data source.
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).with_name("tillgate.json")

# (title, unit, [(query, legend)], width): one row of the grid after another, 24 units wide.
PANELS = [
    ("Answers per second by response code", "reqps",
     [('sum by (code) (rate(tillgate_messages_out_total[1m]))', "{{code}}")], 12),
    ("Requests per second by MTI and listener", "reqps",
     [('sum by (listener, mti) (rate(tillgate_messages_in_total[1m]))', "{{listener}} {{mti}}")],
     12),
    ("Latency p50 / p99 by operation", "s",
     [('histogram_quantile(0.5, sum by (le, operation) '
       '(rate(tillgate_operation_seconds_bucket[5m])))', "p50 {{operation}}"),
      ('histogram_quantile(0.99, sum by (le, operation) '
       '(rate(tillgate_operation_seconds_bucket[5m])))', "p99 {{operation}}")], 12),
    ("In flight and load shed (91)", "short",
     [("sum by (listener) (tillgate_in_flight)", "in flight {{listener}}"),
      ("sum by (listener) (rate(tillgate_load_shed_total[1m]))", "shed/s {{listener}}")], 12),
    ("Connections", "short",
     [("sum by (listener) (tillgate_open_connections)", "open {{listener}}"),
      ("sum by (listener, reason) (rate(tillgate_connections_closed_total[5m]))",
       "closed/s {{listener}} {{reason}}")], 12),
    ("Malformed messages and unmatched reversals", "short",
     [("sum by (listener, reason) (rate(tillgate_malformed_messages_total[5m]))",
       "{{listener}} {{reason}}"),
      ("rate(tillgate_unmatched_reversals_total[5m])", "unmatched reversals/s")], 12),
    ("Redis", "s",
     [("tillgate_redis_up", "up (1)"),
      ("histogram_quantile(0.99, sum by (le) (rate(tillgate_redis_ping_seconds_bucket[5m])))",
       "ping p99"),
      ("sum by (kind) (rate(tillgate_redis_errors_total[5m]))", "errors/s {{kind}}")], 8),
    ("Reactor lag and GC pauses", "s",
     [("histogram_quantile(0.99, sum by (le) (rate(tillgate_reactor_lag_seconds_bucket[5m])))",
       "reactor lag p99"),
      ("sum by (generation) (rate(tillgate_gc_pause_seconds_sum[1m]))",
       "GC s/s gen {{generation}}")], 8),
    ("Process", "short",
     [("rate(process_cpu_seconds_total[1m])", "CPU (cores)"),
      ("process_resident_memory_bytes / 2^20", "RSS MiB"),
      ("process_open_fds", "open fds")], 8),
    ("Security: alerts and velocity refusals", "short",
     [("sum by (rule) (rate(tillgate_alerts_raised_total[5m]))", "raised/s {{rule}}"),
      ("sum by (rule) (rate(tillgate_velocity_refusals_total[5m]))", "refused/s {{rule}}"),
      ("sum by (sink) (rate(tillgate_alert_delivery_failures_total[5m]))",
       "delivery failures/s {{sink}}")], 12),
    ("Serial and TGL/1 lines", "short",
     [("sum by (listener, kind) (rate(tillgate_line_retransmissions_total[5m]))",
       "{{listener}} {{kind}}"),
      ("sum by (listener) (rate(tillgate_line_noise_bytes_total[5m]))",
       "noise bytes/s {{listener}}")], 12),
    ("Cards issued over HTTP (per hour)", "short",
     [("sum by (program) (increase(tillgate_http_cards_issued_total[1h]))", "{{program}}")],
     12),
    ("Embedded Redis: restarts (per hour) and store up", "short",
     [("increase(tillgate_embedded_redis_restarts_total[1h])", "restarts"),
      ("tillgate_redis_up", "store up (1)")], 12),
    ("Connections refused (caps, shutdown) and cut off (frame deadline)", "short",
     [("sum by (listener, reason) (rate(tillgate_connections_refused_total[5m]))",
       "refused/s {{listener}} {{reason}}"),
      ('sum by (listener) (rate(tillgate_connections_closed_total{reason="frame_timeout"}[5m]))',
       "frame deadline/s {{listener}}")], 24),
    ("Config reloads (per hour) and the running generation", "short",
     [("sum by (outcome) (increase(tillgate_config_reloads_total[1h]))", "{{outcome}}"),
      ("tillgate_config_generation", "generation")], 24),
    ("Back office: feed lag (tills never wait for it)", "short",
     [("tillgate_backoffice_lag_entries", "entries not yet in SQL"),
      ("tillgate_backoffice_lag_seconds", "age of the oldest (s)"),
      ("tillgate_backoffice_up", "SQL up (1)")], 12),
    ("Back office: ingest", "short",
     [("rate(tillgate_backoffice_ingested_entries_total[1m])", "entries/s into SQL"),
      ("histogram_quantile(0.99, sum by (le) (rate(tillgate_backoffice_batch_seconds_bucket[5m])))",
       "batch p99 (s)"),
      ("sum by (cause) (rate(tillgate_backoffice_failures_total[5m]))", "failures/s {{cause}}")],
     12),
]


def panel(number: int, x: int, y: int, title: str, unit: str, targets, width: int) -> dict:
    return {
        "id": number, "type": "timeseries", "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": width, "h": 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [{"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend,
                     "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                    for i, (expr, legend) in enumerate(targets)],
    }


def dashboard() -> dict:
    panels, x, y = [], 0, 0
    for number, (title, unit, targets, width) in enumerate(PANELS, start=1):
        if x + width > 24:
            x, y = 0, y + 8
        panels.append(panel(number, x, y, title, unit, targets, width))
        x += width
    return {
        "title": "tillgate", "uid": "tillgate", "schemaVersion": 39, "version": 1,
        "tags": ["tillgate", "stored value"], "timezone": "utc", "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource",
                                 "query": "prometheus", "label": "Prometheus"}]},
        "panels": panels,
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(dashboard(), indent=2) + "\n")
    print(f"wrote {OUT}")

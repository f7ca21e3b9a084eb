"""docs/grafana/tillgate.json: written by its builder, and every metric its panels query is one
the gateway exports (a renamed metric must not leave an operator's panel silently empty)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from gateway.metrics import families as metrics

ROOT = Path(__file__).resolve().parent.parent
BUILDER = ROOT / "docs" / "grafana" / "build_dashboard.py"
METRIC = re.compile(r"\b((?:tillgate|process)_[a-z0-9_]+)")
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def builder():
    spec = importlib.util.spec_from_file_location("build_dashboard", BUILDER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_json_is_what_the_builder_writes():
    committed = json.loads((ROOT / "docs" / "grafana" / "tillgate.json").read_text())
    assert committed == builder().dashboard(), "run python docs/grafana/build_dashboard.py"


def test_every_queried_metric_is_exported():
    exported = {family.name for family in metrics.REGISTRY.collect()}
    queried = set()
    for panel in builder().dashboard()["panels"]:
        for target in panel["targets"]:
            queried.update(METRIC.findall(target["expr"]))
    assert queried, "no metric found in the queries"
    missing = set()
    for name in queried:
        base = name
        for suffix in SUFFIXES:
            base = base.removesuffix(suffix)
        if base not in exported:
            missing.add(name)
    assert not missing, f"queried but not exported: {sorted(missing)}"


def test_panels_do_not_overlap():
    cells = set()
    for panel in builder().dashboard()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, panel["title"]
                cells.add((x, y))

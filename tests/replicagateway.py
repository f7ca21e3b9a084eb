"""A real `tillgate serve` on a local primary + replica + Sentinel set with durable
acknowledgement on (docs/scaling.md "Replicas"), for the tests that kill things under it."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.embedded_sentinel import LocalSentinelSet
from gateway.pytest_plugin import RunningGateway, default_base_config
from gateway.testing import GatewayProcess


def start_gateway(directory: Path, nodes: LocalSentinelSet, replicas: int,
                  timeout_ms: int) -> RunningGateway:
    """The default config on `nodes` (`redis+sentinel://`), `redis.timeout = 3`, and
    `acknowledge_after_replicas` / `acknowledge_timeout_ms` as given."""
    process = GatewayProcess.prepare(directory, base=default_base_config(), redis_url=nodes.url)
    text = process.config_path.read_text()
    text = re.sub(r"(?m)^\[redis\]$", "[redis]\ntimeout = 3\nacknowledge_after_replicas = "
                  f"{replicas}\nacknowledge_timeout_ms = {timeout_ms}", text, count=1)
    process.config_path.write_text(text)
    process.start(timeout=30)
    return RunningGateway(process)

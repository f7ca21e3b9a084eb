"""Session-wide real parts: one redis-server on a free loopback port for the whole test run,
and the guard that no PIN or PIN block the suite makes ever reaches a log (tests/pinguard.py:
its hooks and autouse fixture are imported here, which registers them).

Tests that touch the store take `redis_url` (and get a flushed database) or `redis_server`
(the running `EmbeddedRedis`). Nothing here is a fake: it is the same redis-server binary the
gateway embeds in production-like single-node runs.
"""

from __future__ import annotations

import pytest
import redis
from pinguard import (
    no_pin_material_in_logs,
    pytest_configure,
    pytest_sessionfinish,
    pytest_terminal_summary,
)

from gateway.embedded_redis import EmbeddedRedis, free_port

__all__ = ["no_pin_material_in_logs", "pytest_configure", "pytest_sessionfinish",
           "pytest_terminal_summary"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=free_port(), appendonly=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()

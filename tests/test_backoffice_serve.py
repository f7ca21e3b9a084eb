"""The back office inside a real `tillgate serve` and `tillgate backoffice sync` as commands:
/healthz reports it without ever failing tills over it, and a kill -9 of the gateway while its
consumer ingests under load loses and doubles nothing in SQL."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import time

import pytest_twisted
import redis
from sqlalchemy import select
from test_backoffice_schema import config_for

from gateway.backoffice import schema
from gateway.backoffice.db import create_engine, database_url
from gateway.embedded_redis import free_port
from gateway.reactor import deferred_from_coro
from gateway.testing import GatewayProcess


def backoffice_gateway(tmp_path, url: str, extra: str = "") -> GatewayProcess:
    return GatewayProcess.prepare(tmp_path, extra=f'[backoffice]\nurl = "{url}"\n{extra}')


def health(gateway: GatewayProcess) -> tuple[int, dict]:
    status, body = gateway.http_get("/healthz")
    return status, json.loads(body)


def wait_until(condition, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


def run(gateway: GatewayProcess, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(gateway.command(*args), capture_output=True, text=True, timeout=120,
                          cwd=gateway.workdir)


def issue(gateway: GatewayProcess, count: int) -> None:
    out = run(gateway, "cards", "issue", "--program", "gift", "--count", str(count),
              "--activate", "10.00", "--out", str(gateway.workdir / f"cards{time.time()}.csv"))
    assert out.returncode == 0, out.stderr


def redis_of(gateway: GatewayProcess) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(gateway.workdir / "var" / "redis" / "redis.sock"))


def journals(gateway: GatewayProcess) -> list[tuple[str, str, int, int, int]]:
    """Every card's journal in Redis, as (card id, entry id, seq, dv, bal), sorted."""
    import msgpack

    client = redis_of(gateway)
    try:
        out = []
        for key in client.scan_iter(match="{c:*}:j", count=1000):
            cid = key.decode()[3:-3]
            for entry_id, fields in client.xrange(key):
                e = msgpack.unpackb(fields[b"e"])
                out.append((cid, entry_id.decode(), e["n"], e["dv"], e["bal"]))
        return sorted(out)
    finally:
        client.close()


async def sql_rows(url: str, tmp_path) -> list[tuple[str, str, int, int, int]]:
    engine = create_engine(database_url(config_for(url, tmp_path)))
    t = schema.journal_entries.c
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(t.card_id, t.entry_id, t.seq, t.dv, t.bal))).all()
        return sorted(tuple(r) for r in rows)
    finally:
        await engine.dispose()


def sqlite_count(path) -> int:
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            return db.execute("SELECT count(*) FROM journal_entries").fetchone()[0]
    except sqlite3.OperationalError:  # not created or migrated yet
        return 0


def metric(gateway: GatewayProcess, name: str) -> float:
    text = gateway.http_get("/metrics")[1].decode()
    found = re.search(rf"(?m)^{name} (\S+)$", text)
    return float(found.group(1)) if found else 0.0


def test_sql_down_is_reported_and_never_fails_tills(tmp_path):
    dead = f"postgresql://tillgate@127.0.0.1:{free_port()}/nothing"
    gateway = backoffice_gateway(tmp_path, dead, "lag_alert_seconds = 1\n").start()
    try:
        status, body = health(gateway)
        assert status == 200 and body["status"] == "ok" and body["redis"] == "up"
        assert body["backoffice"] == "down"
        issue(gateway, 3)  # tills and operators go on; the entries wait in the feed
        wait_until(lambda: health(gateway)[1]["backoffice_lag_entries"] == 3, what="lag")
        assert health(gateway)[0] == 200
        assert metric(gateway, "tillgate_backoffice_up") == 0
        assert "cannot open it" in gateway.log and "tills are served" in gateway.log
        # past lag_alert_seconds: the alert, once (per hour), through the alert sinks
        wait_until(lambda: "the back office is" in gateway.log, what="lag alert")
        time.sleep(1.5)  # a second measurement past the threshold: not raised again
        assert gateway.log.count("ALERT") == 1
    finally:
        assert gateway.stop() == 0


@pytest_twisted.ensureDeferred
async def test_healthz_lag_and_sync_once_with_the_consumer_off(backoffice_url, tmp_path):
    gateway = backoffice_gateway(tmp_path, backoffice_url, "enabled = false\n").start()
    try:
        assert health(gateway)[1]["backoffice"] == "disabled"
        issue(gateway, 4)
        lagging = wait_until(lambda: health(gateway)[1]["backoffice_lag_entries"] == 4 and
                             metric(gateway, "tillgate_backoffice_lag_entries") == 4, what="lag")
        assert lagging
        out = run(gateway, "backoffice", "sync", "--once")
        assert out.returncode == 0, out.stderr
        assert "ingested 4 feed entries; 0 left in the feed" in out.stdout
        again = run(gateway, "backoffice", "sync", "--once")
        assert "ingested 0 feed entries" in again.stdout
        wait_until(lambda: health(gateway)[1]["backoffice_lag_entries"] == 0, what="lag gone")
        rows = await deferred_from_coro(sql_rows(backoffice_url, tmp_path))
        assert rows == journals(gateway) and len(rows) == 4
        audit = run(gateway, "audit")
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert "back office: 4 entries equal in SQL, 0 not ingested yet" in audit.stdout
    finally:
        assert gateway.stop() == 0


@pytest_twisted.ensureDeferred
async def test_kill_9_while_ingesting_under_load_loses_and_doubles_nothing(backoffice_url,
                                                                           tmp_path):
    gateway = backoffice_gateway(tmp_path, backoffice_url).start()
    load = None
    try:
        wait_until(lambda: health(gateway)[1]["backoffice"] == "up", what="back office up")
        load = subprocess.Popen(
            gateway.command("sim", "load", "--duration", "120", "--terminals", "4", "--cards",
                            "40", "--mix", "redeem=1,reload=1", "--quiet"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=gateway.workdir)
        # killed in the middle: the consumer has written some and the feed holds more
        # (deadlines for a busy shared machine: the load is killed with the gateway anyway)
        wait_until(lambda: metric(gateway, "tillgate_backoffice_ingested_entries_total") > 300,
                   timeout=90, what="ingesting under load")
        gateway.stop(signal.SIGKILL)
        load.kill()
        load.wait()
        gateway.start()
        wait_until(lambda: health(gateway)[1]["backoffice_lag_entries"] == 0, timeout=90,
                   what="caught up")
        journals_after_restart = journals(gateway)
        before = await deferred_from_coro(sql_rows(backoffice_url, tmp_path))
        assert len(before) > 300
        assert before == journals_after_restart  # every entry once: none lost, none doubled
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.wait()
        assert gateway.stop() in (0, -9)


def test_sync_says_so_when_sql_cannot_be_reached(tmp_path):
    dead = f"postgresql://tillgate@127.0.0.1:{free_port()}/nothing"
    gateway = backoffice_gateway(tmp_path, dead)
    out = subprocess.run(gateway.command("backoffice", "sync", "--once"), capture_output=True,
                         text=True, timeout=60, cwd=gateway.workdir)
    assert out.returncode == 2 and "cannot open it" in out.stderr
    assert "Traceback" not in out.stderr


@pytest_twisted.ensureDeferred
async def test_sync_runs_until_sigterm_and_keeps_up(tmp_path):
    url = f"sqlite:///{tmp_path / 'bo.sqlite3'}"
    gateway = backoffice_gateway(tmp_path, url, "enabled = false\n").start()
    log = open(tmp_path / "sync.log", "wb")
    sync = subprocess.Popen(gateway.command("backoffice", "sync"), stdout=log, stderr=log,
                            cwd=gateway.workdir)
    log.close()
    try:
        issue(gateway, 3)
        wait_until(lambda: sqlite_count(tmp_path / "bo.sqlite3") == 3, what="sync ingested")
        issue(gateway, 2)  # it goes on consuming
        wait_until(lambda: sqlite_count(tmp_path / "bo.sqlite3") == 5, what="ingested more")
        started = time.monotonic()
        sync.send_signal(signal.SIGTERM)
        assert sync.wait(10) == 0
        assert time.monotonic() - started < 5  # a stop is noticed within the read's second
        out = (tmp_path / "sync.log").read_text()
        assert "ingested 5 feed entries; 0 left in the feed" in out
        rows = await deferred_from_coro(sql_rows(url, tmp_path))
        assert rows == journals(gateway)
    finally:
        if sync.poll() is None:
            sync.kill()
            sync.wait()
        assert gateway.stop() == 0

"""The back office's database: one async SQLAlchemy engine, built from `[backoffice]`.

The gateway runs on the asyncio reactor, so the back office talks SQL the same way it talks to
Redis: asynchronously, on the reactor's loop (aiosqlite and asyncpg as the drivers). Plain URLs
are accepted and given those drivers: `sqlite:///path` and `postgresql://...`.

SQLite is the embedded default (`<data_dir>/backoffice.sqlite3`). It is opened in WAL mode, so
readers (reports, the admin API) never block the feed's writer, with a busy timeout so that two
writers wait for each other instead of failing with "database is locked".
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.config.model import Config

SQLITE_FILE = "backoffice.sqlite3"
SQLITE_BUSY_TIMEOUT_MS = 10_000
ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}


def database_url(config: Config) -> URL:
    """The URL of the configured back office, with its async driver and its password."""
    bo = config.backoffice
    if bo.url is None:
        return make_url(f"sqlite:///{Path(config.data_dir) / SQLITE_FILE}").set(
            drivername="sqlite+aiosqlite")
    url = make_url(bo.url)
    backend = url.get_backend_name()
    url = url.set(drivername=f"{backend}+{ASYNC_DRIVERS[backend]}")
    if bo.password is not None:
        url = url.set(password=bo.password.text())
    return url


def describe(url: URL) -> str:
    """For logs and `backoffice status`: the URL with its password hidden."""
    return url.render_as_string(hide_password=True)


def create_engine(url: URL) -> AsyncEngine:
    """An engine for `url`; for a SQLite file, creates its directory and sets the pragmas."""
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # pool_pre_ping: a PostgreSQL restarted under us costs one reconnect, not one failed batch.
    return create_async_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # The feed acknowledges an entry once its commit returns, so a commit must survive a power
    # cut too: FULL syncs the WAL at every commit (NORMAL may lose the last ones). The feed
    # commits in batches, which keeps that one fsync per batch.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()

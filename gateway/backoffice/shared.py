"""The back office's engine inside `tillgate serve`, for the admin API's customer resources: one
engine for the process, opened and migrated at its first use (never at the gateway's start, so
SQL being down never stops a till), and tried again at the next use after a failure.

The back office service (gateway/backoffice/service.py) holds the one SharedEngine of the
process: it opens it at start, in the background, retrying while SQL is down, for the feed
consumer; the customer resources take its `engine` getter, which opens it now if the service
has not yet.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.backoffice.connect import UNREACHABLE, BackofficeUnavailable, unavailable
from gateway.backoffice.db import create_engine, database_url
from gateway.backoffice.migrate import upgrade
from gateway.backoffice.summaries import configured_zones
from gateway.config.model import Config
from gateway.reactor import deferred_from_coro
from gateway.services import AsyncService


class SharedEngine(AsyncService):
    """`await shared.engine()`: the migrated engine, or BackofficeUnavailable saying why."""

    name = "backoffice-engine"

    def __init__(self, config: Config):
        self.config = config
        self._engine: AsyncEngine | None = None
        self._opening = asyncio.Lock()

    async def engine(self) -> AsyncEngine:
        async with self._opening:
            if self._engine is None:
                url = database_url(self.config)
                try:
                    # In a worker thread, with a loop and an engine of its own: DDL (on SQLite
                    # a migration may copy a whole table) never holds up the reactor's thread.
                    await asyncio.to_thread(_migrate_in_own_loop, url,
                                            configured_zones(self.config.programs))
                except UNREACHABLE as e:
                    raise unavailable(url, e) from e
                self._engine = create_engine(url)
            return self._engine

    @property
    def opened(self) -> AsyncEngine | None:
        """The engine if it is open and migrated; None otherwise (never opens it)."""
        return self._engine

    async def stop(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await deferred_from_coro(engine.dispose())


def _migrate_in_own_loop(url: URL, zones: dict[str, str]) -> None:
    """In a worker thread: bring the database to the newest schema with an engine of its own."""
    async def migrate() -> None:
        engine = create_engine(url)
        try:
            await upgrade(engine, zones=zones)
        finally:
            await engine.dispose()

    asyncio.run(migrate())


__all__ = ["BackofficeUnavailable", "SharedEngine"]

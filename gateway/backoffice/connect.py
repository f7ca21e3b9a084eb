"""Opening the back office for a command or a service: the engine, at the newest schema.

A database that cannot be reached (or refuses us) becomes `BackofficeUnavailable`, with a message
that names the database (password hidden) and the driver's reason, for the CLI to print as one
line and for `tillgate serve` to log while it keeps serving tills.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import URL
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.backoffice.db import create_engine, database_url, describe
from gateway.backoffice.migrate import upgrade
from gateway.backoffice.summaries import configured_zones
from gateway.config.model import Config

# What a database that is down, unreachable or refusing us raises through SQLAlchemy and its
# drivers (asyncpg raises OSError subclasses for a refused connection). Not IntegrityError and
# the like: those are our bugs or bad data, and keep their own tracebacks.
UNREACHABLE = (OperationalError, InterfaceError, OSError)


class BackofficeUnavailable(Exception):
    pass


@asynccontextmanager
async def backoffice_session(config: Config, *, migrate: bool = True
                             ) -> AsyncIterator[AsyncEngine]:
    """The back office's engine for the length of a command; migrated first unless told not.
    A database that cannot be reached, then or later in the command, is BackofficeUnavailable."""
    url = database_url(config)
    engine = create_engine(url)
    try:
        if migrate:
            await upgrade(engine, zones=configured_zones(config.programs))
        yield engine
    except UNREACHABLE as e:  # from the migration or from the command's own queries
        raise unavailable(url, e) from e
    finally:
        await engine.dispose()


def unavailable(url: URL, error: BaseException) -> BackofficeUnavailable:
    """The one-line error for a database that cannot be reached: where, and the driver's
    reason."""
    return BackofficeUnavailable(f"back office {describe(url)}: cannot open it: {_reason(error)}")


def _reason(error: BaseException) -> str:
    """The driver's own words, without SQLAlchemy's wrapping and background links."""
    inner = getattr(error, "orig", None) or error
    return str(inner).strip().splitlines()[0] if str(inner).strip() else type(inner).__name__

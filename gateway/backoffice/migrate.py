"""Schema migrations (Alembic), run from code: `tillgate serve` brings the back office to the
newest schema as it starts, and `tillgate backoffice migrate` does it alone (for an operator who
upgrades the database before the gateways). The scripts live in gateway/backoffice/migrations.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None,
                   zones: Mapping[str, str] | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    cfg.attributes["zones"] = dict(zones or {})
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the back office has at least one migration"
    return head


async def upgrade(engine: AsyncEngine, target: str = "head",
                  zones: Mapping[str, str] | None = None) -> None:
    """Bring the database to `target` (the newest schema by default), in one transaction.
    `zones`: program id -> the config's time zone, the days of the summaries migration 0013
    builds (summaries.configured_zones); UTC for a program not named."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync, zones), target))


async def current_revision(engine: AsyncEngine) -> str | None:
    """The schema revision the database is at; None for a database never migrated."""
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision())

"""`tillgate backoffice migrate|status`: the SQL back office's schema (docs/backoffice.md)."""

from __future__ import annotations

import asyncio

from gateway.cli.config import load_or_report
from gateway.cli.main import fail
from gateway.config.model import Config

# SQLAlchemy and Alembic are imported inside the commands: at module level they would add some
# 0.4 s to the start of every `tillgate` command, `config reload` included.


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("backoffice", help="the SQL back office")
    sub = parser.add_subparsers(dest="backoffice_command", required=True)
    migrate = sub.add_parser("migrate", parents=[common],
                             help="bring the back office's database to the newest schema")
    migrate.set_defaults(func=run_migrate)
    status = sub.add_parser("status", parents=[common],
                            help="where the back office is and its schema revision")
    status.set_defaults(func=run_status)


def run_migrate(args) -> int:
    from gateway.backoffice.connect import BackofficeUnavailable
    from gateway.backoffice.db import database_url, describe

    config = load_or_report(args.config)
    if config is None:
        return 2
    try:
        before, after = asyncio.run(_migrate(config))
    except BackofficeUnavailable as e:
        return fail(str(e))
    where = describe(database_url(config))
    if before == after:
        print(f"{where}: at revision {after}, the newest; nothing to do")
    else:
        print(f"{where}: migrated from {before or 'an empty database'} to {after}")
    return 0


async def _migrate(config: Config) -> tuple[str | None, str | None]:
    from gateway.backoffice.connect import backoffice_session
    from gateway.backoffice.migrate import current_revision, upgrade

    async with backoffice_session(config, migrate=False) as engine:
        before = await current_revision(engine)
        await upgrade(engine)
        return before, await current_revision(engine)


def run_status(args) -> int:
    from gateway.backoffice.connect import BackofficeUnavailable
    from gateway.backoffice.db import database_url, describe
    from gateway.backoffice.migrate import head_revision

    config = load_or_report(args.config)
    if config is None:
        return 2
    try:
        revision = asyncio.run(_status(config))
    except BackofficeUnavailable as e:
        return fail(str(e))
    head = head_revision()
    state = "up to date" if revision == head else f"behind (newest is {head}): run " \
        "tillgate backoffice migrate"
    print(f"{describe(database_url(config))}: revision {revision or 'none'}, {state}")
    return 0 if revision == head else 1


async def _status(config: Config) -> str | None:
    from gateway.backoffice.connect import backoffice_session
    from gateway.backoffice.migrate import current_revision

    async with backoffice_session(config, migrate=False) as engine:
        return await current_revision(engine)

"""`tillgate backoffice migrate|status|sync`: the SQL back office's schema, and its journal feed
consumer run on its own (docs/backoffice.md)."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import TYPE_CHECKING

from gateway.cli.config import load_or_report
from gateway.cli.main import fail
from gateway.config.model import Config

if TYPE_CHECKING:
    from gateway.backoffice.consumer import FeedConsumer

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
    sync = sub.add_parser("sync", parents=[common],
                          help="run the journal feed consumer alone (until SIGINT/SIGTERM)")
    sync.add_argument("--once", action="store_true",
                      help="ingest what the feed holds now, then exit (for cron and tests)")
    sync.set_defaults(func=run_sync)


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
    from gateway.backoffice.summaries import configured_zones

    async with backoffice_session(config, migrate=False) as engine:
        before = await current_revision(engine)
        await upgrade(engine, zones=configured_zones(config.programs))
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


def run_sync(args) -> int:
    from gateway.backoffice.connect import BackofficeUnavailable
    from gateway.backoffice.db import database_url, describe
    from gateway.ledger.storeconnect import StoreUnavailable

    config = load_or_report(args.config)
    if config is None:
        return 2
    try:
        ingested, lag = asyncio.run(_sync(config, args.once))
    except (BackofficeUnavailable, StoreUnavailable) as e:
        return fail(str(e))
    print(f"{describe(database_url(config))}: ingested {ingested} feed entries; "
          f"{lag} left in the feed", file=sys.stdout)
    return 0


async def _sync(config: Config, once: bool) -> tuple[int, int]:
    """The consumer of `tillgate serve`, alone: `once` drains and returns; otherwise it runs
    until SIGINT or SIGTERM, retrying through outages as the gateway's does."""
    from gateway.backoffice.connect import backoffice_session
    from gateway.backoffice.consumer import FeedConsumer
    from gateway.backoffice.feed import FeedReader
    from gateway.backoffice.service import LINGER, consumer_name
    from gateway.backoffice.summaries import configured_zones
    from gateway.ledger.storeconnect import store_session

    async with store_session(config) as store, backoffice_session(config) as engine:
        reader = FeedReader(store, consumer_name())
        await reader.ensure_group()
        consumer = FeedConsumer(reader, engine, linger=LINGER,
                                zones=configured_zones(config.programs))
        if once:
            await consumer.drain()
        else:
            await _until_signalled(consumer)
        return consumer.ingested, (await reader.lag()).entries


async def _until_signalled(consumer: FeedConsumer) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    async def sleep(seconds: float) -> None:
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            pass

    await consumer.run(stop.is_set, sleep)

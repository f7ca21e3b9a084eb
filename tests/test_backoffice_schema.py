"""The back office's schema on a real SQLite and a real PostgreSQL: the migrations build what
gateway/backoffice/schema.py describes, `tillgate backoffice migrate|status` report it, and a
database that cannot be reached is one clear line, not a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
import pytest_twisted
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, select

from gateway.backoffice import schema
from gateway.backoffice.connect import BackofficeUnavailable, backoffice_session
from gateway.backoffice.migrate import current_revision, head_revision
from gateway.config.model import parse_config
from gateway.reactor import deferred_from_coro


def config_for(url: str, tmp_path):
    return parse_config({"gateway": {"data_dir": str(tmp_path / "var")},
                         "backoffice": {"url": url}})


@pytest_twisted.ensureDeferred
async def test_migrations_build_the_schema_the_code_queries(backoffice_url, tmp_path):
    async def check():
        async with backoffice_session(config_for(backoffice_url, tmp_path)) as engine:
            async with engine.connect() as conn:
                diff = await conn.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync),
                                                  schema.metadata))
            return diff, await current_revision(engine)

    diff, revision = await deferred_from_coro(check())
    assert diff == []  # a column or index in schema.py that no migration creates shows here
    assert revision == head_revision()


@pytest_twisted.ensureDeferred
async def test_entries_are_idempotent_by_card_and_entry_id(backoffice_url, tmp_path):
    row = {"card_id": "c" * 32, "entry_id": "1700000000000-0", "seq": 1, "op": "activate",
           "card_mask": "600649******1234", "program": "GIFT", "dv": 2500, "dp": 0,
           "bal": 2500, "pts": 0, "terminal": "T1", "merchant": "M1", "request_key": "k",
           "t": 1700000000, "undo": None}

    async def insert_twice():
        async with backoffice_session(config_for(backoffice_url, tmp_path)) as engine:
            async with engine.begin() as conn:
                await conn.execute(insert(schema.journal_entries), [row])
            with pytest.raises(Exception, match="(?i)unique|duplicate"):
                async with engine.begin() as conn:
                    await conn.execute(insert(schema.journal_entries), [row])
            async with engine.connect() as conn:
                return (await conn.execute(select(schema.journal_entries.c.dv))).all()

    assert await deferred_from_coro(insert_twice()) == [(2500,)]


@pytest_twisted.ensureDeferred
async def test_default_is_sqlite_in_the_data_directory(tmp_path):
    config = parse_config({"gateway": {"data_dir": str(tmp_path / "var")}})

    async def open_default():
        async with backoffice_session(config) as engine:
            return await current_revision(engine)

    assert await deferred_from_coro(open_default()) == head_revision()
    assert (tmp_path / "var" / "backoffice.sqlite3").exists()


def test_a_password_in_the_url_is_refused_by_path():
    from gateway.config.sections import ConfigError

    with pytest.raises(ConfigError, match=r"backoffice\.url: has a password in it"):
        parse_config({"backoffice": {"url": "postgresql://u:secret@db/x"}})
    with pytest.raises(ConfigError, match=r"backoffice\.url: must start with one of"):
        parse_config({"backoffice": {"url": "mysql://db/x"}})


@pytest_twisted.ensureDeferred
async def test_unreachable_database_is_backoffice_unavailable(tmp_path):
    from gateway.embedded_redis import free_port

    config = config_for(f"postgresql://nobody@127.0.0.1:{free_port()}/none", tmp_path)

    async def open_it():
        async with backoffice_session(config):
            pass

    with pytest.raises(BackofficeUnavailable, match=r"back office postgresql\+asyncpg://"
                                                    r"nobody@127\.0\.0\.1:\d+/none: cannot"):
        await deferred_from_coro(open_it())


def run_cli(*args, config_path):
    return subprocess.run([sys.executable, "-m", "gateway.cli", "backoffice", *args,
                           "--config", str(config_path)], capture_output=True, text=True,
                          timeout=120)


def test_cli_migrate_then_status(backoffice_url, tmp_path):
    config_path = tmp_path / "tillgate.toml"
    config_path.write_text(f'[gateway]\ndata_dir = "{tmp_path / "var"}"\n'
                           f'[backoffice]\nurl = "{backoffice_url}"\n')
    before = run_cli("status", config_path=config_path)
    assert before.returncode == 1 and "revision none, behind" in before.stdout
    first = run_cli("migrate", config_path=config_path)
    assert first.returncode == 0, first.stderr
    assert f"migrated from an empty database to {head_revision()}" in first.stdout
    again = run_cli("migrate", config_path=config_path)
    assert "nothing to do" in again.stdout
    after = run_cli("status", config_path=config_path)
    assert after.returncode == 0 and "up to date" in after.stdout


def test_cli_names_an_unreachable_database(tmp_path):
    from gateway.embedded_redis import free_port

    config_path = tmp_path / "tillgate.toml"
    config_path.write_text(f'[backoffice]\nurl = "postgresql://x@127.0.0.1:{free_port()}/db"\n')
    result = run_cli("status", config_path=config_path)
    assert result.returncode == 2
    assert result.stderr.startswith("tillgate: back office postgresql+asyncpg://x@127.0.0.1:")
    assert "Traceback" not in result.stderr

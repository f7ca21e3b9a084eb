"""`tillgate ecards order|list|resend` run as an operator would (subprocesses), on SQLite and
PostgreSQL with a real redis-server; the delivery queue of the gateway (run here in the test
process on the same database) sends what the command queued, into the maildir of a config
without [email]."""

from __future__ import annotations

import asyncio
import json
import mailbox
from pathlib import Path

import pytest
import pytest_twisted
from test_ledger_cli import tillgate, write_config

from gateway.backoffice.connect import backoffice_session
from gateway.config.model import load_config
from gateway.issuance.ecardqueue import EcardQueue
from gateway.reactor import deferred_from_coro


@pytest.fixture
def config(tmp_path, redis_url, backoffice_url):
    return write_config(tmp_path, redis_url, f'\n[backoffice]\nurl = "{backoffice_url}"\n')


async def run(config: str, *args: str):
    return await deferred_from_coro(asyncio.to_thread(tillgate, config, "ecards", *args))


async def deliver(config: str) -> None:
    """One pass of the gateway's delivery queue over the command's database."""
    cfg = load_config(config)

    async def one_pass() -> None:
        async with backoffice_session(cfg) as engine:
            async def source():
                return engine
            await EcardQueue(cfg, source).run_once()

    await deferred_from_coro(one_pass())


def messages(config: str) -> list:
    box = Path(load_config(config).email.maildir or "")
    return list(mailbox.Maildir(box, create=False)) if (box / "new").is_dir() else []


@pytest_twisted.ensureDeferred
async def test_order_list_deliver_and_resend(config):
    order = ("order", "--program", "secure", "--amount", "12.50", "--to-name", "Cy",
             "--to-email", "cy@example.com", "--from-name", "The shop", "--message", "Enjoy",
             "--key", "cli-order-1", "--json")
    first = await run(config, *order)
    assert first.returncode == 0, first.stderr
    ordered = json.loads(first.stdout)
    assert ordered["state"] == "queued" and ordered["amount"] == 1250 and "ordered:" in first.stderr
    again = await run(config, *order)
    assert again.returncode == 0 and "already ordered" in again.stderr
    assert json.loads(again.stdout)["id"] == ordered["id"]
    other = await run(config, *order[:-3], "--key", "cli-order-1", "--message", "Another")
    assert other.returncode == 1 and "another order" in other.stderr
    bad = await run(config, "order", "--program", "secure", "--amount", "1.234", "--to-name",
                    "Cy", "--to-email", "cy@example.com", "--from-name", "S")
    assert bad.returncode == 2 and "at most 2 decimals" in bad.stderr
    nowhere = await run(config, "order", "--program", "nope", "--amount", "5", "--to-name", "Cy",
                        "--to-email", "cy@example.com", "--from-name", "S")
    assert nowhere.returncode == 2
    assert "unknown program 'nope' (have: gift, secure, loyalty)" in nowhere.stderr
    listed = await run(config, "list", "--json")
    assert [e["id"] for e in json.loads(listed.stdout)["ecards"]] == [ordered["id"]]

    await deliver(config)
    [msg] = messages(config)
    assert msg["To"] == "Cy <cy@example.com>" and "Card number:" in msg.as_string()
    listed = await run(config, "list", "--state", "sent")
    assert ordered["id"] in listed.stdout and "sent" in listed.stdout
    assert "1 of 1" in listed.stderr

    resent = await run(config, "resend", ordered["id"])
    assert resent.returncode == 0 and "queued to be sent again" in resent.stderr
    twice = await run(config, "resend", ordered["id"])
    assert twice.returncode == 1 and "queued already" in twice.stderr
    await deliver(config)
    assert len(messages(config)) == 2
    unknown = await run(config, "resend", "nope")
    assert unknown.returncode == 1 and "no such e-card order" in unknown.stderr

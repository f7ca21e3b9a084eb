"""Issue 19 "staff in the journal": a staff member's recent interactions from the back office's
journal_entries (opid), on SQLite and PostgreSQL, through `tillgate staff recent` (a subprocess)
and `GET /v1/staff/<opid>/recent` on an in-process gateway. The rows are written as the journal
feed writes them (its ingest of `opid` and `rw` comes with the feed's merge)."""

from __future__ import annotations

import asyncio
import http.client
import json
import time

import pytest_twisted
from sqlalchemy import insert
from test_backoffice_schema import config_for
from test_ledger_cli import tillgate

from gateway.backoffice import schema
from gateway.backoffice.connect import backoffice_session
from gateway.reactor import deferred_from_coro

NOW = int(time.time())


def _row(n: int, card: str, opid: str | None, age_days: float, op: str = "earn",
         reward: str | None = None) -> dict:
    return {"card_id": card * 32, "entry_id": f"{(NOW - 100 + n) * 1000}-{n}", "seq": n,
            "op": op, "card_mask": f"77****{card * 4}", "program": "loyalty", "dv": 0,
            "dp": 10 * n, "bal": 0, "pts": 10 * n, "terminal": "TILL0001",
            "merchant": "STORE0000000001", "request_key": f"k{n}",
            "t": NOW - int(age_days * 86400) + n, "undo": None, "opid": opid, "reward": reward}


ROWS = [_row(1, "a", "ANNA", 1), _row(2, "b", "ANNA", 2, "redeem_points", "MUG"),
        _row(3, "a", "ANNA", 3), _row(4, "c", "ANNA", 9), _row(5, "d", "BERT", 1),
        _row(6, "e", None, 1)]


async def _fill(url: str, tmp_path) -> None:
    async with backoffice_session(config_for(url, tmp_path)) as engine:
        async with engine.begin() as conn:
            await conn.execute(insert(schema.journal_entries), ROWS)


@pytest_twisted.ensureDeferred
async def test_staff_recent_on_the_command_line(backoffice_url, tmp_path):
    await deferred_from_coro(_fill(backoffice_url, tmp_path))
    config = tmp_path / "t.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path / "var"}"\n'
                      f'[backoffice]\nurl = "{backoffice_url}"\n')

    def run(*args: str):
        return tillgate(str(config), "staff", "recent", *args)

    done = await deferred_from_coro(asyncio.to_thread(run, "ANNA", "--json"))
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert [(c["card"], c["entries"]) for c in found["cards"]] == [
        ("77****aaaa", 2), ("77****bbbb", 1)]  # card c: 9 days ago, outside the week
    assert [(e["op"], e["reward"]) for e in found["entries"]] == [
        ("earn", None), ("redeem_points", "MUG"), ("earn", None)]
    done = await deferred_from_coro(asyncio.to_thread(run, "ANNA", "--days", "10"))
    assert done.stdout.splitlines()[0].endswith(": 3 cards, 4 entries"), done.stdout
    done = await deferred_from_coro(asyncio.to_thread(run, "ANNA", "--days", "0"))
    assert (done.returncode, done.stderr.strip()) == (2, "tillgate: --days: 1 to 366")


def _get(port: int, path: str, token: str | None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest_twisted.ensureDeferred
async def test_staff_recent_over_http(tillgate_inprocess_factory, backoffice_url, tmp_path,
                                      monkeypatch):
    await deferred_from_coro(_fill(backoffice_url, tmp_path))
    monkeypatch.setenv("TG_TEST_STAFF", "staff-read-token-0123")
    monkeypatch.setenv("TG_TEST_OTHER", "other-token-4567")
    gw = await tillgate_inprocess_factory(extra=(
        '[[security.tokens]]\nid = "shift-lead"\nscopes = ["staff:read"]\n'
        'token_env = "TG_TEST_STAFF"\n'
        '[[security.tokens]]\nid = "crm"\nscopes = ["customers:read"]\n'
        'token_env = "TG_TEST_OTHER"\n'
        f'[backoffice]\nurl = "{backoffice_url}"\n'))
    port = gw.gateway.http.port.getHost().port

    async def get(path: str, token: str | None = "staff-read-token-0123"):
        return await deferred_from_coro(asyncio.to_thread(_get, port, path, token))

    assert (await get("/v1/staff/ANNA/recent", None))[0] == 401
    assert (await get("/v1/staff/ANNA/recent", "other-token-4567"))[0] == 403
    assert (await get("/v1/staff/ANNA/recent?days=x"))[0] == 400
    status, found = await get("/v1/staff/BERT/recent")
    assert status == 200
    assert [c["card"] for c in found["cards"]] == ["77****dddd"]
    status, found = await get("/v1/staff/ANNA/recent?days=10")
    assert (status, len(found["cards"]), len(found["entries"])) == (200, 3, 4)

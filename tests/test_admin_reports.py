"""`GET /v1/reports/<name>` on a gateway running in the test process (real HTTP over TCP), its
back office a real SQLite or PostgreSQL filled as the feed would (tests/reportdata.py): JSON and
CSV, the scope `reports:read`, bad parameters as 400 naming them, an unreachable back office
as 503, and a large report streamed in chunks."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import socket
import time

import pytest_twisted
from reportdata import YEN, at, config_for, fill

from gateway.backoffice.reports.base import BATCH
from gateway.embedded_redis import free_port
from gateway.reactor import deferred_from_coro

READER, CARDS = "reports-reader-token-0123456789", "cards-reader-token-0123456789"
TOKENS = """
[[security.tokens]]
id = "reader"
scopes = ["reports:read"]
token_env = "TG_TEST_REPORTS_TOKEN"

[[security.tokens]]
id = "cards"
scopes = ["cards:read", "health"]
token_env = "TG_TEST_CARDS_TOKEN"
"""


def get(port: int, path: str, token: str | None = READER):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        response = conn.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        conn.close()


async def call(port: int, path: str, token: str | None = READER):
    return await deferred_from_coro(asyncio.to_thread(get, port, path, token))


async def gateway_started(factory, url: str, monkeypatch):
    monkeypatch.setenv("TG_TEST_REPORTS_TOKEN", READER)
    monkeypatch.setenv("TG_TEST_CARDS_TOKEN", CARDS)
    return await factory(extra=f'{YEN}\n[backoffice]\nurl = "{url}"\n{TOKENS}')


async def gateway_on(factory, url: str, monkeypatch) -> int:
    """The admin port of a gateway whose back office is at `url`."""
    gw = await gateway_started(factory, url, monkeypatch)
    return gw.gateway.http.port.getHost().port


@pytest_twisted.ensureDeferred
async def test_reports_as_json_and_csv_with_scope(tillgate_inprocess_factory, backoffice_url,
                                                  tmp_path, monkeypatch):
    await deferred_from_coro(fill(config_for(backoffice_url, tmp_path)))
    port = await gateway_on(tillgate_inprocess_factory, backoffice_url, monkeypatch)
    day = "from=2026-11-24&to=2026-11-24"

    assert (await call(port, f"/v1/reports/transactions?{day}", token=None))[0] == 401
    status, _, body = await call(port, f"/v1/reports/transactions?{day}", token=CARDS)
    assert status == 403 and b"lacks the scope 'reports:read'" in body
    assert (await call(port, "/v1/reports", token=CARDS))[0] == 403

    status, headers, body = await call(port, f"/v1/reports/transactions?{day}&op=redeem")
    assert status == 200 and headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert answer["rows"][0] == {
        "row": "entry", "time": "2026-11-24T00:00:00Z", "card": "603953*********0018",
        "op": "redeem", "program": "gift", "merchant": "STORE0000000001",
        "terminal": "TILL0001", "request_key": "k-a2", "count": 1, "amount": "-12.50",
        "points": 0}
    assert answer["rows"][-1] == {
        "row": "total", "time": None, "card": None, "op": "redeem", "program": "gift",
        "merchant": None, "terminal": None, "request_key": None, "count": 2,
        "amount": "-32.49", "points": 0}
    assert len(answer["rows"]) == 3

    status, headers, body = await call(
        port, "/v1/reports/activations?from=2026-11-23&to=2026-11-25&reseller=blackhawk"
              "&format=csv")
    assert status == 200 and headers["content-type"] == "text/csv; charset=utf-8"
    assert headers["content-disposition"] == 'attachment; filename="activations.csv"'
    assert body.decode() == ("day,reseller,program,activations,activated,loads,loaded,"
                             "reversals,reversed\n"
                             "2026-11-23,blackhawk,gift,1,25.00,0,0.00,0,0.00\n"
                             "2026-11-24,blackhawk,yen,1,3000,0,0,0,0\n")

    status, _, body = await call(port, "/v1/reports/liability?to=2026-11-23&format=csv")
    assert (status, body) == (200, b"as_of,program,cards,balance,points\n"
                                   b"2026-11-23,gift,1,25.00,0\n")

    status, _, body = await call(port, "/v1/reports")
    assert status == 200
    listed = {r["name"]: r for r in json.loads(body)["reports"]}
    assert list(listed) == ["transactions", "liability", "activations", "tiers",
                            "customer-activity", "analytics", "staff"]
    assert listed["liability"]["parameters"] == ["to", "tz"]


@pytest_twisted.ensureDeferred
async def test_bad_parameters_are_400_and_name_the_parameter(tillgate_inprocess_factory,
                                                            tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'backoffice.sqlite3'}"
    await deferred_from_coro(fill(config_for(url, tmp_path)))
    port = await gateway_on(tillgate_inprocess_factory, url, monkeypatch)
    for path, parameter, error in [
        ("/v1/reports/transactions?from=2026-11-24", "to", "to: required"),
        ("/v1/reports/transactions?from=2026-11-31&to=2026-12-01", "from",
         "from: '2026-11-31': expected a date"),
        ("/v1/reports/transactions?from=2026-11-24&to=2026-11-24&group-by=year", "group-by",
         "group-by: 'year': one of"),
        ("/v1/reports/transactions?from=2026-11-24&to=2026-11-24&format=xml", "format",
         "format: one of csv, json"),
        ("/v1/reports/transactions?from=2026-11-24&to=2026-11-24&customer-type=vip",
         "customer-type", "customer-type: no customer type 'vip'"),
        ("/v1/reports/liability?from=2026-11-24", "from", "from: this report is as of"),
    ]:
        status, headers, body = await call(port, path)
        answer = json.loads(body)
        assert status == 400 and headers["content-type"] == "application/json", (path, body)
        assert answer["parameter"] == parameter and answer["error"].startswith(error), answer
    status, _, body = await call(port, "/v1/reports/sales?from=2026-11-24&to=2026-11-24")
    assert status == 404 and b"no report 'sales' (one of transactions, liability" in body


@pytest_twisted.ensureDeferred
async def test_unreachable_back_office_is_503_and_tills_are_served(tillgate_inprocess_factory,
                                                                  monkeypatch):
    port = await gateway_on(tillgate_inprocess_factory,
                            f"postgresql://nobody@127.0.0.1:{free_port()}/none", monkeypatch)
    status, _, body = await call(port, "/v1/reports/liability?to=2026-11-24")
    assert status == 503 and json.loads(body)["error"].startswith(
        "back office postgresql+asyncpg://nobody@127.0.0.1:")
    assert (await call(port, "/healthz", token=CARDS))[0] == 200  # the gateway itself is up


@pytest_twisted.ensureDeferred
async def test_a_large_report_is_streamed(tillgate_inprocess_factory, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'backoffice.sqlite3'}"
    count = BATCH * 3
    start = at("2026-11-24 00:00:00")
    rows = [{"card_id": f"{n:032x}", "entry_id": f"{start}000-{n}", "seq": 1, "op": "activate",
             "card_mask": "603953*********0018", "program": "gift", "dv": 2500, "dp": 0,
             "bal": 2500, "pts": 0, "terminal": "TILL0001", "merchant": "STORE0000000001",
             "request_key": f"k{n}", "t": start + n, "undo": None} for n in range(count)]
    await deferred_from_coro(fill(config_for(url, tmp_path), rows))
    port = await gateway_on(tillgate_inprocess_factory, url, monkeypatch)
    status, headers, body = await call(
        port, "/v1/reports/transactions?from=2026-11-24&to=2026-11-24&format=csv")
    assert status == 200 and headers.get("transfer-encoding") == "chunked"
    lines = body.decode().splitlines()
    assert len(lines) == 1 + count + 1
    assert lines[-1] == f"total,,,activate,gift,,,,{count},{count * 25}.00,0"


@pytest_twisted.ensureDeferred
async def test_a_client_that_leaves_stops_the_report(tillgate_inprocess_factory, tmp_path,
                                                     monkeypatch, caplog):
    """A report of ~8 MB to a client that reads 1 KB and leaves: the report is paused while
    the client does not read (its buffers are full long before the end), then stopped when it
    leaves: its database connection goes back to the pool and the next report is answered."""
    url = f"sqlite:///{tmp_path / 'backoffice.sqlite3'}"
    count = 100_000
    start = at("2026-11-24 00:00:00")
    rows = [{"card_id": f"{n:032x}", "entry_id": f"{start}000-{n}", "seq": 1, "op": "redeem",
             "card_mask": "603953*********0018", "program": "gift", "dv": -n, "dp": 0,
             "bal": 0, "pts": 0, "terminal": "TILL0001", "merchant": "STORE0000000001",
             "request_key": f"key-of-some-length-{n}", "t": start + n % 86400, "undo": None}
            for n in range(count)]
    await deferred_from_coro(fill(config_for(url, tmp_path), rows))
    gw = await gateway_started(tillgate_inprocess_factory, url, monkeypatch)
    gw_port = gw.gateway.http.port.getHost().port

    def read_a_little_and_leave() -> bytes:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            sock.settimeout(30)
            sock.connect(("127.0.0.1", gw_port))
            sock.sendall(b"GET /v1/reports/transactions?from=2026-11-24&to=2026-11-24"
                         b"&format=csv HTTP/1.1\r\nHost: tillgate\r\n"
                         b"Authorization: Bearer " + READER.encode() + b"\r\n\r\n")
            return sock.recv(1024)
        finally:
            sock.close()

    caplog.set_level(logging.INFO, logger="gateway.admin.reports")
    first = await deferred_from_coro(asyncio.to_thread(read_a_little_and_leave))
    assert first.startswith(b"HTTP/1.1 200")
    pool = (await deferred_from_coro(gw.gateway.backoffice.engine())).pool
    deadline = time.monotonic() + 20
    while pool.checkedout() and time.monotonic() < deadline:  # type: ignore[attr-defined]
        await deferred_from_coro(asyncio.sleep(0.05))
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    left = [r.args for r in caplog.records if r.getMessage().startswith(
        "report transactions: the client left after")]
    assert len(left) == 1 and left[0][1] < count  # stopped before the end: it was paused
    status, _, body = await call(gw_port, "/v1/reports/liability?to=2026-11-24&format=csv")
    assert status == 200 and body.endswith(b"2026-11-24,gift,100000,0.00,0\n")

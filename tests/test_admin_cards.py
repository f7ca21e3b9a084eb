"""`/v1/cards/show` and `/v1/cards/status` on the admin listener of a gateway running in the
test process: scopes, the number only in the body and masked in answers, final changes that
need confirming, and a suspended card refused at the till."""

from __future__ import annotations

import asyncio
import http.client
import json

import pytest_twisted

from gateway.ledger import cards
from gateway.reactor import deferred_from_coro
from protocols.carddata import generate_card_number
from protocols.model import RC, Op, Request

READER, WRITER = "cards-read-token-0123", "cards-write-token-4567"
TOKENS = """
[[security.tokens]]
id = "crm"
scopes = ["cards:read"]
token_env = "TG_TEST_CARDS_READ"

[[security.tokens]]
id = "backoffice"
scopes = ["cards:read", "cards:write"]
token_env = "TG_TEST_CARDS_WRITE"
"""


def post(port: int, path: str, body: object, token: str | None,
         headers: dict[str, str] | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        headers = {"Content-Type": "application/json", **(headers or {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


async def call(port: int, path: str, body: object, token: str | None = None,
               headers: dict[str, str] | None = None):
    return await deferred_from_coro(asyncio.to_thread(post, port, path, body, token, headers))


@pytest_twisted.ensureDeferred
async def test_show_and_status_over_http(tillgate_inprocess_factory, monkeypatch):
    monkeypatch.setenv("TG_TEST_CARDS_READ", READER)
    monkeypatch.setenv("TG_TEST_CARDS_WRITE", WRITER)
    gw = await tillgate_inprocess_factory(extra=TOKENS)
    port = gw.gateway.http.port.getHost().port
    program = gw.gateway.config.programs["gift"]
    card = generate_card_number(program.prefix, program.card_length_max, program.luhn)
    store = gw.gateway.store_service.store
    assert await deferred_from_coro(cards.issue_card(store, program, card))

    assert (await call(port, "/v1/cards/show", {"card": card}))[0] == 401
    status, shown = await call(port, "/v1/cards/show", {"card": card}, READER)
    assert status == 200 and shown["status"] == "issued" and shown["card"] != card
    assert card[-4:] in shown["card"]
    assert (await call(port, "/v1/cards/status", {"card": card, "to": "suspended"},
                       READER))[0] == 403
    assert (await call(port, "/v1/cards/show", b"not json", READER))[0] == 400
    assert (await call(port, "/v1/cards/show", {"card": "12"}, READER))[0] == 400
    other = generate_card_number(program.prefix, program.card_length_max, program.luhn)
    assert (await call(port, "/v1/cards/show", {"card": other}, READER))[0] == 404

    status, changed = await call(port, "/v1/cards/status", {"card": card, "to": "suspended"},
                                 WRITER)
    assert status == 200 and changed["change"] == "issued -> suspended"
    result = await gw.gateway.processor.submit(Request(
        op=Op.ACTIVATE, card=card, amount=500, terminal="TILL0001",
        merchant="STORE0000000001", key="L:TILL0001:STORE0000000001:1:20261124"))
    assert result.code == RC.SUSPENDED
    status, refused = await call(port, "/v1/cards/status", {"card": card, "to": "suspended"},
                                 WRITER)
    assert status == 409 and "card is suspended" in refused["error"]
    status, refused = await call(port, "/v1/cards/status", {"card": card, "to": "closed"}, WRITER)
    assert status == 400 and "confirm" in refused["error"]
    status, closed = await call(port, "/v1/cards/status",
                                {"card": card, "to": "closed", "confirm": True}, WRITER)
    assert status == 200 and closed["change"] == "suspended -> closed"
    status, history = await call(port, "/v1/cards/history", {"card": card, "last": 1}, READER)
    assert status == 200 and [e["op"] for e in history["entries"]] == ["status:closed"]
    assert history["entries"][0]["terminal"] == "token:backoffice"
    assert (await call(port, "/v1/cards/history", {"card": card, "last": 0}, READER))[0] == 400
    journal = await deferred_from_coro(_ops_and_terminals(store, card))
    assert journal == [("status:suspended", "token:backoffice"),
                       ("status:closed", "token:backoffice")]


async def _ops_and_terminals(store, card: str) -> list[tuple[str, str]]:
    from gateway.ledger.journal import entries

    journal = cards.journal_key(cards.card_id(card))
    return [(e.op, e.terminal) async for e in entries(store, journal)]

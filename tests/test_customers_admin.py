"""`/v1/customers...` and `/v1/customer-types` on the admin listener of a gateway running in the
test process, on SQLite and on PostgreSQL: scopes, validation as JSON errors, cards linked by
number (masked in answers) with their balances from Redis, a card held by one customer at a
time, and an inactive customer's cards answered 62 by real tills over TCP (ISO 8583 and TGL/1),
00 again once active."""

from __future__ import annotations

import asyncio
import http.client
import json

import pytest_twisted

from gateway.ledger import cards
from gateway.ledger.audit import audit
from gateway.ledger.journal import entries
from gateway.reactor import deferred_from_coro
from gateway.sim.till import Till
from protocols.carddata import generate_card_number
from protocols.model import mask_card

READER, WRITER = "customers-read-token-0123", "customers-write-token-4567"
TOKENS = """
[[security.tokens]]
id = "crm"
scopes = ["customers:read"]
token_env = "TG_TEST_CUSTOMERS_READ"

[[security.tokens]]
id = "office"
scopes = ["customers:read", "customers:write"]
token_env = "TG_TEST_CUSTOMERS_WRITE"
"""


def send(port: int, method: str, path: str, body: object, token: str | None,
         content_type: str = "application/json") -> tuple[int, dict | str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        headers = {"Content-Type": content_type}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else (body if isinstance(body, bytes)
                                          else json.dumps(body).encode())
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        text = response.read().decode()
        if response.getheader("content-type", "").startswith("text/csv"):
            return response.status, text
        return response.status, json.loads(text)
    finally:
        conn.close()


async def call(port: int, method: str, path: str, body: object = None,
               token: str | None = WRITER, content_type: str = "application/json"):
    return await deferred_from_coro(asyncio.to_thread(send, port, method, path, body, token,
                                                      content_type))


async def start(factory, monkeypatch, backoffice_url: str):
    monkeypatch.setenv("TG_TEST_CUSTOMERS_READ", READER)
    monkeypatch.setenv("TG_TEST_CUSTOMERS_WRITE", WRITER)
    gw = await factory(extra=TOKENS + f'\n[backoffice]\nurl = "{backoffice_url}"\n')
    return gw, gw.gateway.http.port.getHost().port


async def active_card(gw, amount: int = 1000) -> str:
    """A new gift card, activated by a till over ISO 8583 (as a shop would)."""
    program = gw.gateway.config.programs["gift"]
    card = generate_card_number(program.prefix, program.card_length_max, program.luhn)
    assert await deferred_from_coro(cards.issue_card(gw.gateway.store_service.store, program,
                                                     card))
    assert await till_rc(gw, "iso", "activate", card, amount) == "00"
    return card


def _till(config, protocol: str, op: str, card: str, amount: int) -> str | None:
    with Till.from_config(config, protocol) as till:
        exchange = till.balance(card) if op == "balance" else getattr(till, op)(card, amount)
        return exchange.reply.rc if exchange.reply else None


async def till_rc(gw, protocol: str, op: str, card: str, amount: int = 0) -> str | None:
    """The response code a real till gets over TCP."""
    return await deferred_from_coro(asyncio.to_thread(
        _till, gw.gateway.config, protocol, op, card, amount))


@pytest_twisted.ensureDeferred
async def test_an_inactive_customer_has_its_cards_answered_62_over_the_wire(
        tillgate_inprocess_factory, monkeypatch, backoffice_url):
    gw, port = await start(tillgate_inprocess_factory, monkeypatch, backoffice_url)
    first, second = await active_card(gw), await active_card(gw, 700)
    assert (await call(port, "POST", "/v1/customers",
                       {"code": "C-100", "name": "Ada Lovelace", "email": "ada@example.org"}
                       ))[0] == 201
    for card in (first, second):
        status, linked = await call(port, "POST", "/v1/customers/C-100/cards", {"card": card})
        assert status == 200 and linked["linked"] and linked["card"] != card
    assert await till_rc(gw, "tgl", "redeem", first, 100) == "00"

    status, changed = await call(port, "PATCH", "/v1/customers/C-100", {"status": "inactive"})
    assert status == 200 and changed["status_change"] == "active -> inactive"
    assert changed["marks"] == {"cards": 2, "marked": 2, "cleared": 0, "missing": 0}
    for protocol in ("tgl", "iso"):
        assert await till_rc(gw, protocol, "redeem", first, 100) == "62"
        assert await till_rc(gw, protocol, "balance", second) == "62"
        assert await till_rc(gw, protocol, "reload", second, 100) == "62"

    status, view = await call(port, "GET", "/v1/customers/C-100", token=READER)
    assert status == 200 and view["status"] == "inactive"
    assert {c["card"]: (c["balance"], c["status"], c["customer_inactive"])
            for c in view["cards"]} == {mask_card(first): (900, "active", True),
                                        mask_card(second): (700, "active", True)}
    # nothing was spent or loaded while inactive

    # a card unlinked from an inactive customer is its own again
    status, _ = await call(port, "DELETE", "/v1/customers/C-100/cards", {"card": second})
    assert status == 200
    assert await till_rc(gw, "tgl", "balance", second) == "00"
    assert (await call(port, "PATCH", "/v1/customers/C-100", {"status": "active"}))[0] == 200
    assert await till_rc(gw, "iso", "redeem", first, 100) == "00"
    assert await till_rc(gw, "tgl", "redeem", first, 100) == "00"

    store = gw.gateway.store_service.store
    ops = await deferred_from_coro(journal_ops(store, first))
    assert ops == ["activate", "redeem", "cust:inactive", "cust:active", "redeem", "redeem"]
    assert (await deferred_from_coro(audit(store))).ok  # marks are zero-value entries


async def journal_ops(store, card: str) -> list[str]:
    return [e.op async for e in entries(store, cards.journal_key(cards.card_id(card)))]


@pytest_twisted.ensureDeferred
async def test_customers_types_links_and_errors_over_http(tillgate_inprocess_factory,
                                                          monkeypatch, backoffice_url):
    gw, port = await start(tillgate_inprocess_factory, monkeypatch, backoffice_url)
    card = await active_card(gw, 2500)

    # scopes: nothing without a token, reading with customers:read, writing with :write
    assert (await call(port, "GET", "/v1/customers", token=None))[0] == 401
    assert (await call(port, "POST", "/v1/customers", {"code": "X", "name": "x"},
                       token=READER))[0] == 403
    assert (await call(port, "GET", "/v1/customers", token=READER))[0] == 200

    status, made = await call(port, "POST", "/v1/customer-types",
                              {"name": "gold", "default_program": "gift",
                               "description": "spends a lot"})
    assert status == 201 and made["customers"] == 0
    status, bad = await call(port, "POST", "/v1/customer-types",
                             {"name": "silver", "default_program": "nope"})
    assert status == 400 and "default_program: no program 'nope'" in bad["error"]
    assert (await call(port, "POST", "/v1/customer-types", {"name": "gold"}))[0] == 409

    status, bad = await call(port, "POST", "/v1/customers",
                             {"code": "C 1", "name": "", "email": "not-an-address",
                              "consent": "yes", "colour": "red"})
    assert status == 400
    for words in ("colour: unknown field", "name: required", "email: 'not-an-address'",
                  "consent: must be true or false", "code: 'C 1' is not"):
        assert words in bad["error"]
    assert (await call(port, "POST", "/v1/customers", b"[1]"))[0] == 400
    status, ada = await call(port, "POST", "/v1/customers",
                             {"code": "C-1", "name": "Ada", "email": "Ada@Example.org",
                              "type": "gold", "consent": True, "phone": "+44 20 7946 0000"})
    assert status == 201 and ada["type"] == "gold" and ada["consent_time"].endswith("Z")
    assert ada["email"] == "ada@example.org"  # kept in lower case
    assert (await call(port, "POST", "/v1/customers", {"code": "C-1", "name": "Again"}))[0] \
        == 409
    status, bad = await call(port, "POST", "/v1/customers",
                             {"code": "C-2", "name": "Bob", "type": "platinum"})
    assert status == 404 and "no customer type 'platinum'" in bad["error"]
    assert (await call(port, "POST", "/v1/customers", {"code": "C-2", "name": "Bob"}))[0] == 201
    assert (await call(port, "POST", "/v1/customers",
                       {"code": "D-1", "name": "Dee", "status": "inactive"}))[0] == 201

    # linking: by number in the body, masked in answers; a card has one customer at a time
    status, linked = await call(port, "POST", "/v1/customers/C-1/cards", {"card": card})
    assert status == 200 and card not in json.dumps(linked) and linked["program"] == "gift"
    status, refused = await call(port, "POST", "/v1/customers/C-2/cards", {"card": card})
    assert status == 409 and "held by customer 'C-1'" in refused["error"]
    status, moved = await call(port, "POST", "/v1/customers/C-2/cards",
                               {"card": card, "move": True})
    assert status == 200 and moved["moved_from"] == "C-1"
    status, again = await call(port, "POST", "/v1/customers/C-2/cards", {"card": card})
    assert status == 200 and again["linked"] is False
    program = gw.gateway.config.programs["gift"]
    never_issued = generate_card_number(program.prefix, program.card_length_max, program.luhn)
    status, refused = await call(port, "POST", "/v1/customers/C-2/cards", {"card": never_issued})
    assert status == 404 and "not in the store" in refused["error"]
    assert (await call(port, "POST", "/v1/customers/C-2/cards", {"card": "12"}))[0] == 400
    assert (await call(port, "POST", "/v1/customers/NOPE/cards", {"card": card}))[0] == 404
    assert (await call(port, "DELETE", "/v1/customers/C-1/cards", {"card": card}))[0] == 404

    status, bob = await call(port, "GET", "/v1/customers/C-2", token=READER)
    assert status == 200 and [(c["balance"], c["program"]) for c in bob["cards"]] == [
        (2500, "gift")]  # registering never changes a balance
    assert (await call(port, "GET", "/v1/customers/NOPE", token=READER))[0] == 404

    # a card moved to an inactive customer is answered 62; moved back, 00
    assert (await call(port, "POST", "/v1/customers/D-1/cards",
                       {"card": card, "move": True}))[0] == 200
    assert await till_rc(gw, "tgl", "balance", card) == "62"
    assert (await call(port, "POST", "/v1/customers/C-2/cards",
                       {"card": card, "move": True}))[0] == 200
    assert await till_rc(gw, "tgl", "balance", card) == "00"

    # listing with filters and pages
    status, page = await call(port, "GET", "/v1/customers?status=active&limit=1", token=READER)
    assert status == 200 and page["total"] == 2 and [c["code"] for c in page["customers"]] == [
        "C-1"]
    status, page = await call(port, "GET", "/v1/customers?status=active&limit=1&offset=1",
                              token=READER)
    assert [c["code"] for c in page["customers"]] == ["C-2"]
    status, page = await call(port, "GET", "/v1/customers?email=ada@example.ORG&type=gold",
                              token=READER)
    assert [c["code"] for c in page["customers"]] == ["C-1"]
    status, page = await call(port, "GET", "/v1/customers?code_prefix=D", token=READER)
    assert [c["code"] for c in page["customers"]] == ["D-1"]
    status, page = await call(port, "GET", "/v1/customers?code_prefix=d", token=READER)
    assert page["customers"] == []  # codes are case-sensitive, on SQLite too
    assert (await call(port, "GET", "/v1/customers?status=gone", token=READER))[0] == 400
    assert (await call(port, "GET", "/v1/customers?limit=0", token=READER))[0] == 400
    status, types = await call(port, "GET", "/v1/customer-types", token=READER)
    assert types["types"][0]["customers"] == 1

    # changes: consent's time moves with it; the code never changes
    status, changed = await call(port, "PATCH", "/v1/customers/C-2",
                                 {"consent": True, "notes": "prefers e-mail"})
    assert status == 200 and changed["consent"] and changed["consent_time"]
    assert changed["status_change"] is None and changed["marks"] is None
    status, bad = await call(port, "PATCH", "/v1/customers/C-2", {"code": "C-3"})
    assert status == 400 and "cannot be changed" in bad["error"]

    # export (text/csv, masked numbers) and import (all or nothing) over HTTP
    status, text = await call(port, "GET", "/v1/customers/export?status=active", token=READER)
    assert status == 200 and isinstance(text, str) and card not in text
    assert text.splitlines()[0].startswith("code,name,email")
    assert len(text.splitlines()) == 3 and card[-4:] in text
    bad_file = b"code,name,email\nE-1,Eve,eve@example.org\nE-2,,nope\n"
    status, refused = await call(port, "POST", "/v1/customers/import", bad_file,
                                 content_type="text/csv")
    assert status == 400 and refused["problems"] == [
        "line 3: name: required", "line 3: email: 'nope' is not an e-mail address"]
    assert (await call(port, "GET", "/v1/customers/E-1", token=READER))[0] == 404
    status, done = await call(port, "POST", "/v1/customers/import",
                              b"code,name,email\nE-1,Eve,eve@example.org\n",
                              content_type="text/csv")
    assert status == 200 and (done["added"], done["updated"]) == (1, 0)
    assert (await call(port, "POST", "/v1/customers/import", b"code,name\n",
                       token=READER, content_type="text/csv"))[0] == 403


@pytest_twisted.ensureDeferred
async def test_a_back_office_that_is_down_is_a_503_and_tills_go_on(tillgate_inprocess_factory,
                                                                  monkeypatch):
    from gateway.embedded_redis import free_port

    nowhere = f"postgresql://tillgate@127.0.0.1:{free_port()}/tillgate"  # nothing listens
    gw, port = await start(tillgate_inprocess_factory, monkeypatch, nowhere)
    card = await active_card(gw)  # the gateway started, and tills are answered
    status, refused = await call(port, "GET", "/v1/customers", token=READER)
    assert status == 503 and "cannot open it" in refused["error"]
    assert "127.0.0.1" in refused["error"]
    status, refused = await call(port, "POST", "/v1/customers/C-1/cards", {"card": card})
    assert status == 503
    assert await till_rc(gw, "tgl", "redeem", card, 100) == "00"

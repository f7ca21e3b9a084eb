"""`/v1/rewards` on the admin listener of a gateway running in the test process: scopes, bad
fields named, the change stored with the token's id, and a till's claim answering the change
at once (the claim reads the reward in its own script)."""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import json
import secrets

import pytest_twisted
from isohelpers import new_card

from gateway.ledger import cards
from gateway.reactor import deferred_from_coro
from protocols.model import RC, Op, Request

READER, WRITER = "rewards-read-token-0123", "rewards-write-token-4567"
TOKENS = """
[[security.tokens]]
id = "shop"
scopes = ["rewards:read"]
token_env = "TG_TEST_REWARDS_READ"

[[security.tokens]]
id = "marketing"
scopes = ["rewards:read", "rewards:write"]
token_env = "TG_TEST_REWARDS_WRITE"
"""


def _http(port: int, method: str, path: str, body: object, token: str | None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


async def call(port: int, method: str, path: str, body: object = None,
               token: str | None = None) -> tuple[int, dict]:
    return await deferred_from_coro(asyncio.to_thread(_http, port, method, path, body, token))


@pytest_twisted.ensureDeferred
async def test_rewards_managed_over_http_and_claimed_at_the_till(tillgate_inprocess_factory,
                                                                 monkeypatch):
    monkeypatch.setenv("TG_TEST_REWARDS_READ", READER)
    monkeypatch.setenv("TG_TEST_REWARDS_WRITE", WRITER)
    gw = await tillgate_inprocess_factory(extra=TOKENS)
    port = gw.gateway.http.port.getHost().port

    assert (await call(port, "GET", "/v1/rewards"))[0] == 401
    status, listed = await call(port, "GET", "/v1/rewards?program=loyalty", token=READER)
    assert status == 200
    assert [(r["id"], r["points"], r["source"]) for r in listed["rewards"]] == [
        ("COFFEE", 100, "config")]
    new = {"program": "loyalty", "id": "BAG", "name": "Tote bag", "points": 50, "stock": 1,
           "clubs": ["STORE0000000001"], "valid_to": "2999-12-31"}
    assert (await call(port, "POST", "/v1/rewards", new, READER))[0] == 403
    status, bad = await call(port, "POST", "/v1/rewards", {**new, "clubs": ["NOPE"]}, WRITER)
    assert (status, bad["error"]) == (400, "clubs: no merchant 'NOPE'")
    status, bad = await call(port, "POST", "/v1/rewards", {**new, "program": "gift"}, WRITER)
    assert (status, bad["error"]) == (400, "program: no loyalty program 'gift'")
    status, made = await call(port, "POST", "/v1/rewards", new, WRITER)
    assert (status, made["stock"], made["valid_to"]) == (201, 1, "2999-12-31")
    assert (await call(port, "POST", "/v1/rewards", new, WRITER))[0] == 409
    status, got = await call(port, "GET", "/v1/rewards/loyalty/BAG", token=READER)
    assert (status, got["name"], got["clubs"]) == (200, "Tote bag", ["STORE0000000001"])
    assert (await call(port, "GET", "/v1/rewards/loyalty/NONE", token=READER))[0] == 404
    assert (await call(port, "GET", "/v1/rewards/gift/BAG", token=READER))[0] == 404
    by = await deferred_from_coro(gw.gateway.store_service.store.command(
        "HGET", "{rw:loyalty}:BAG", "by"))
    assert by == b"token:marketing"

    card, _ = await new_card(gw.gateway, "loyalty")
    processor = gw.gateway.processor

    run = secrets.token_hex(4)  # request keys of their own: the suite's Redis outlives a test

    async def till(op: Op, n: int, **kw) -> str:
        result = await processor.submit(Request(
            op=op, card=card, terminal="TILL0001", merchant="STORE0000000001",
            key=f"L:TILL0001:STORE0000000001:{run}{n}:20261205", **kw))
        return result.code

    assert await till(Op.ACTIVATE, 1) == RC.APPROVED
    assert await till(Op.EARN, 2, amount=20_000) == RC.APPROVED
    status, _ = await call(port, "PATCH", "/v1/rewards/loyalty/BAG", {"stock": -1}, WRITER)
    assert status == 400
    status, changed = await call(port, "PATCH", "/v1/rewards/loyalty/BAG",
                                 {"clubs": ["BHNRESELLER0001"]}, WRITER)
    assert (status, changed["clubs"], changed["stock"]) == (200, ["BHNRESELLER0001"], 1)
    assert await till(Op.REDEEM_POINTS, 3, reward="BAG") == RC.TERMINAL_NOT_PERMITTED
    await call(port, "PATCH", "/v1/rewards/loyalty/BAG", {"clubs": []}, WRITER)
    assert await till(Op.REDEEM_POINTS, 4, reward="BAG") == RC.APPROVED
    assert await till(Op.REDEEM_POINTS, 5, reward="BAG") == RC.DO_NOT_HONOUR  # out of stock
    status, off = await call(port, "POST", "/v1/rewards/loyalty/COFFEE/disable", {}, WRITER)
    assert (status, off["enabled"], off["source"]) == (200, False, "store")
    assert await till(Op.REDEEM_POINTS, 6, reward="COFFEE") == RC.INVALID_TRANSACTION
    status, listed = await call(port, "GET", "/v1/rewards", token=READER)
    assert [(r["id"], r["enabled"], r["claimed"]) for r in listed["rewards"]] == [
        ("BAG", True, 1), ("COFFEE", False, 0)]


@pytest_twisted.ensureDeferred
async def test_claims_listed_and_voided_over_http(tillgate_inprocess_factory, monkeypatch):
    """`/v1/claims` as `tillgate rewards claims|void-claim`: the void gives the points back to
    the lots the claim took them from and the item to the stock, once; its entry names the
    token."""
    monkeypatch.setenv("TG_TEST_REWARDS_READ", READER)
    monkeypatch.setenv("TG_TEST_REWARDS_WRITE", WRITER)
    gw = await tillgate_inprocess_factory(extra=TOKENS)
    port = gw.gateway.http.port.getHost().port
    store = gw.gateway.store_service.store
    rid = "MUG" + secrets.token_hex(3).upper()  # the suite's Redis outlives a test
    made = {"program": "loyalty", "id": rid, "points": 40, "stock": 1}
    assert (await call(port, "POST", "/v1/rewards", made, WRITER))[0] == 201
    card, _ = await new_card(gw.gateway, "loyalty")
    cid = cards.card_id(card)
    run = secrets.token_hex(4)

    async def till(op: Op, n: int, **kw):
        return await gw.gateway.processor.submit(Request(
            op=op, card=card, terminal="TILL0001", merchant="STORE0000000001",
            key=f"L:TILL0001:STORE0000000001:{run}{n}:20261206", **kw))

    assert (await till(Op.ACTIVATE, 1)).code == RC.APPROVED
    assert (await till(Op.EARN, 2, amount=5_000)).code == RC.APPROVED
    earned = await deferred_from_coro(cards.card_lots(store, cid))
    claim_key = f"L:TILL0001:STORE0000000001:{run}3:20261206"
    assert (await till(Op.REDEEM_POINTS, 3, reward=rid)).points == 10

    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    period = f"program=loyalty&from={today}&to={today}"
    assert (await call(port, "GET", f"/v1/claims?{period}"))[0] == 401
    status, bad = await call(port, "GET", "/v1/claims?program=loyalty&from=12/06&to=",
                             token=READER)
    assert (status, bad["error"]) == (400, "from: a date YYYY-MM-DD")
    status, bad = await call(port, "GET", f"/v1/claims?program=gift&from={today}&to={today}",
                             token=READER)
    assert (status, bad["error"]) == (400, "program: no loyalty program 'gift'")
    status, listed = await call(port, "GET", f"/v1/claims?{period}", token=READER)
    mine = [c for c in listed["claims"] if c["reward"] == rid]
    assert status == 200 and [(c["op"], c["points"], c["key"], c["voided"]) for c in mine] == [
        ("claim", -40, claim_key, False)]
    assert card not in json.dumps(listed)  # masked

    void = {"program": "loyalty", "key": claim_key}
    assert (await call(port, "POST", "/v1/claims/void", void, READER))[0] == 403
    status, bad = await call(port, "POST", "/v1/claims/void", {"program": "loyalty"}, WRITER)
    assert status == 400 and bad["error"].startswith("key:")
    status, _ = await call(port, "POST", "/v1/claims/void", {**void, "key": "nope"}, WRITER)
    assert status == 404
    status, done = await call(port, "POST", "/v1/claims/void", void, WRITER)
    assert (status, done["rc"], done["points"]) == (200, "00", 50)
    assert await deferred_from_coro(cards.card_lots(store, cid)) == earned
    status, again = await call(port, "POST", "/v1/claims/void", void, WRITER)
    assert (status, again["rc"]) == (409, "12")
    status, got = await call(port, "GET", f"/v1/rewards/loyalty/{rid}", token=READER)
    assert (got["stock"], got["claimed"]) == (1, 0)
    status, listed = await call(port, "GET", f"/v1/claims?{period}", token=READER)
    mine = [c for c in listed["claims"] if c["reward"] == rid]
    assert [(c["op"], c["voided"], c["orig"], c["operator"]) for c in mine] == [
        ("claim", True, None, ""), ("void", False, claim_key, "token:marketing")]

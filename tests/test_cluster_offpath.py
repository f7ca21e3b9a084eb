"""The uses of Redis off the hot path that name more than one key or run a transaction, on a
real Redis Cluster (the session's local 3 + 3 nodes; docs/scaling.md "Redis Cluster" lists
them): portal login limits, card views, the portal's card shelf, API tokens, alerts, member
sign-in rate limits, the rewards catalogue and a card import batch. Each is run as the gateway
runs it, through the ClusterStore or its redis-py RedisCluster client."""

from __future__ import annotations

import time

import pytest_twisted
from cryptography.fernet import Fernet
from test_cluster_store import cledger  # noqa: F401  (fixture)

from gateway.ledger import cardviews, feed, rewards
from gateway.security import tokenstore
from gateway.security.alerts.queue import AlertQueue
from gateway.security.secretbox import SecretBox
from gateway.web.portal import cardshelf
from gateway.web.portal.limits import LoginLimits
from protocols.model import Op, Request


@pytest_twisted.ensureDeferred
async def test_portal_login_limits_lock_and_unlock_in_one_slot(cledger):  # noqa: F811
    ledger = cledger
    portal = ledger.config.portal
    limits = LoginLimits(ledger.store.client, portal)

    async def run() -> list[bool]:
        seen = [await limits.address_allowed("192.0.2.7")]
        for _ in range(portal.max_failures - 1):
            seen.append(await limits.failed("Ann@Example.com"))
        seen.append(await limits.failed("ann@example.com"))  # the MULTI: lock, drop the count
        seen.append(await limits.locked("ann@example.com"))
        await limits.unlock("ann@example.com")  # one DEL of both keys
        seen.append(await limits.locked("ann@example.com"))
        return seen

    seen = await ledger.call(run())
    assert seen == [True] + [False] * (portal.max_failures - 1) + [True, True, False]


@pytest_twisted.ensureDeferred
async def test_card_views_are_counted_and_read_back(cledger):  # noqa: F811
    ledger = cledger
    program = ledger.config.programs["loyalty"]
    now = time.time()

    async def run() -> dict:
        await cardviews.count_view(ledger.store, program, "staff", now)  # MULTI: HINCRBY+EXPIRE
        await cardviews.count_view(ledger.store, program, "member", now)
        await cardviews.count_view(ledger.store, program, "member", now)
        day = int(now // 86400)
        return await cardviews.views(ledger.store, program.id, day - 2, day)  # a pipeline

    got = await ledger.call(run())
    assert list(got.values())[-1] == {"staff": 1, "member": 2}
    assert list(got.values())[0] == {"staff": 0, "member": 0}


@pytest_twisted.ensureDeferred
async def test_the_portal_card_shelf_remembers_a_card(cledger):  # noqa: F811
    ledger = cledger
    box = SecretBox(Fernet.generate_key())
    number = "6039530000000001"

    async def run() -> tuple[str | None, str | None]:
        cid = await cardshelf.remember(ledger.store.client, box, 7, number)  # MULTI
        return (await cardshelf.recall(ledger.store.client, box, 7, cid),
                await cardshelf.recall(ledger.store.client, box, 8, cid))

    assert await ledger.call(run()) == (number, None)


@pytest_twisted.ensureDeferred
async def test_api_tokens_are_created_and_listed_in_their_slot(cledger):  # noqa: F811
    ledger = cledger
    client = ledger.store.client

    async def run() -> tuple[list[str], bool]:
        made = [await tokenstore.create(client, f"t{i}", ["cards"], ["cards", "admin"])
                for i in range(6)]
        slots = {feed.key_slot(tokenstore.record_key(t.sha256.hex())) for t, _ in made}
        listed = await tokenstore.list_tokens(client)  # one pipeline of HGETALLs
        return sorted(t.name for t in listed), slots == {feed.key_slot(tokenstore.INDEX)}

    names, one_slot = await ledger.call(run())
    assert one_slot and names == [f"t{i}" for i in range(6)]


@pytest_twisted.ensureDeferred
async def test_an_alert_is_raised_once_per_window(cledger):  # noqa: F811
    ledger = cledger
    queue = AlertQueue(ledger.store)
    req = Request(op=Op.REDEEM, card="6039530000000001", amount=1, terminal="TILL0001",
                  merchant="STORE0000000001", key="L:1")

    async def run() -> tuple[str | None, str | None]:
        now = time.time()
        return (await queue.raise_event("advice-overdraft", req, "overdraft", 1, now),
                await queue.raise_event("advice-overdraft", req, "overdraft", 1, now))

    first, again = await ledger.call(run())
    assert first and again is None


@pytest_twisted.ensureDeferred
async def test_member_signin_rate_limits_count_in_their_slot(cledger):  # noqa: F811
    ledger = cledger
    req = Request(op=Op.BALANCE, card="6039530000000001", terminal="", merchant="",
                  key="signin", source="192.0.2.9")
    allowed = [await ledger.call(ledger.processor.signin_allowed(req, "c" * 32))
               for _ in range(11)]
    assert allowed == [True] * 10 + [False]  # member-signin-card: 10 in 10 minutes


@pytest_twisted.ensureDeferred
async def test_the_rewards_catalogue_is_kept_and_listed(cledger):  # noqa: F811
    ledger = cledger
    program = ledger.config.programs["loyalty"]
    mug = rewards.new_reward(ledger.config, program, "MUG", {"points": 40, "stock": 3})
    await ledger.call(rewards.put_reward(ledger.store, mug, "test", set_stock=True))
    listed = await ledger.call(rewards.list_rewards(ledger.store, program))
    assert {(r.id, r.stock) for r in listed} >= {("MUG", 3), ("COFFEE", None)}

"""The portal's customers pages over real HTTP, on a gateway in the test process (its own real
Redis, real sockets, the back office on SQLite and on a real PostgreSQL): the list paged by
code, searched by name, e-mail, phone and card number (POSTed: the number never in a URL, never
shown back), the CSV
of a search, a customer's page with their card's balance from Redis and its history; a
merchant manager sees the holders of cards used at their merchant (the journal's entries,
written by the gateway's own feed consumer) and is refused the others, staff everything."""

from __future__ import annotations

import asyncio
import csv
import functools
import html
import io
import re
import secrets
import time

import pytest_twisted
from isohelpers import new_card
from portalclient import web
from test_portal_analytics import log_in
from test_portal_security import start

from gateway.backoffice import customers, links
from gateway.reactor import deferred_from_coro
from protocols.model import RC, Op, Request

CODE = re.compile(r'<a href="/ui/customers/show\?code=(\w+)">')
NEXT = re.compile(r'id="next-page" href="([^"]+)"')
CUSTOMERS = 120


async def setup(factory, backoffice_url: str, redis_url: str):
    """A gateway with 120 customers (C0001..C0120; C0007 is Ada Lovelace) and one gift card,
    activated with 25.00 at STORE0000000001 and held by Ada: (gateway, portal, port, clock,
    card number)."""
    gw, portal, port, clock = await start(functools.partial(factory, redis_url=redis_url),
                                          backoffice_url)
    card, _ = await new_card(gw.gateway, "gift")
    run = str(secrets.randbelow(10**9))
    activated = await gw.gateway.processor.submit(Request(
        op=Op.ACTIVATE, card=card, amount=2500, terminal="TILL0001",
        merchant="STORE0000000001", key=f"L:TILL0001:STORE0000000001:{run}:20261205"))
    assert activated.code == RC.APPROVED

    async def fill():
        engine = await portal.engine()
        async with engine.begin() as conn:
            for i in range(1, CUSTOMERS + 1):
                await customers.add_customer(conn, {
                    "code": f"C{i:04d}", "name": "Ada Lovelace" if i == 7 else f"Person {i:03d}",
                    "email": f"p{i:03d}@example.com", "phone": f"+44 20 7946 {i:04d}"})
        await links.link_card(engine, portal.store(), "C0007", card, who="test")

    await deferred_from_coro(fill())
    return gw, portal, port, clock, card


def codes(body: str) -> list[str]:
    return CODE.findall(body)


@pytest_twisted.ensureDeferred
async def test_the_list_pages_searches_and_downloads(tillgate_inprocess_factory,
                                                     backoffice_url, redis_url):
    _gw, portal, port, clock, card = await setup(tillgate_inprocess_factory, backoffice_url,
                                                 redis_url)
    boss = await log_in(portal, port, clock, "boss@example.com", "head_office")
    first = await web(boss.get, "/ui/customers")
    assert first.status == 200, first.body[:2000]
    assert codes(first.body) == [f"C{i:04d}" for i in range(1, 51)]
    assert "120 customers." in first.body
    pages = [codes(first.body)]
    following = NEXT.search(first.body)
    while following:  # keyset: each next page starts after the last code shown
        page = await web(boss.get, html.unescape(following.group(1)))
        assert page.status == 200
        pages.append(codes(page.body))
        following = NEXT.search(page.body)
    assert [len(p) for p in pages] == [50, 50, 20]
    assert sum(pages, []) == [f"C{i:04d}" for i in range(1, CUSTOMERS + 1)]

    async def found(q: str) -> list[str]:
        answer = await web(boss.get, "/ui/customers?" + f"q={q}")
        assert answer.status == 200
        return codes(answer.body)

    assert await found("lovelace") == ["C0007"]  # name, any case
    assert await found("P042%40EXAMPLE") == ["C0042"]  # e-mail
    assert await found("7946+0099") == ["C0099"]  # phone
    assert await found("100%25") == []  # a % is a character, not a wildcard
    # the form is POSTed: a card number never goes into a URL
    by_card = await web(boss.post, "/ui/customers", {"csrf": first.csrf, "q": card})
    assert by_card.status == 200
    assert codes(by_card.body) == ["C0007"]
    assert card not in by_card.body  # shown back masked only
    assert f"{card[:6]}" in by_card.body and card[-4:] in by_card.body
    assert "customers.csv" not in by_card.body  # a CSV link would need the number in its URL
    assert await found(card) == []  # a GET's q is text: no card lookup from a URL
    text = await web(boss.post, "/ui/customers", {"csrf": first.csrf, "q": "Ada Love"})
    assert (text.status, text.location) == (303, "/ui/customers?q=Ada%20Love")
    refused = await web(boss.post, "/ui/customers", {"csrf": "forged", "q": card})
    assert refused.status == 403

    download = await web(boss.get, "/ui/customers.csv?q=lovelace")
    assert download.status == 200
    assert download.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(download.body)))
    assert rows[0][:5] == ["code", "name", "email", "phone", "type"]
    assert [r[:2] for r in rows[1:]] == [["C0007", "Ada Lovelace"]]
    assert card not in download.body and rows[1][8].endswith(card[-4:])  # masked

    ada = await web(boss.get, "/ui/customers/show?code=C0007")
    assert ada.status == 200
    assert "Ada Lovelace" in ada.body and card not in ada.body
    assert '<td data-label="Balance" class="num">25.00</td>' in ada.body  # from Redis
    missing = await web(boss.get, "/ui/customers/show?code=NOPE")
    assert missing.status == 404


@pytest_twisted.ensureDeferred
async def test_a_manager_sees_their_merchants_customers_and_staff_none(
        tillgate_inprocess_factory, backoffice_url, redis_url):
    _gw, portal, port, clock, card = await setup(tillgate_inprocess_factory, backoffice_url,
                                                 redis_url)
    manager = await log_in(portal, port, clock, "meg@example.com", "merchant_manager",
                           "STORE0000000001")
    deadline = time.monotonic() + 20  # the gateway's feed consumer writes the activation
    while True:
        mine = await web(manager.get, "/ui/customers")
        assert mine.status == 200
        if codes(mine.body) or time.monotonic() > deadline:
            break
        await deferred_from_coro(asyncio.sleep(0.2))
    assert codes(mine.body) == ["C0007"]  # the holder of a card used at their merchant
    assert "1 customer with a card used at STORE0000000001." in mine.body
    assert (await web(manager.get, "/ui/customers/show?code=C0007")).status == 200
    history = (await web(manager.get, "/ui/customers/show?code=C0007")).body
    assert "activate" in history and "STORE0000000001" in history
    # another customer, and the CSV, are out of their reach
    assert (await web(manager.get, "/ui/customers/show?code=C0008")).status == 404
    rows = list(csv.reader(io.StringIO((await web(manager.get, "/ui/customers.csv")).body)))
    assert [r[0] for r in rows[1:]] == ["C0007"]

    other = await log_in(portal, port, clock, "olaf@example.com", "merchant_manager",
                         "OTHERSTORE00001")
    assert codes((await web(other.get, "/ui/customers")).body) == []
    assert (await web(other.get, "/ui/customers/show?code=C0007")).status == 404
    form = await web(other.get, "/ui/customers")
    assert codes((await web(other.post, "/ui/customers", {"csrf": form.csrf, "q": card})
                  ).body) == []

    staff = await log_in(portal, port, clock, "sam@example.com", "staff", "STORE0000000001")
    for path in ("/ui/customers", "/ui/customers.csv", "/ui/customers/show?code=C0007"):
        assert (await web(staff.get, path)).status == 403, path
    desk = await web(staff.get, "/ui/staff")
    assert (await web(staff.post, "/ui/customers", {"csrf": desk.csrf, "q": card})
            ).status == 403

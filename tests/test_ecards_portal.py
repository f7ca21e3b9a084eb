"""The portal's e-card page over real HTTP (tests/portalclient.py), on a gateway in the test
process whose e-card queue is off, so orders stay queued: who may use the page and order in
which program, who sees which orders, a re-posted form placing one order, bad input answered
400 with the form kept, the number and PIN never on the page, and the stuck-queue banner."""

from __future__ import annotations

import re

import pytest_twisted
from portalclient import Client, Clock, web
from test_portal_security import CLUB, logged_in, make_operator

from gateway.backoffice import ecards as rows
from gateway.reactor import deferred_from_coro

QUEUE_OFF = "\n[ecards]\nenabled = false\nstuck_minutes = 30\n[portal]\nidle_minutes = 120\n"


async def start(factory):
    gw = await factory(extra=CLUB + QUEUE_OFF)
    redis = gw.gateway.store_service.store.client
    stale = await deferred_from_coro(redis.keys("portal:*"))
    if stale:
        await deferred_from_coro(redis.delete(*stale))
    portal = gw.gateway.portal
    portal.clock = Clock()
    return gw, portal, gw.gateway.http.port.getHost().port, portal.clock


def fields(page, **changes) -> dict[str, str]:
    key = re.search(r'name="order_key" value="([^"]+)"', page.body).group(1)
    form = {"csrf": page.csrf, "order_key": key, "program": "gift", "amount": "25.00",
            "recipient_name": "Flo", "recipient_email": "flo@example.com",
            "sender_name": "The shop", "message": "Enjoy", "deliver_on": ""}
    form.update(changes)
    return form


async def all_orders(gw) -> list[rows.EcardRow]:
    engine = await deferred_from_coro(gw.gateway.backoffice.engine())
    found, _ = await deferred_from_coro(rows.listing(engine, limit=500))
    return found


@pytest_twisted.ensureDeferred
async def test_orders_roles_and_the_stuck_banner(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory)
    _h, head_secret = await make_operator(portal, "hal@example.com")
    _m, manager_secret = await make_operator(portal, "meg@example.com", "merchant_manager",
                                             "STORE0000000001")
    _s, staff_secret = await make_operator(portal, "sam@example.com", "staff",
                                           "STORE0000000001")
    staff = await logged_in(port, "sam@example.com", staff_secret, clock)
    assert (await web(staff.get, "/ui/ecards")).status == 403
    assert "/ui/ecards" not in (await web(staff.get, "/ui/cards")).body  # no link either
    assert (await web(Client(port).get, "/ui/ecards")).location == "/ui/login"

    manager = await logged_in(port, "meg@example.com", manager_secret, clock)
    page = await web(manager.get, "/ui/ecards")
    assert page.status == 200 and 'value="gift"' in page.body
    assert 'value="club"' not in page.body  # a club of another merchant
    refused = await web(manager.post, "/ui/ecards", fields(page, program="club"))
    assert refused.status == 400 and "Choose one of the programs" in refused.body
    form = fields(page)
    placed = await web(manager.post, "/ui/ecards", form)
    assert placed.location == "/ui/ecards?done=ordered"
    again = await web(manager.post, "/ui/ecards", form)  # the same form posted twice
    assert again.location == "/ui/ecards?done=ordered"
    [mine] = [o for o in await all_orders(gw) if o.client.startswith("portal:")]
    listed = await web(manager.get, "/ui/ecards?done=ordered")
    assert "The e-card is ordered" in listed.body and mine.card_mask in listed.body
    assert "flo@example.com" in listed.body and "queued" in listed.body
    # bad input: 400, its reason, the typed values kept
    bad = await web(manager.post, "/ui/ecards", fields(listed, amount="2.505",
                                                       recipient_name="Gus"))
    assert bad.status == 400 and "Amount: a sum such as 25.00" in bad.body
    assert 'value="Gus"' in bad.body
    bad = await web(manager.post, "/ui/ecards", fields(listed, recipient_email="gus@"))
    assert bad.status == 400 and "Recipient_email: an e-mail address" in bad.body
    late = await web(manager.post, "/ui/ecards", fields(listed, deliver_on="2026-02-30"))
    assert late.status == 400 and "Delivery day" in late.body

    head = await logged_in(port, "hal@example.com", head_secret, clock)
    page = await web(head.get, "/ui/ecards")
    assert 'value="club"' in page.body and mine.card_mask in page.body
    assert (await web(head.post, "/ui/ecards", fields(page, program="club", amount="10",
                                                      deliver_on="2030-01-01"))).status == 400
    club_order = await web(head.post, "/ui/ecards", fields(page, program="club", amount="10"))
    assert club_order.location == "/ui/ecards?done=ordered"
    orders = await all_orders(gw)
    [theirs] = [o for o in orders if o.program == "club"]
    assert theirs.client != mine.client
    assert theirs.card_mask not in (await web(manager.get, "/ui/ecards")).body  # not theirs
    # a manager cannot resend head office's order; a queued one is not resent
    page = await web(manager.get, "/ui/ecards")
    assert (await web(manager.post, "/ui/ecards/resend", {
        "csrf": page.csrf, "id": theirs.id})).status == 404
    assert (await web(manager.post, "/ui/ecards/resend", {
        "csrf": page.csrf, "id": mine.id})).status == 409

    assert "stuck" not in page.body
    clock.advance(31 * 60)  # nothing sends (the queue is off): the e-mails are late
    page = await web(head.get, "/ui/ecards")
    assert "The e-mail queue is stuck" in page.body and "31 minutes" in page.body
    # neither a number nor a PIN anywhere on the page
    for order in await all_orders(gw):
        box = portal.box()
        assert box.open(order.card_sealed) not in page.body
        assert order.pin_sealed is None  # the gift program has no PINs

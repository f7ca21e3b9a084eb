"""Tiers and expiry over the wire: the tier answered in field 63 `TR` (ISO 8583) and `tier`
(TGL/1) the moment an earn reaches SILVER, and the sweep service of a running gateway expiring a
card's due lot; real TCP sockets, the session's redis-server."""

from __future__ import annotations

import time

import pytest_twisted
from isohelpers import in_thread, new_card
from linetill import tgl_request
from test_iso_listener import TILL, gateway, till  # noqa: F401  (fixture)
from test_ledger_support import ledger  # noqa: F401  (fixture)
from test_ledger_undo import journal_of
from test_line_tcp import TERM, tcp_line
from test_points_lots import at
from twisted.internet import reactor
from twisted.internet.task import deferLater

from protocols import field63
from protocols.isobuild import StanCounter, request_fields
from protocols.model import Op


@pytest_twisted.ensureDeferred
async def test_tier_up_is_answered_in_TR_over_iso(gateway):  # noqa: F811
    card, _ = await new_card(gateway, "loyalty")
    stans = StanCounter()

    def session():
        with till(gateway) as c:
            out = [c.exchange(request_fields(Op.ACTIVATE, card=card, loyalty=True, amount=0,
                                             stan=stans.next(), **TILL))]
            for amount in (49_900, 100, 1_000):
                out.append(c.exchange(request_fields(Op.EARN, card=card, amount=amount,
                                                     stan=stans.next(), **TILL)))
            return out

    activate, *earns = await in_thread(session)
    assert activate["39"] == "00"
    tags = [field63.parse(r["63"])[0] for r in earns]
    assert [(r["39"], t["PT"], t["TR"]) for r, t in zip(earns, tags)] == [
        ("00", "499", "BRONZE"), ("00", "500", "SILVER"), ("00", "520", "SILVER")]


@pytest_twisted.ensureDeferred
async def test_tier_up_is_answered_in_tier_over_tgl(ledger):  # noqa: F811
    card = await ledger.issue("loyalty", activate=0)
    async with tcp_line(ledger) as (_service, line):
        r = await line.request(tgl_request(id="1", op="earn", card=card, amt="49900", **TERM))
        assert (r["rc"], r["pts"], r["tier"]) == ("00", "499", "BRONZE")
        r = await line.request(tgl_request(id="2", op="earn", card=card, amt="100", **TERM))
        assert (r["rc"], r["pts"], r["tier"]) == ("00", "500", "SILVER")
        r = await line.request(tgl_request(id="3", op="pbalance", card=card, **TERM))
        assert (r["rc"], r["pts"], r["tier"]) == ("00", "500", "SILVER")


@pytest_twisted.ensureDeferred
async def test_a_running_gateway_sweeps_due_lots(ledger, tillgate_inprocess_factory,  # noqa: F811
                                                  redis_url):
    today = int(time.time() // 86400)
    at(ledger, today - 400)  # a card that earned 400 days ago and was never used since
    card = await ledger.issue("loyalty", activate=0)
    await ledger.send(Op.EARN, card, 12_300)
    gw = (await tillgate_inprocess_factory(redis_url=redis_url)).gateway
    deadline = time.monotonic() + 10
    while gw.points_sweep.runs == 0:
        assert time.monotonic() < deadline, "no sweep within 10 s of the start"
        await deferLater(reactor, 0.05, lambda: None)
    entries = await ledger.call(journal_of(ledger.store, card))
    assert [(e.op, e.dp, e.pts) for e in entries][-1] == ("expire", -123, 0)

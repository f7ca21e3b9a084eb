"""The staff dashboard and online transaction entry over real HTTP, on a gateway in the test
process (real Redis, real sockets, the back office on SQLite and, for recent interactions, a
real PostgreSQL too): a portal transaction is a till's Request through the live Processor, so
it earns what a till's earn earns and shows the tier, lands in the journal with the staff
member's id, claims rewards through the catalogue, is refused outside the club with 58, and an
invoice number used once is refused the second time with the tills' 94."""

from __future__ import annotations

import re
import secrets
import time

import pytest_twisted
from isohelpers import new_card
from portalclient import Answer, Client, make_operator, web
from test_portal_security import logged_in, start

from gateway.ledger import cards, rewards
from gateway.ledger.journal import latest
from gateway.reactor import deferred_from_coro
from protocols.carddata import generate_card_number
from protocols.model import Op, Request, mask_card

STORE = "STORE0000000001"
EXTRA = """
[merchants.OTHERSTORE00001]
name = "Other Store"
terminals = ["OTHER001"]
portal_terminal = "WEB00002"

[merchants.NOWEB000000001]
name = "Store without a portal terminal"
terminals = ["NOWEB001"]

[programs.clubpts]
kind = "loyalty"
currency = "840"
prefix = "88"
card_length = 10
luhn = false
points_per_unit = 1
merchants = ["STORE0000000001"]

[programs.plain]
kind = "loyalty"
currency = "840"
prefix = "89"
card_length = 10
luhn = false
points_per_unit = 1
points_only = false
"""
FIELD = re.compile(r'name="(ch|nonce)" value="([^"]*)"')


def fields_of(page: Answer) -> dict[str, str]:
    """The open card's key id and the forms' nonce (the card's forms share them and come
    before the recent interactions, whose buttons carry their own cards' key ids)."""
    found: dict[str, str] = {}
    for name, value in FIELD.findall(page.body):
        found.setdefault(name, value)
    return found


def answer_code(page: Answer) -> str | None:
    found = re.search(r'id="answer-code">(\d\d)<', page.body)
    return found.group(1) if found else None


def fact(page: Answer, name: str) -> str | None:
    found = re.search(rf'id="{name}">([^<]*)<', page.body)
    return found.group(1) if found else None


async def till(gw, op: Op, card: str, amount: int = 0, invoice: str | None = None,
               terminal: str = "TILL0001") -> object:
    """A till's request, through the same Processor the listeners submit to."""
    req = Request(op=op, terminal=terminal, merchant=STORE, key="T:" + secrets.token_hex(8),
                  card=card, amount=amount, invoice=invoice, channel="tgl")
    return await gw.gateway.processor.submit(req)


async def active_card(gw, program: str, amount: int = 0, invoice: str | None = None) -> str:
    card, _pin = await new_card(gw.gateway, program)
    result = await till(gw, Op.ACTIVATE, card, amount, invoice)
    assert result.code == "00", result
    return card


async def open_card(client: Client, card: str) -> Answer:
    page = await web(client.get, "/ui/staff")
    return await web(client.post, "/ui/staff", {"csrf": page.csrf, "card": card})


async def act(client: Client, page: Answer, action: str, **values: str) -> Answer:
    return await web(client.post, f"/ui/staff/{action}",
                     {"csrf": page.csrf, **fields_of(page), **values})


async def state(gw, card: str) -> cards.CardView:
    view = await deferred_from_coro(cards.show_card(gw.gateway.store_service.store, card))
    assert view is not None
    return view


async def journal(gw, card: str, count: int = 10):
    return await deferred_from_coro(latest(gw.gateway.store_service.store,
                                           cards.journal_key(cards.card_id(card)), count))


@pytest_twisted.ensureDeferred
async def test_staff_earn_is_a_till_earn_with_the_tier_and_the_staff_id(
        tillgate_inprocess_factory, backoffice_url):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, backoffice_url, EXTRA)
    op, secret = await make_operator(portal, "ida@example.com", "staff", STORE)
    staff = await logged_in(port, "ida@example.com", secret, clock)
    assert (await web(staff.get, "/ui/")).location == "/ui/staff"  # staff land on their desk
    at_desk, at_till = await active_card(gw, "loyalty"), await active_card(gw, "loyalty")

    page = await open_card(staff, f"tillgate:card/{at_desk}")  # as the camera scanner fills it
    assert page.status == 200 and mask_card(at_desk) in page.body and at_desk not in page.body
    assert fact(page, "card-tier") == "BRONZE"
    first = await act(staff, page, "earn", amount="600.00")
    # the tills' rules: 1 point per 1.00 at BRONZE, then SILVER from 500 points (HOST-SPEC 6)
    assert (answer_code(first), fact(first, "answer-moved"), fact(first, "answer-points"),
            fact(first, "answer-tier")) == ("00", "600", "600", "SILVER")
    second = await act(staff, first, "earn", amount="10.00")  # 2 points per 1.00 at SILVER
    assert (fact(second, "answer-moved"), fact(second, "answer-points")) == ("20", "620")

    by_till = [await till(gw, Op.EARN, at_till, amount) for amount in (60000, 1000)]
    assert [(r.points, r.tier) for r in by_till] == [(600, "SILVER"), (620, "SILVER")]

    again = await act(staff, page, "earn", amount="600.00")  # the first form sent twice
    assert answer_code(again) == "00" and (await state(gw, at_desk)).points == 620
    # that form's request key with other content is another request under a used key (94)
    assert answer_code(await act(staff, page, "earn", amount="1.00")) == "94"

    earns = [e for e in await journal(gw, at_desk) if e.op == "earn"]
    assert [(e.dp, e.operator, e.terminal, e.merchant) for e in earns] == [
        (600, f"ui:{op.id}", "WEB00001", STORE), (20, f"ui:{op.id}", "WEB00001", STORE)]
    assert all(e.key.startswith(f"P:WEB00001:{STORE}:ui:{op.id}:") for e in earns)


@pytest_twisted.ensureDeferred
async def test_points_only_mode_is_the_programs(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, extra=EXTRA)
    _op, secret = await make_operator(portal, "pat@example.com", "staff", STORE)
    staff = await logged_in(port, "pat@example.com", secret, clock)
    points_only, plain = await active_card(gw, "loyalty"), await active_card(gw, "plain")

    page = await open_card(staff, points_only)
    assert 'action="/ui/staff/points"' in page.body and 'action="/ui/staff/earn"' in page.body
    added = await act(staff, page, "points", points="75")
    assert (answer_code(added), fact(added, "answer-moved")) == ("00", "75")
    assert (await state(gw, points_only)).points == 75
    assert (await act(staff, added, "points", points="1.5")).status == 400  # whole points only

    page = await open_card(staff, plain)
    assert 'action="/ui/staff/points"' not in page.body  # not offered where the program is off
    forged = await act(staff, page, "points", points="75")
    assert answer_code(forged) == "12"  # and refused as a till's padd would be
    assert (await state(gw, plain)).points == 0


@pytest_twisted.ensureDeferred
async def test_a_reward_claim_takes_points_and_stock(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, extra=EXTRA)
    op, secret = await make_operator(portal, "ria@example.com", "staff", STORE)
    staff = await logged_in(port, "ria@example.com", secret, clock)
    store = gw.gateway.store_service.store
    # a program of this test's own: the suite's gateways share one Redis, and others list
    # the default program's catalogue
    program = gw.config.programs["plain"]
    rid = "T" + secrets.token_hex(4)
    await deferred_from_coro(rewards.put_reward(store, rewards.Reward(
        program="plain", id=rid, name="Test mug", points=100, stock=2), "test", True))
    card = await active_card(gw, "plain")
    assert (await till(gw, Op.EARN, card, 15000)).code == "00"

    page = await open_card(staff, card)
    assert f'value="{rid}"' in page.body and "Test mug: 100 points (2 left)" in page.body
    claimed = await act(staff, page, "claim", reward=rid)
    assert (answer_code(claimed), fact(claimed, "answer-moved"),
            fact(claimed, "answer-points")) == ("00", "100", "50")
    reward = await deferred_from_coro(rewards.get_reward(store, program, rid))
    assert reward is not None and (reward.stock, reward.claimed) == (1, 1)
    entry = (await journal(gw, card, 1))[0]
    assert (entry.reward, entry.dp, entry.operator) == (rid, -100, f"ui:{op.id}")
    # now short of points: shown without a choice, and refused (51) if sent anyway
    assert f'value="{rid}"' not in claimed.body and "not enough points" in claimed.body
    again = await act(staff, claimed, "claim", reward=rid)
    assert answer_code(again) == "51"
    reward = await deferred_from_coro(rewards.get_reward(store, program, rid))
    assert reward is not None and reward.stock == 1


@pytest_twisted.ensureDeferred
async def test_staff_outside_the_club_are_refused_with_58(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, extra=EXTRA)
    _o, other_secret = await make_operator(portal, "oli@example.com", "staff", "OTHERSTORE00001")
    _i, ida_secret = await make_operator(portal, "ivy@example.com", "staff", STORE)
    other = await logged_in(port, "oli@example.com", other_secret, clock)
    inside = await logged_in(port, "ivy@example.com", ida_secret, clock)
    card = await active_card(gw, "clubpts")

    refused = await open_card(other, card)
    assert refused.status == 403 and "(58" in refused.body and mask_card(card) not in refused.body
    page = await open_card(inside, card)
    assert page.status == 200 and mask_card(card) in page.body
    # the key id of a card on someone else's shelf opens nothing
    forged = await web(other.post, "/ui/staff/earn", {"csrf": refused.csrf, "amount": "10.00",
                                                      **fields_of(page)})
    assert forged.status == 404 and (await state(gw, card)).points == 0


@pytest_twisted.ensureDeferred
async def test_a_form_without_its_csrf_token_changes_nothing(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, extra=EXTRA)
    _op, secret = await make_operator(portal, "cat@example.com", "staff", STORE)
    staff = await logged_in(port, "cat@example.com", secret, clock)
    card = await active_card(gw, "loyalty")
    page = await open_card(staff, card)
    for token in ("", "x" * 43):
        sent = await web(staff.post, "/ui/staff/earn", {"csrf": token, "amount": "10.00",
                                                        **fields_of(page)})
        assert sent.status == 403 and "Form expired" in sent.body
    assert (await state(gw, card)).points == 0
    assert answer_code(await act(staff, page, "earn", amount="10.00")) == "00"


@pytest_twisted.ensureDeferred
async def test_recent_interactions_reopen_the_card(tillgate_inprocess_factory, backoffice_url):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, backoffice_url, EXTRA)
    _op, secret = await make_operator(portal, "rex@example.com", "staff", STORE)
    _o, other_secret = await make_operator(portal, "una@example.com", "staff", STORE)
    staff = await logged_in(port, "rex@example.com", secret, clock)
    other = await logged_in(port, "una@example.com", other_secret, clock)
    served = await active_card(gw, "loyalty")
    page = await act(staff, await open_card(staff, served), "earn", amount="5.00")
    assert answer_code(page) == "00"

    deadline = time.monotonic() + 30  # the journal reaches SQL through the back office's feed
    desk = await web(staff.get, "/ui/staff")
    while mask_card(served) not in desk.body:
        assert time.monotonic() < deadline, "the earn never reached recent interactions"
        await deferred_from_coro(_pause())
        desk = await web(staff.get, "/ui/staff")
    assert served not in desk.body
    ch = cards.card_id(served)
    assert f'value="{ch}"' in desk.body
    reopened = await web(staff.post, "/ui/staff/open", {"csrf": desk.csrf, "ch": ch})
    assert reopened.status == 200 and fact(reopened, "card-points") == "5"
    # not in the other staff member's interactions, and not theirs to reopen
    theirs = await web(other.get, "/ui/staff")
    assert mask_card(served) not in theirs.body
    assert (await web(other.post, "/ui/staff/open", {"csrf": theirs.csrf, "ch": ch})
            ).status == 404


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.2)


async def _review(client: Client, **values: str) -> Answer:
    page = await web(client.get, "/ui/entry")
    return await web(client.post, "/ui/entry", {"csrf": page.csrf, **values})


async def _send(client: Client, review: Answer, **values: str) -> Answer:
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"',
                             review.body))
    return await web(client.post, "/ui/entry/send", {**hidden, **values})


@pytest_twisted.ensureDeferred
async def test_entry_confirms_then_sends_and_refuses_a_used_invoice(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, extra=EXTRA)
    op, secret = await make_operator(portal, "max@example.com", "merchant_manager", STORE)
    manager = await logged_in(port, "max@example.com", secret, clock)
    card, pin = await new_card(gw.gateway, "secure")  # PIN and invoice number required
    assert (await till(gw, Op.ACTIVATE, card, 1000, invoice="A" + secrets.token_hex(4))
            ).code == "00"
    invoice = "INV-" + secrets.token_hex(4)

    review = await _review(manager, card=card, kind="load", amount="25.00", invoice=invoice)
    assert review.status == 200 and "Nothing has been sent yet" in review.body
    assert mask_card(card) in review.body and card not in review.body
    assert (await state(gw, card)).balance == 1000  # checked and shown back only
    sent = await _send(manager, review)
    assert (answer_code(sent), fact(sent, "answer-balance")) == ("00", "35.00")
    assert (answer_code(await _send(manager, review)), (await state(gw, card)).balance) == (
        "00", 3500)  # "Send" twice: one load

    used = await _review(manager, card=card, kind="load", amount="25.00", invoice=invoice)
    assert answer_code(await _send(manager, used)) == "94"  # the tills' invoice de-dup
    assert (await state(gw, card)).balance == 3500

    missing = await _review(manager, card=card, kind="purchase", amount="5.00")
    assert missing.status == 400 and "needs an invoice number" in missing.body
    purchase = await _review(manager, card=card, kind="purchase", amount="5.00",
                             invoice="P" + secrets.token_hex(4))
    assert 'name="pin"' in purchase.body  # asked for at the confirmation, never carried
    assert answer_code(await _send(manager, purchase, pin=pin or "")) == "00"
    assert (await state(gw, card)).balance == 3000
    entry = (await journal(gw, card, 1))[0]
    assert (entry.op, entry.terminal, entry.operator) == ("redeem", "WEB00001", f"ui:{op.id}")


@pytest_twisted.ensureDeferred
async def test_entry_is_for_managers_of_merchants_with_a_portal_terminal(
        tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, extra=EXTRA)
    _s, staff_secret = await make_operator(portal, "sol@example.com", "staff", STORE)
    _n, noweb_secret = await make_operator(portal, "nia@example.com", "merchant_manager",
                                           "NOWEB000000001")
    _h, head_secret = await make_operator(portal, "hal@example.com")
    staff = await logged_in(port, "sol@example.com", staff_secret, clock)
    assert (await web(staff.get, "/ui/entry")).status == 403
    noweb = await logged_in(port, "nia@example.com", noweb_secret, clock)
    assert "portal_terminal" in (await web(noweb.get, "/ui/entry")).body
    head = await logged_in(port, "hal@example.com", head_secret, clock)
    club = generate_card_number("88", 10, False)
    refused = await _review(head, merchant="OTHERSTORE00001", card=club, kind="purchase",
                            amount="5.00")
    assert refused.status == 403 and "(58" in refused.body

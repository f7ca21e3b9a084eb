"""Card actions on the portal's card page, over real HTTP on a gateway in the test process (real
Redis, real sockets): status changes with their confirmation step and the operator in the
journal, the admin API's message for a change the card's state refuses, the roles (staff may
suspend only), a card reference that is another operator's or tampered with, a rollback that
writes a compensating entry, and a transfer that moves the exact balance, once."""

from __future__ import annotations

import logging
import re
import secrets

import pytest_twisted
from portalclient import PASSWORD, Answer, Client, make_operator, web
from test_portal_security import CLUB, logged_in, start

from gateway.ledger import cards
from gateway.ledger.journal import latest
from gateway.reactor import deferred_from_coro
from protocols.carddata import generate_card_number, generate_pin
from protocols.model import Op, Request

REF = re.compile(r'name="ref" value="([^"]*)"')
HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


async def new_card(gw, program_id: str, load: int | None = None) -> str:
    """A card issued (and activated with `load`) in the gateway's store."""
    store = gw.gateway.store_service.store
    program = gw.gateway.config.programs[program_id]
    card = generate_card_number(program.prefix, program.card_length_max, program.luhn)
    pin = generate_pin(program.pin_length) if program.pin_required else None
    assert await deferred_from_coro(cards.issue_card(store, program, card, pin))
    if load is not None:
        result = await deferred_from_coro(gw.gateway.processor.processor.operator_apply(
            cards.operator_activation(card, load, 0, "TEST", f"T:{secrets.token_hex(8)}", "test")))
        assert result.approved, result
    return card


async def look_up(client: Client, card: str) -> Answer:
    page = await web(client.get, "/ui/cards")
    answer = await web(client.post, "/ui/cards", {"csrf": page.csrf, "card": card})
    assert answer.status == 200, answer.body
    return answer


async def action(client: Client, page: Answer, name: str, **extra: str) -> Answer:
    """Send the card page's form of action `name` (its sealed card reference included)."""
    found = REF.search(page.body)
    assert found, page.body
    return await web(client.post, "/ui/cards/action",
                     {"csrf": page.csrf, "ref": found.group(1), "action": name, **extra})


async def confirm(client: Client, page: Answer) -> Answer:
    """Send the confirmation page's form as it is."""
    return await web(client.post, "/ui/cards/action", dict(HIDDEN.findall(page.body)))


async def state(gw, card: str) -> dict[str, str]:
    store = gw.gateway.store_service.store
    raw = await deferred_from_coro(store.command("HGETALL", cards.state_key(cards.card_id(card))))
    return {k.decode(): v.decode() for k, v in raw.items()}


async def journal(gw, card: str):
    store = gw.gateway.store_service.store
    return await deferred_from_coro(latest(store, cards.journal_key(cards.card_id(card)), 50))


@pytest_twisted.ensureDeferred
async def test_status_changes_confirmed_and_journaled_with_the_operator(
        tillgate_inprocess_factory, caplog):
    caplog.set_level(logging.DEBUG)
    gw, portal, port, clock = await start(tillgate_inprocess_factory)
    card = await new_card(gw, "gift", 2500)
    op, secret = await make_operator(portal, "amy@example.com")
    client = await logged_in(port, "amy@example.com", secret, clock)
    page = await look_up(client, card)
    assert card not in page.body and "Suspend" in page.body  # a sealed reference, no number
    done = await action(client, page, "suspend")
    assert done.status == 200 and "active -&gt; suspended" in done.body
    entry = (await journal(gw, card))[-1]
    assert (entry.op, entry.terminal, entry.operator) == (
        "status:suspended", f"portal:{op.id}", f"portal:{op.id}")
    done = await action(client, done, "reinstate")
    assert "suspended -&gt; active" in done.body
    asked = await action(client, done, "close")  # final: a confirmation page first
    assert asked.status == 200 and "cannot be reinstated" in asked.body
    assert (await state(gw, card))["status"] == "active"
    closed = await confirm(client, asked)
    assert closed.status == 200 and "active -&gt; closed" in closed.body
    again = await action(client, closed, "reinstate")  # the API's message, not a 500
    assert again.status == 409 and "Not changed: card is closed." in again.body
    unlocked = await action(client, again, "unlock")
    assert unlocked.status == 409 and "not locked" in unlocked.body
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert card not in logged and cards.mask_card(card) in logged and PASSWORD not in logged


@pytest_twisted.ensureDeferred
async def test_staff_may_suspend_only_and_references_are_their_own(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory)
    card = await new_card(gw, "gift", 1000)
    _s, staff_secret = await make_operator(portal, "stu@example.com", "staff", "STORE0000000001")
    _m, manager_secret = await make_operator(portal, "meg@example.com", "merchant_manager",
                                             "STORE0000000001")
    staff = await logged_in(port, "stu@example.com", staff_secret, clock)
    page = await look_up(staff, card)
    assert "Suspend" in page.body and "Close" not in page.body and "Roll back" not in page.body
    for name in ("close", "lost", "rollback", "unlock", "reinstate"):
        refused = await action(staff, page, name, confirm="yes")
        assert refused.status == 403 and "Your role may not" in refused.body, name
    assert (await state(gw, card))["status"] == "active"
    # a reference sealed for the staff member opens nothing for the manager, nor a forged one
    manager = await logged_in(port, "meg@example.com", manager_secret, clock)
    mine = await look_up(manager, card)
    stolen = REF.search(page.body).group(1)
    for ref in (stolen, stolen[:-4] + "AAAA", ""):
        refused = await web(manager.post, "/ui/cards/action",
                            {"csrf": mine.csrf, "ref": ref, "action": "suspend"})
        assert refused.status == 400 and "out of date" in refused.body
    no_csrf = await web(manager.post, "/ui/cards/action",
                        {"ref": REF.search(mine.body).group(1), "action": "suspend"})
    assert no_csrf.status == 403
    assert (await state(gw, card))["status"] == "active"
    done = await action(staff, page, "suspend")
    assert done.status == 200 and (await state(gw, card))["status"] == "suspended"
    assert (await action(manager, mine, "reinstate")).status == 200


@pytest_twisted.ensureDeferred
async def test_rollback_writes_a_compensating_entry(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory)
    card = await new_card(gw, "gift", 2500)
    reload = await deferred_from_coro(gw.gateway.processor.processor.operator_apply(Request(
        op=Op.RELOAD, terminal="TEST", merchant="TEST", key=f"R:{secrets.token_hex(8)}", card=card,
        amount=1000)))
    assert reload.approved and reload.balance == 3500
    op, secret = await make_operator(portal, "rob@example.com", "merchant_manager",
                                     "STORE0000000001")
    client = await logged_in(port, "rob@example.com", secret, clock)
    page = await look_up(client, card)
    asked = await action(client, page, "rollback")
    assert asked.status == 200 and "reload of +10.00" in asked.body
    assert (await state(gw, card))["bal"] == "3500"  # nothing yet
    done = await confirm(client, asked)
    assert done.status == 200 and "Rolled back the reload of +10.00" in done.body
    assert (await state(gw, card))["bal"] == "2500"
    entries = await journal(gw, card)
    assert [e.op for e in entries] == ["activate", "reload", "rollback"]  # nothing deleted
    assert entries[-1].undo == entries[1].id and entries[-1].dv == -1000
    assert entries[-1].operator == f"portal:{op.id}"
    twice = await confirm(client, asked)  # the same confirmation again: the reload is undone
    assert twice.status == 409 and "Nothing rolled back (25" in twice.body
    assert (await state(gw, card))["bal"] == "2500"


@pytest_twisted.ensureDeferred
async def test_transfer_moves_the_exact_balance_once_without_the_pin(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory)
    source = await new_card(gw, "secure", 2345)  # a program with PINs and invoice numbers
    target = await new_card(gw, "secure", 500)
    loyalty = await new_card(gw, "loyalty", 0)
    op, secret = await make_operator(portal, "tia@example.com")
    client = await logged_in(port, "tia@example.com", secret, clock)
    page = await look_up(client, source)
    wrong = await action(client, page, "transfer", target=loyalty)
    assert wrong.status == 400 and "same kind" in wrong.body
    asked = await action(client, page, "transfer", target=target)
    assert asked.status == 200 and cards.mask_card(target) in asked.body
    assert source not in asked.body and target not in asked.body
    assert (await state(gw, source))["status"] == "active"
    done = await confirm(client, asked)
    assert done.status == 200 and "now holds 28.45" in done.body, done.body
    assert (await state(gw, source))["bal"] == "0"
    assert (await state(gw, source))["status"] == "lost"
    assert (await state(gw, target))["bal"] == "2845"
    replay = await confirm(client, asked)  # the form sent twice: one transfer
    assert replay.status == 200
    assert (await state(gw, target))["bal"] == "2845"
    out = (await journal(gw, source))[-1]
    assert (out.op, out.dv, out.operator) == ("transfer_out", -2345, f"portal:{op.id}")


ISSUED = re.compile(r'<tr><td class="num">(\w+)</td>(?:<td class="num">(\d+)</td>)?')


@pytest_twisted.ensureDeferred
async def test_create_cards_idempotently_with_a_csv_of_the_same_cards(tillgate_inprocess_factory,
                                                                      caplog):
    caplog.set_level(logging.DEBUG)
    gw, portal, port, clock = await start(tillgate_inprocess_factory, extra=CLUB)
    _m, secret = await make_operator(portal, "ken@example.com", "merchant_manager",
                                     "STORE0000000001")
    client = await logged_in(port, "ken@example.com", secret, clock)
    form = await web(client.get, "/ui/cards/new")
    assert form.status == 200 and 'value="secure"' in form.body
    assert 'value="club"' not in form.body  # another merchant's club: not offered
    order = dict(HIDDEN.findall(form.body))  # csrf and the order key
    sent = {**order, "program": "secure", "count": "3", "activate": "25.00", "face": ""}
    first = await web(client.post, "/ui/cards/new", sent)
    assert first.status == 200, first.body
    shown = ISSUED.findall(first.body)
    assert len(shown) == 3 and all(len(pin) == 4 for _card, pin in shown)
    again = await web(client.post, "/ui/cards/new", sent)  # a double click, a reload
    assert ISSUED.findall(again.body) == shown and "issued once" in again.body
    for card, _pin in shown:
        assert (await state(gw, card))["bal"] == "2500"
        assert [e.op for e in await journal(gw, card)] == ["activate"]  # loaded once
    csv_answer = await web(client.post, "/ui/cards/new/csv", dict(HIDDEN.findall(first.body)))
    assert csv_answer.status == 200 and csv_answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_answer.headers["content-disposition"]
    rows = [line.split(",") for line in csv_answer.body.splitlines()[1:]]
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [(c, p, "active", "2500")
                                                       for c, p in shown]
    other = await web(client.post, "/ui/cards/new", {**sent, "count": "4"})  # same key, new order
    assert other.status == 409 and "nothing was issued" in other.body
    club = await web(client.post, "/ui/cards/new", {**sent, "program": "club",
                                                    "order": "0" * 32})
    assert club.status == 400 and "Choose one of the programs" in club.body
    bad = await web(client.post, "/ui/cards/new", {**sent, "activate": "2.5.0", "order": "1" * 32})
    assert bad.status == 400 and "Activation: amount" in bad.body
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for card, _pin in shown:
        assert card not in logged


@pytest_twisted.ensureDeferred
async def test_staff_do_not_create_cards(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory)
    _s, secret = await make_operator(portal, "sue@example.com", "staff", "STORE0000000001")
    staff = await logged_in(port, "sue@example.com", secret, clock)
    assert (await web(staff.get, "/ui/cards/new")).status == 403
    page = await web(staff.get, "/ui/cards")
    refused = await web(staff.post, "/ui/cards/new", {"csrf": page.csrf, "program": "gift",
                                                      "count": "1", "order": "2" * 32})
    assert refused.status == 403 and "/ui/cards/new" not in page.body

"""Gift-value operations of HOST-SPEC 2.3 and their response codes, against a real redis-server."""

from __future__ import annotations

import pytest_twisted
from test_ledger_support import ledger, random_number  # noqa: F401  (fixture)

from gateway.ledger import cards
from gateway.ledger.audit import audit
from gateway.ledger.journal import latest
from protocols.model import RC, Op


@pytest_twisted.ensureDeferred
async def test_activate_redeem_reload_refund_cashout_balance(ledger):  # noqa: F811
    card = await ledger.issue("gift")
    assert (await ledger.show(card)).status == "issued"
    assert (await ledger.send(Op.REDEEM, card, 100)).code == RC.NOT_ACTIVE

    act = await ledger.send(Op.ACTIVATE, card, 5000)
    assert (act.code, act.amount, act.balance) == ("00", 5000, 5000)
    assert len(act.auth_id) == 6
    assert (await ledger.send(Op.ACTIVATE, card, 5000)).code == RC.INVALID_TRANSACTION

    r = await ledger.send(Op.REDEEM, card, 1250)
    assert (r.code, r.amount, r.balance) == ("00", 1250, 3750)
    r = await ledger.send(Op.RELOAD, card, 250)
    assert (r.code, r.balance) == ("00", 4000)
    r = await ledger.send(Op.REFUND, card, 1000)
    assert (r.code, r.balance) == ("00", 5000)
    r = await ledger.send(Op.BALANCE, card)
    assert (r.code, r.balance) == ("00", 5000)
    r = await ledger.send(Op.CASHOUT, card)
    assert (r.code, r.amount, r.balance) == ("00", 5000, 0)
    view = await ledger.show(card)
    assert (view.status, view.balance) == ("active", 0)
    report = await ledger.call(audit(ledger.store))
    assert report.ok and report.entries == 5
    journal = await ledger.call(latest(ledger.store, cards.journal_key(cards.card_id(card)), 10))
    assert [e.op for e in journal] == ["activate", "redeem", "reload", "refund", "cashout"]


@pytest_twisted.ensureDeferred
async def test_redeem_short_balance_partial_or_51(ledger):  # noqa: F811
    card = await ledger.issue("gift", activate=1000)
    r = await ledger.send(Op.REDEEM, card, 1500)
    assert (r.code, r.balance) == (RC.INSUFFICIENT_FUNDS, 1000)
    r = await ledger.send(Op.REDEEM, card, 1500, partial_ok=True)
    assert (r.code, r.amount, r.balance) == (RC.PARTIAL, 1000, 0)
    r = await ledger.send(Op.REDEEM, card, 1, partial_ok=True)
    assert r.code == RC.INSUFFICIENT_FUNDS


@pytest_twisted.ensureDeferred
async def test_program_without_partial_approval_declines(ledger):  # noqa: F811
    card = await ledger.issue("prepaid", face=2500)
    assert (await ledger.send(Op.ACTIVATE_PREVALUED, card, 2500)).code == "00"
    r = await ledger.send(Op.REDEEM, card, 3000, partial_ok=True)
    assert r.code == RC.INSUFFICIENT_FUNDS


@pytest_twisted.ensureDeferred
async def test_advice_posts_into_overdraft(ledger):  # noqa: F811
    card = await ledger.issue("gift", activate=500)
    r = await ledger.send(Op.REDEEM, card, 800, advice=True)
    assert (r.code, r.balance, r.message) == ("00", -300, "overdraft")
    assert (await ledger.call(audit(ledger.store))).ok


@pytest_twisted.ensureDeferred
async def test_limits_and_amounts(ledger):  # noqa: F811
    card = await ledger.issue("gift", activate=99000)
    assert (await ledger.send(Op.RELOAD, card, 1001)).code == RC.LIMIT_EXCEEDED
    assert (await ledger.send(Op.REFUND, card, 1001)).code == RC.LIMIT_EXCEEDED
    assert (await ledger.send(Op.RELOAD, card, 1000)).code == "00"
    assert (await ledger.send(Op.RELOAD, card, 0)).code == RC.INVALID_AMOUNT
    assert (await ledger.send(Op.REDEEM, card, -5)).code == RC.INVALID_AMOUNT
    other = await ledger.issue("gift")
    assert (await ledger.send(Op.ACTIVATE, other, 100001)).code == RC.LIMIT_EXCEEDED
    assert (await ledger.send(Op.ACTIVATE, other, 0)).code == "00"  # gift allows 0

    pre = await ledger.issue("prepaid")
    assert (await ledger.send(Op.ACTIVATE, pre, 20001)).code == RC.LIMIT_EXCEEDED  # per txn
    assert (await ledger.send(Op.ACTIVATE_PREVALUED, pre, 20001)).code == RC.LIMIT_EXCEEDED
    assert (await ledger.send(Op.ACTIVATE_PREVALUED, pre, 3000)).code == RC.INVALID_AMOUNT
    assert (await ledger.send(Op.ACTIVATE_PREVALUED, pre, 5000)).code == "00"
    assert (await ledger.send(Op.RELOAD, pre, 100)).code == RC.INVALID_TRANSACTION  # no reload


@pytest_twisted.ensureDeferred
async def test_prevalued_face_value_and_prevalidate(ledger):  # noqa: F811
    card = await ledger.issue("prepaid", face=5000)
    r = await ledger.send(Op.PREVALIDATE, card, 5000)
    assert r.code == "00" and (await ledger.show(card)).status == "issued"
    assert (await ledger.send(Op.ACTIVATE_PREVALUED, card, 2500)).code == RC.INVALID_AMOUNT
    r = await ledger.send(Op.ACTIVATE_PREVALUED, card, 5000)
    assert (r.code, r.balance) == ("00", 5000)
    assert r.expiry is not None and len(r.expiry) == 8  # expiry_days = 365
    assert (await ledger.send(Op.PREVALIDATE, card, 5000)).code == RC.INVALID_TRANSACTION
    gift = await ledger.issue("gift")
    assert (await ledger.send(Op.ACTIVATE_PREVALUED, gift, 5000)).code == RC.INVALID_TRANSACTION


@pytest_twisted.ensureDeferred
async def test_expired_card_is_54(ledger):  # noqa: F811
    card = await ledger.issue("prepaid", face=2500)
    assert (await ledger.send(Op.ACTIVATE_PREVALUED, card, 2500)).code == "00"
    real = ledger.processor.clock
    ledger.processor.clock = lambda: real() + 400 * 86400
    try:
        assert (await ledger.send(Op.REDEEM, card, 100)).code == RC.EXPIRED
    finally:
        ledger.processor.clock = real


@pytest_twisted.ensureDeferred
async def test_card_states(ledger, redis_client):  # noqa: F811
    never_issued = random_number(ledger.config, "gift")
    assert (await ledger.send(Op.BALANCE, never_issued)).code == RC.UNKNOWN_CARD
    card = await ledger.issue("gift", activate=100)
    for status, code in (("suspended", RC.SUSPENDED), ("closed", RC.NOT_ACTIVE),
                         ("lost", RC.LOST_CARD), ("locked", RC.SUSPENDED)):
        redis_client.hset(cards.state_key(cards.card_id(card)), "status", status)
        assert (await ledger.send(Op.RELOAD, card, 1)).code == code, status
    assert (await ledger.show(card)).balance == 100


@pytest_twisted.ensureDeferred
async def test_unknown_numbers_leave_no_card_keys(ledger, redis_client):  # noqa: F811
    for op in (Op.REDEEM, Op.BALANCE, Op.REVERSAL, Op.ACTIVATE):
        card = random_number(ledger.config, "gift")
        got = await ledger.send(op, card, 100, original_key="x")
        assert got.code == ("00" if op is Op.REVERSAL else RC.UNKNOWN_CARD)
    assert not [k for k in redis_client.scan_iter("{c:*")]


@pytest_twisted.ensureDeferred
async def test_a_till_naming_the_portal_terminal_is_refused(ledger):  # noqa: F811
    # the default config's portal terminal of STORE0000000001 (docs/portal.md): the portal's only
    card = await ledger.issue("gift", activate=1000)
    merchant = ledger.config.merchants["STORE0000000001"]
    assert merchant.portal_terminal == "WEB00001"
    for channel in ("iso", "tgl", "member"):
        refused = await ledger.send(Op.BALANCE, card, terminal="WEB00001",
                                    merchant="STORE0000000001", channel=channel)
        assert refused.code == RC.TERMINAL_NOT_PERMITTED, channel
    portal = await ledger.send(Op.BALANCE, card, terminal="WEB00001",
                               merchant="STORE0000000001", channel="portal")
    assert (portal.code, portal.balance) == ("00", 1000)

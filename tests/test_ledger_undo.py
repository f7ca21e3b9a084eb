"""Idempotency, voids, reversals and tombstones, operator rollback (HOST-SPEC 2.2, 2.3, 2.6)."""

from __future__ import annotations

import pytest_twisted
from test_ledger_support import ledger  # noqa: F401  (fixture)

from gateway.ledger import cards
from gateway.ledger.audit import audit
from gateway.ledger.journal import entries
from protocols.model import RC, Op, mask_card


@pytest_twisted.ensureDeferred
async def test_retransmission_replays_and_other_content_is_94(ledger, redis_client):  # noqa: F811
    card = await ledger.issue("gift", activate=1000)
    other = await ledger.issue("gift", activate=1000)
    key = ledger.key()
    first = await ledger.send(Op.REDEEM, card, 300, key=key)
    again = await ledger.send(Op.REDEEM, card, 300, key=key, pin="9999")  # PIN not in content
    assert first == again and first.balance == 700
    assert (await ledger.send(Op.REDEEM, card, 301, key=key)).code == RC.DUPLICATE
    # the same key with another card is a 94 too, although the card's slot never saw it
    assert (await ledger.send(Op.REDEEM, other, 300, key=key)).code == RC.DUPLICATE
    assert (await ledger.show(card)).balance == 700
    assert (await ledger.show(other)).balance == 1000
    # the claim refused inside the one call (claim+redeem): the card script never ran
    assert not redis_client.exists(cards.record_key(cards.card_id(other), key))


@pytest_twisted.ensureDeferred
async def test_declines_are_replayed_too(ledger):  # noqa: F811
    card = await ledger.issue("gift", activate=100)
    key = ledger.key()
    assert (await ledger.send(Op.REDEEM, card, 300, key=key)).code == RC.INSUFFICIENT_FUNDS
    await ledger.send(Op.RELOAD, card, 500)
    assert (await ledger.send(Op.REDEEM, card, 300, key=key)).code == RC.INSUFFICIENT_FUNDS


@pytest_twisted.ensureDeferred
async def test_void_of_redeem_load_and_activation(ledger):  # noqa: F811
    card = await ledger.issue("gift")
    act_key = ledger.key()
    await ledger.send(Op.ACTIVATE, card, 2000, key=act_key)
    assert (await ledger.send(Op.VOID, card, original_key="nope")).code == RC.ORIGINAL_NOT_FOUND
    redeem_key, reload_key = ledger.key(), ledger.key()
    await ledger.send(Op.REDEEM, card, 500, key=redeem_key)
    await ledger.send(Op.RELOAD, card, 100, key=reload_key)
    r = await ledger.send(Op.VOID, card, original_key=redeem_key)
    assert (r.code, r.amount, r.balance) == ("00", 500, 2100)
    assert (await ledger.send(Op.VOID, card, original_key=redeem_key)).code == "12"  # once
    assert (await ledger.send(Op.VOID, card, original_key=reload_key)).balance == 2000
    # deactivation only while nothing was spent since the activation
    assert (await ledger.send(Op.VOID, card, original_key=act_key)).code == "12"

    fresh = await ledger.issue("gift")
    key = ledger.key()
    await ledger.send(Op.ACTIVATE, fresh, 700, key=key)
    r = await ledger.send(Op.VOID, fresh, original_key=key)
    assert (r.code, r.balance) == ("00", 0)
    assert (await ledger.show(fresh)).status == "issued"
    assert (await ledger.call(audit(ledger.store))).ok


@pytest_twisted.ensureDeferred
async def test_void_of_a_spent_load_is_12(ledger):  # noqa: F811
    card = await ledger.issue("gift", activate=0)
    key = ledger.key()
    await ledger.send(Op.RELOAD, card, 1000, key=key)
    await ledger.send(Op.REDEEM, card, 600)
    r = await ledger.send(Op.VOID, card, original_key=key)
    assert (r.code, (await ledger.show(card)).balance) == ("12", 400)


@pytest_twisted.ensureDeferred
async def test_reversal_undoes_once_and_repeats_change_nothing(ledger):  # noqa: F811
    card = await ledger.issue("gift", activate=1000)
    orig = ledger.key()
    await ledger.send(Op.REDEEM, card, 400, key=orig)
    rev_key = ledger.key()
    r = await ledger.send(Op.REVERSAL, card, original_key=orig, key=rev_key)
    assert (r.code, r.balance) == ("00", 1000)
    r = await ledger.send(Op.REVERSAL, card, original_key=orig, key=rev_key, repeat=True)
    assert (r.code, r.balance) == ("00", 1000)
    r = await ledger.send(Op.REVERSAL, card, original_key=orig)  # another key, same original
    assert (r.code, r.balance) == ("00", 1000)
    assert (await ledger.show(card)).balance == 1000


@pytest_twisted.ensureDeferred
async def test_a_reversal_of_another_amount_is_13_and_changes_nothing(ledger):  # noqa: F811
    """HOST-SPEC 1.1, 2.6: field 4 of a reversal, where present, is the original's amount."""
    card = await ledger.issue("gift", activate=1000)
    orig = ledger.key()
    await ledger.send(Op.REDEEM, card, 400, key=orig)
    wrong = ledger.key()
    r = await ledger.send(Op.REVERSAL, card, 1, original_key=orig, key=wrong)
    assert r.code == RC.INVALID_AMOUNT
    assert (await ledger.show(card)).balance == 600
    # the refusal is replayed for its own key, and the right amount still undoes the sale once
    r = await ledger.send(Op.REVERSAL, card, 1, original_key=orig, key=wrong, repeat=True)
    assert r.code == RC.INVALID_AMOUNT
    assert (await ledger.send(Op.REVERSAL, card, 400, original_key=orig)).code == "00"
    assert (await ledger.show(card)).balance == 1000
    # a reversal with no field 4 names its original by key alone, as before
    other = ledger.key()
    await ledger.send(Op.REDEEM, card, 250, key=other)
    assert (await ledger.send(Op.REVERSAL, card, original_key=other)).code == "00"
    assert (await ledger.show(card)).balance == 1000


@pytest_twisted.ensureDeferred
async def test_reversal_before_original_leaves_tombstone(ledger):  # noqa: F811
    card = await ledger.issue("gift", activate=1000)
    orig = ledger.key()
    assert (await ledger.send(Op.REVERSAL, card, original_key=orig)).code == "00"
    late = await ledger.send(Op.REDEEM, card, 400, key=orig)
    assert late.code == RC.DO_NOT_HONOUR
    assert (await ledger.send(Op.REDEEM, card, 400, key=orig)).code == RC.DO_NOT_HONOUR
    assert (await ledger.show(card)).balance == 1000


@pytest_twisted.ensureDeferred
async def test_reversal_of_spent_load_window_and_balance(ledger):  # noqa: F811
    card = await ledger.issue("gift", activate=0)
    load = ledger.key()
    await ledger.send(Op.RELOAD, card, 500, key=load)
    await ledger.send(Op.REDEEM, card, 200)
    assert (await ledger.send(Op.REVERSAL, card, original_key=load)).code == "12"
    inquiry = ledger.key()
    await ledger.send(Op.BALANCE, card, key=inquiry)
    assert (await ledger.send(Op.REVERSAL, card, original_key=inquiry)).code == "12"
    late = ledger.key()
    await ledger.send(Op.REDEEM, card, 100, key=late)
    real = ledger.processor.clock
    ledger.processor.clock = lambda: real() + ledger.config.reversal_window + 5
    try:
        assert (await ledger.send(Op.REVERSAL, card, original_key=late)).code == "12"
    finally:
        ledger.processor.clock = real
    assert (await ledger.show(card)).balance == 200


@pytest_twisted.ensureDeferred
async def test_rollback_of_last_transaction(ledger):  # noqa: F811
    gift = ledger.config.programs["gift"]
    card = await ledger.issue("gift", activate=1000)
    await ledger.send(Op.REDEEM, card, 250)
    res = await ledger.call(cards.rollback_last(ledger.store, card, gift))
    assert (res["rc"], res["bal"]) == ("00", 1000)
    res = await ledger.call(cards.rollback_last(ledger.store, card, gift))
    assert res["rc"] == RC.ORIGINAL_NOT_FOUND  # one level: the activation is not "last" now
    never = await ledger.issue("gift")
    assert (await ledger.call(cards.rollback_last(ledger.store, never, gift)))["rc"] == "25"
    report = await ledger.call(audit(ledger.store))
    assert report.ok and report.entries == 3


@pytest_twisted.ensureDeferred
async def test_reversal_for_a_card_never_issued_is_approved(ledger):  # noqa: F811
    from test_ledger_support import random_number
    card = random_number(ledger.config, "gift")
    r = await ledger.send(Op.REVERSAL, card, original_key=ledger.key())
    assert (r.code, r.balance) == ("00", None)
    assert (await ledger.send(Op.BALANCE, card)).code == RC.UNKNOWN_CARD


async def journal_of(store, card):
    return [e async for e in entries(store, cards.journal_key(cards.card_id(card)))]


@pytest_twisted.ensureDeferred
async def test_journal_links_undo_and_the_number_is_nowhere(ledger, redis_client):  # noqa: F811
    card = await ledger.issue("gift", activate=900)
    sale = ledger.key()
    await ledger.send(Op.REDEEM, card, 400, key=sale)
    await ledger.send(Op.VOID, card, original_key=sale)
    got = await ledger.call(journal_of(ledger.store, card))
    assert [(e.op, e.dv, e.bal) for e in got] == [("activate", 900, 900), ("redeem", -400, 500),
                                                  ("void", 400, 900)]
    assert got[2].undo == got[1].id and got[1].key == sale and got[1].terminal == "TILL0001"
    assert {e.card for e in got} == {mask_card(card)}
    for key in redis_client.scan_iter():  # the whole number is in no key and no value
        assert card.encode() not in key
        kind = redis_client.type(key)
        if kind == b"hash":
            blob = b"".join(k + v for k, v in redis_client.hgetall(key).items())
        elif kind == b"stream":
            blob = b"".join(v for _, f in redis_client.xrange(key) for v in f.values())
        else:
            blob = redis_client.get(key) or b""
        assert card.encode() not in blob, key

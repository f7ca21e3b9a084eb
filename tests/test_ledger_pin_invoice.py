"""PIN tries and locks, and invoice numbers single-use per merchant (program `secure`)."""

from __future__ import annotations

import pytest_twisted
from test_ledger_support import ledger  # noqa: F401  (fixture)

from gateway.ledger import cards
from protocols.model import RC, Op


@pytest_twisted.ensureDeferred
async def test_pin_checked_counted_locked_and_unlocked(ledger):  # noqa: F811
    card = await ledger.issue("secure", pin="1234", activate=5000)
    r = await ledger.send(Op.BALANCE, card, pin="1234")
    assert (r.code, r.balance) == ("00", 5000)
    wrong = await ledger.send(Op.BALANCE, card, pin="0000")
    assert (wrong.code, wrong.balance) == (RC.INCORRECT_PIN, None)  # a wrong PIN reveals nothing
    assert (await ledger.send(Op.BALANCE, card)).code == RC.INCORRECT_PIN  # missing = wrong
    assert (await ledger.send(Op.BALANCE, card, pin="1234")).code == "00"  # resets the count
    assert (await ledger.show(card)).pin_tries_failed == 0
    for code in (RC.INCORRECT_PIN, RC.INCORRECT_PIN, RC.PIN_TRIES_EXCEEDED):
        assert (await ledger.send(Op.REDEEM, card, 10, pin="1111", invoice=ledger.key())
                ).code == code
    assert (await ledger.show(card)).status == "locked"
    assert (await ledger.send(Op.BALANCE, card, pin="1234")).code == RC.PIN_TRIES_EXCEEDED
    assert (await ledger.send(Op.REFUND, card, 10, invoice="R1")).code == RC.SUSPENDED
    real = ledger.processor.clock  # locked for 24 hours, then open again
    ledger.processor.clock = lambda: real() + 86401
    try:
        assert (await ledger.send(Op.BALANCE, card, pin="1234")).code == "00"
    finally:
        ledger.processor.clock = real
    for _ in range(3):
        await ledger.send(Op.BALANCE, card, pin="9999")
    assert await ledger.call(cards.unlock_card(ledger.store, card))
    assert (await ledger.send(Op.BALANCE, card, pin="1234")).balance == 5000


@pytest_twisted.ensureDeferred
async def test_no_pin_on_loads(ledger):  # noqa: F811
    card = await ledger.issue("secure", pin="1234", activate=100)
    assert (await ledger.send(Op.RELOAD, card, 100, invoice="I-1")).code == "00"
    assert (await ledger.send(Op.REFUND, card, 100, invoice="I-2")).code == "00"


@pytest_twisted.ensureDeferred
async def test_invoice_required_single_use_and_released_on_decline(ledger):  # noqa: F811
    card = await ledger.issue("secure", pin="1234", activate=1000)
    assert (await ledger.send(Op.REDEEM, card, 100, pin="1234")).code == RC.FORMAT_ERROR
    assert (await ledger.send(Op.REDEEM, card, 100, pin="1234", invoice="INV1")).code == "00"
    refused_key = ledger.key()
    r = await ledger.send(Op.REDEEM, card, 100, pin="1234", invoice="INV1", key=refused_key)
    assert (r.code, r.message) == (RC.DUPLICATE, "invoice number used")
    # the refused request left no claim: its key may carry a corrected request (another invoice)
    r = await ledger.send(Op.REDEEM, card, 100, pin="1234", invoice="INV9", key=refused_key)
    assert r.code == "00"
    # a declined sale does not burn its number
    assert (await ledger.send(Op.REDEEM, card, 5000, pin="1234", invoice="INV2")).code == "51"
    assert (await ledger.send(Op.REDEEM, card, 50, pin="1234", invoice="INV2")).code == "00"
    # numbers are per merchant
    assert (await ledger.send(Op.RELOAD, card, 1, invoice="INV1", terminal="BHN00001",
                              merchant="BHNRESELLER0001")).code == "00"
    assert (await ledger.show(card)).balance == 751


@pytest_twisted.ensureDeferred
async def test_reversed_or_voided_sale_frees_its_invoice_number(ledger):  # noqa: F811
    card = await ledger.issue("secure", pin="1234", activate=1000)
    sale = ledger.key()
    assert (await ledger.send(Op.REDEEM, card, 100, pin="1234", invoice="T1", key=sale)
            ).code == "00"
    assert (await ledger.send(Op.REVERSAL, card, original_key=sale)).balance == 1000
    retry = ledger.key()
    assert (await ledger.send(Op.REDEEM, card, 100, pin="1234", invoice="T1", key=retry)
            ).code == "00"
    assert (await ledger.send(Op.VOID, card, original_key=retry, pin="1234")).code == "00"
    assert (await ledger.send(Op.REDEEM, card, 100, pin="1234", invoice="T1")).code == "00"
    assert (await ledger.send(Op.REDEEM, card, 100, pin="1234", invoice="T1")).code == "94"

"""Loyalty operations (earn, add points, return of goods, redeem points / rewards) and transfers."""

from __future__ import annotations

import pytest
import pytest_twisted
from test_ledger_support import ledger  # noqa: F401  (fixture)
from test_ledger_undo import journal_of

from gateway.ledger.audit import audit
from gateway.ledger.checks import points_for
from protocols.model import RC, Op


@pytest.mark.parametrize(("rounding", "amount", "points"), [
    ("floor", 199, 2), ("floor", 200, 3), ("ceil", 1, 1), ("ceil", 0, 0),
    ("half_up", 33, 0), ("half_up", 34, 1), ("half_up", 201, 3),
])
def test_points_rounding(rounding, amount, points):
    from dataclasses import replace

    from test_ledger_support import ledger_config
    program = replace(ledger_config().programs["points"], rounding=rounding, min_points=0)
    assert points_for(program, amount) == points  # 3 points per 2.00


def test_points_min_and_max_per_purchase():
    from test_ledger_support import ledger_config
    program = ledger_config().programs["points"]  # min 2, max 50
    assert points_for(program, 100) == 2  # 1.5 rounds half up to 2: at the minimum
    assert points_for(program, 50) == 0  # 0.75 -> 1, below the minimum
    assert points_for(program, 10_000) == 50


@pytest_twisted.ensureDeferred
async def test_earn_add_return_redeem_reward(ledger):  # noqa: F811
    card = await ledger.issue("loyalty")
    assert (await ledger.send(Op.ACTIVATE, card, 5)).code == RC.INVALID_AMOUNT
    assert (await ledger.send(Op.ACTIVATE, card, 0)).code == "00"
    r = await ledger.send(Op.EARN, card, 12_345)  # 1 point per 1.00, floor
    assert (r.code, r.points, r.balance) == ("00", 123, None)
    assert (await ledger.send(Op.ADD_POINTS, card, 50)).points == 173
    assert (await ledger.send(Op.RETURN, card, 2_000)).points == 153
    assert (await ledger.send(Op.REDEEM_POINTS, card, reward="COFFEE")).points == 53
    assert (await ledger.send(Op.REDEEM_POINTS, card, reward="TEA")).code == "12"
    assert (await ledger.send(Op.REDEEM_POINTS, card, 54)).code == RC.INSUFFICIENT_FUNDS
    r = await ledger.send(Op.POINTS_BALANCE, card)
    assert (r.code, r.points) == ("00", 53)
    assert (await ledger.send(Op.RETURN, card, 100_000)).points == 0  # never below zero
    assert (await ledger.send(Op.REDEEM, card, 100)).code == RC.INVALID_TRANSACTION  # gift op
    assert (await ledger.send(Op.EARN, await ledger.issue("gift", activate=1), 100)
            ).code == RC.INVALID_TRANSACTION
    assert (await ledger.call(audit(ledger.store))).ok


@pytest_twisted.ensureDeferred
async def test_add_points_needs_points_only_mode_and_pin_guards_spending(ledger):  # noqa: F811
    card = await ledger.issue("points", pin="4321", activate=0)
    assert (await ledger.send(Op.ADD_POINTS, card, 5)).code == RC.INVALID_TRANSACTION
    assert (await ledger.send(Op.EARN, card, 1000)).points == 15
    assert (await ledger.send(Op.REDEEM_POINTS, card, 5, pin="0000")).code == RC.INCORRECT_PIN
    assert (await ledger.send(Op.REDEEM_POINTS, card, 5, pin="4321")).points == 10


@pytest_twisted.ensureDeferred
async def test_void_and_reversal_of_points(ledger):  # noqa: F811
    card = await ledger.issue("loyalty", activate=0)
    earn = ledger.key()
    await ledger.send(Op.EARN, card, 500, key=earn)
    spend = ledger.key()
    await ledger.send(Op.REDEEM_POINTS, card, 2, key=spend)
    assert (await ledger.send(Op.REVERSAL, card, original_key=spend)).points == 5
    assert (await ledger.send(Op.VOID, card, original_key=earn)).points == 0


@pytest_twisted.ensureDeferred
async def test_balance_transfer_moves_value_and_marks_source_lost(ledger):  # noqa: F811
    src = await ledger.issue("gift", activate=3000)
    dst = await ledger.issue("gift", activate=500)
    key = ledger.key()
    r = await ledger.send(Op.TRANSFER, src, target_card=dst, key=key)
    assert (r.code, r.amount, r.balance) == ("00", 3000, 3500)
    assert (await ledger.send(Op.TRANSFER, src, target_card=dst, key=key)) == r  # replayed
    assert (await ledger.show(src)).status == "lost"
    assert (await ledger.show(dst)).balance == 3500
    assert (await ledger.send(Op.REDEEM, src, 1)).code == RC.LOST_CARD
    assert (await ledger.send(Op.VOID, src, original_key=key)).code == RC.LOST_CARD
    assert (await ledger.send(Op.TRANSFER, dst, target_card=src)).code == RC.LOST_CARD
    assert (await ledger.call(audit(ledger.store))).ok


@pytest_twisted.ensureDeferred
async def test_a_retransmitted_transfer_replays_after_its_target_was_lost(ledger):  # noqa: F811
    first = await ledger.issue("gift", activate=1000)
    middle = await ledger.issue("gift", activate=200)
    last = await ledger.issue("gift", activate=0)
    key = ledger.key()
    r = await ledger.send(Op.TRANSFER, first, target_card=middle, key=key)
    assert (r.code, r.balance) == ("00", 1200)
    # The middle card is itself transferred away, so it is lost...
    assert (await ledger.send(Op.TRANSFER, middle, target_card=last)).code == "00"
    # ...and a retransmission of the first transfer still gets its first answer, not 41.
    assert (await ledger.send(Op.TRANSFER, first, target_card=middle, key=key)) == r
    assert (await ledger.call(audit(ledger.store))).ok


@pytest_twisted.ensureDeferred
async def test_transfer_refusals_and_compensation(ledger):  # noqa: F811
    src = await ledger.issue("gift", activate=60_000)
    full = await ledger.issue("gift", activate=50_000)
    inactive = await ledger.issue("gift")
    loyal = await ledger.issue("loyalty", activate=0)
    assert (await ledger.send(Op.TRANSFER, src, target_card=src)).code == "12"
    assert (await ledger.send(Op.TRANSFER, src, target_card=loyal)).code == "12"
    assert (await ledger.send(Op.TRANSFER, src, target_card=inactive)).code == RC.NOT_ACTIVE
    assert (await ledger.send(Op.TRANSFER, src)).code == RC.FORMAT_ERROR
    key = ledger.key()
    r = await ledger.send(Op.TRANSFER, src, target_card=full, key=key)  # 110,000 > max
    assert r.code == RC.LIMIT_EXCEEDED
    assert (await ledger.send(Op.TRANSFER, src, target_card=full, key=key)).code == "61"
    view = await ledger.show(src)
    assert (view.status, view.balance) == ("active", 60_000)
    assert (await ledger.show(full)).balance == 50_000

    # a target that refuses only in its own script (expired): the source is restored
    small = await ledger.issue("gift", activate=1_000)
    expiring = await ledger.issue("prepaid", face=2500)
    assert (await ledger.send(Op.ACTIVATE_PREVALUED, expiring, 2500)).code == "00"
    real = ledger.processor.clock
    ledger.processor.clock = lambda: real() + 400 * 86400
    try:
        key = ledger.key()
        assert (await ledger.send(Op.TRANSFER, small, target_card=expiring, key=key)
                ).code == RC.EXPIRED
        assert (await ledger.send(Op.TRANSFER, small, target_card=expiring, key=key)
                ).code == RC.EXPIRED  # the retransmission replays the refusal
    finally:
        ledger.processor.clock = real
    view = await ledger.show(small)
    assert (view.status, view.balance) == ("active", 1_000)  # compensated
    journal = await ledger.call(journal_of(ledger.store, small))
    assert [e.op for e in journal] == ["activate", "transfer_out", "transfer_back"]
    assert journal[2].undo == journal[1].id
    report = await ledger.call(audit(ledger.store))
    assert report.ok, report.differences

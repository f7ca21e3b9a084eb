"""Points lots, expiry, tiers and combined cards (docs/ledger.md), on a real redis-server with
the processor's clock moved by days: the default loyalty program of HOST-SPEC 1.1 section 6
(points valid 365 days, BRONZE from 0, SILVER from 500 earned in 365 days at 2 per 1.00)."""

from __future__ import annotations

from dataclasses import replace

import pytest_twisted
from test_ledger_support import Ledger, ledger, ledger_config  # noqa: F401  (fixture)
from test_ledger_undo import journal_of

from gateway.ledger import cards
from gateway.ledger.audit import audit
from gateway.ledger.sweep import sweep
from protocols.model import RC, Op

DAY0 = 20_500  # a program day (days since 1970-01-01, UTC)


def at(ledger, day: int, hour: int = 12) -> float:  # noqa: F811
    """Move the processor's clock to `hour` o'clock of program day `day`; the time it set."""
    now = day * 86400 + hour * 3600
    ledger.processor.clock = lambda: now
    return now


async def lots_of(ledger, card: str) -> dict[int, int]:  # noqa: F811
    """The card's lots: program day earned -> points left."""
    return await ledger.call(cards.card_lots(ledger.store, cards.card_id(card)))


async def ops_of(ledger, card: str) -> list[tuple[str, int]]:  # noqa: F811
    return [(e.op, e.dp) for e in await ledger.call(journal_of(ledger.store, card))]


@pytest_twisted.ensureDeferred
async def test_spending_takes_the_soonest_expiring_lots_first(ledger):  # noqa: F811
    at(ledger, DAY0)
    card = await ledger.issue("loyalty", activate=0)
    assert (await ledger.send(Op.EARN, card, 10_000)).points == 100
    at(ledger, DAY0 + 10)
    assert (await ledger.send(Op.EARN, card, 5_000)).points == 150
    assert await lots_of(ledger, card) == {DAY0: 100, DAY0 + 10: 50}
    at(ledger, DAY0 + 20)
    assert (await ledger.send(Op.REDEEM_POINTS, card, 120)).points == 30
    assert await lots_of(ledger, card) == {DAY0 + 10: 30}
    loyalty = ledger.config.programs["loyalty"]
    view = await ledger.call(cards.show_card(ledger.store, card, loyalty))
    # earned on 2026-02-26, valid 365 days: its last day
    assert (view.points_expiry, view.points_expiring) == ("2027-02-26", 30)
    assert (await ledger.call(audit(ledger.store))).ok


@pytest_twisted.ensureDeferred
async def test_undo_gives_back_to_the_lots_it_took_from_and_return_takes_the_newest(
        ledger):  # noqa: F811
    at(ledger, DAY0)
    card = await ledger.issue("loyalty", activate=0)
    first = ledger.key()
    await ledger.send(Op.EARN, card, 10_000, key=first)
    at(ledger, DAY0 + 5)
    await ledger.send(Op.EARN, card, 5_000)
    spend = ledger.key()
    at(ledger, DAY0 + 6)
    await ledger.send(Op.REDEEM_POINTS, card, 120, key=spend)
    assert await lots_of(ledger, card) == {DAY0 + 5: 30}
    assert (await ledger.send(Op.VOID, card, original_key=spend)).points == 150
    assert await lots_of(ledger, card) == {DAY0: 100, DAY0 + 5: 50}  # back where it came from
    assert (await ledger.send(Op.VOID, card, original_key=first)).points == 50
    assert await lots_of(ledger, card) == {DAY0 + 5: 50}  # the earn's own lot went
    at(ledger, DAY0 + 7)
    await ledger.send(Op.EARN, card, 2_000)
    assert (await ledger.send(Op.RETURN, card, 3_000)).points == 40
    assert await lots_of(ledger, card) == {DAY0 + 5: 40}  # the newest lot first
    assert (await ledger.call(audit(ledger.store))).ok


@pytest_twisted.ensureDeferred
async def test_sweep_expires_due_lots_once_as_journal_entries(ledger):  # noqa: F811
    at(ledger, DAY0)
    card = await ledger.issue("loyalty", activate=0)
    await ledger.send(Op.EARN, card, 10_000)
    at(ledger, DAY0 + 100)
    await ledger.send(Op.EARN, card, 5_000)
    # the last day of the first lot: nothing is due yet, even at its last second
    report = await ledger.call(sweep(ledger.store, ledger.config, (DAY0 + 366) * 86400 - 1))
    assert (report.expired, report.cards) == (0, 0)
    report = await ledger.call(sweep(ledger.store, ledger.config, (DAY0 + 366) * 86400))
    assert (report.expired, report.expiries) == (100, 1)
    again = await ledger.call(sweep(ledger.store, ledger.config, (DAY0 + 366) * 86400 + 60))
    assert (again.expired, again.cards) == (0, 0)
    assert (await ops_of(ledger, card))[-1] == ("expire", -100)
    assert await lots_of(ledger, card) == {DAY0 + 100: 50}
    at(ledger, DAY0 + 467)  # the second lot is due: the card's next request expires it first
    r = await ledger.send(Op.POINTS_BALANCE, card)
    assert (r.code, r.points) == (RC.APPROVED, 0)
    assert (await ops_of(ledger, card))[-1] == ("expire", -50)
    late = await ledger.call(sweep(ledger.store, ledger.config, (DAY0 + 468) * 86400))
    assert (late.expired, late.cards) == (0, 0)  # the index knew: nothing left to look at
    assert (await ledger.call(audit(ledger.store))).ok


@pytest_twisted.ensureDeferred
async def test_sweep_stopped_half_way_then_run_again_expires_nothing_twice(ledger):  # noqa: F811
    at(ledger, DAY0)
    held = [await ledger.issue("loyalty", activate=0) for _ in range(5)]
    for card in held:
        await ledger.send(Op.EARN, card, 7_000)
    due = (DAY0 + 400) * 86400
    first = await ledger.call(sweep(ledger.store, ledger.config, due, limit=2))
    assert (first.cards, first.expired, first.stopped) == (2, 140, True)
    rest = await ledger.call(sweep(ledger.store, ledger.config, due))
    assert (rest.cards, rest.expired, rest.stopped) == (3, 210, False)
    for card in held:
        assert [op for op in await ops_of(ledger, card) if op[0] == "expire"] == [("expire", -70)]
    assert (await ledger.call(audit(ledger.store))).ok


@pytest_twisted.ensureDeferred
async def test_tier_up_at_once_down_only_at_the_review(ledger):  # noqa: F811
    at(ledger, DAY0)
    card = await ledger.issue("loyalty", activate=0)
    r = await ledger.send(Op.EARN, card, 49_900)
    assert (r.points, r.tier) == (499, "BRONZE")
    sale = ledger.key()
    r = await ledger.send(Op.EARN, card, 100, key=sale)  # the earn that reaches 500
    assert (r.points, r.tier) == (500, "SILVER")
    assert (await ops_of(ledger, card))[-2:] == [("earn", 1), ("tier", 0)]
    assert (await ledger.send(Op.EARN, card, 1_000)).points == 520  # 2 per 1.00 at SILVER
    r = await ledger.send(Op.RETURN, card, 5_000)  # 100 points back: 420 earned in the window
    assert (r.points, r.tier) == (420, "SILVER")  # never down mid-transaction
    held = await ledger.call(sweep(ledger.store, ledger.config, (DAY0 + 29) * 86400))
    assert held.tier_changes == 0
    review = await ledger.call(sweep(ledger.store, ledger.config, (DAY0 + 30) * 86400))
    assert review.tier_changes == 1
    entries = await ledger.call(journal_of(ledger.store, card))
    assert (entries[-1].op, entries[-1].tier_from, entries[-1].tier) == ("tier", "SILVER",
                                                                         "BRONZE")
    at(ledger, DAY0 + 31)
    assert (await ledger.send(Op.POINTS_BALANCE, card)).tier == "BRONZE"
    assert (await ledger.call(audit(ledger.store))).ok


@pytest_twisted.ensureDeferred
async def test_tier_is_held_while_earned_within_the_window(ledger):  # noqa: F811
    at(ledger, DAY0)
    card = await ledger.issue("loyalty", activate=0)
    assert (await ledger.send(Op.EARN, card, 60_000)).tier == "SILVER"
    kept = await ledger.call(sweep(ledger.store, ledger.config, (DAY0 + 30) * 86400))
    assert kept.tier_changes == 0  # 600 earned in the last 365 days: held a period more
    # a year on: the earn left the window (and its points expired), so the next review lowers it
    late = await ledger.call(sweep(ledger.store, ledger.config, (DAY0 + 400) * 86400))
    assert (late.tier_changes, late.expired) == (1, 600)
    at(ledger, DAY0 + 401)
    assert (await ledger.send(Op.EARN, card, 100)).tier == "BRONZE"


@pytest_twisted.ensureDeferred
async def test_combined_card_converts_points_to_money_in_the_earn(ledger):  # noqa: F811
    config = ledger_config()
    program = replace(config.programs["loyalty"], convert_points=500, convert_value=500)
    combined = Ledger(replace(config, programs={**config.programs, "loyalty": program}),
                      ledger.store)
    at(combined, DAY0)
    card = await combined.issue("loyalty", activate=0)
    r = await combined.send(Op.EARN, card, 45_000)
    assert (r.points, r.code) == (450, RC.APPROVED)
    r = await combined.send(Op.EARN, card, 10_000)  # 550: SILVER; 500 of them become 5.00
    assert r.points == 50
    view = await combined.show(card)
    assert (view.balance, view.points) == (500, 50)
    assert (await ops_of(combined, card))[-3:] == [("earn", 100), ("tier", 0), ("convert", -500)]
    entries = await combined.call(journal_of(combined.store, card))
    assert (entries[-1].dv, entries[-1].bal) == (500, 500)
    assert await lots_of(combined, card) == {DAY0: 50}
    assert (await combined.call(audit(combined.store))).ok


@pytest_twisted.ensureDeferred
async def test_operator_rollback_of_an_earn_takes_its_lot_back(ledger):  # noqa: F811
    at(ledger, DAY0)
    card = await ledger.issue("loyalty", activate=0)
    await ledger.send(Op.EARN, card, 3_000)
    at(ledger, DAY0 + 1)
    await ledger.send(Op.EARN, card, 2_000)
    res = await ledger.call(cards.rollback_last(ledger.store, card,
                                                ledger.config.programs["loyalty"]))
    assert (res["rc"], res["pts"]) == (RC.APPROVED, 30)
    assert await lots_of(ledger, card) == {DAY0: 30}

"""Issue 19: the rewards catalogue at run time (gateway/ledger/rewards.py, claim_reward.lua) and
the operator id on journal entries, on a real Redis through the Processor."""

from __future__ import annotations

import time

import pytest
import pytest_twisted
from test_ledger_support import ledger  # noqa: F401  (fixture)
from test_ledger_undo import journal_of
from test_points_lots import lots_of
from twisted.internet import defer

from gateway.ledger import rewards
from gateway.ledger.audit import audit
from gateway.ledger.cards import rollback_last
from protocols.model import RC, Op


async def _put(ledger, rid: str, **given) -> rewards.Reward:  # noqa: F811
    program = ledger.config.programs["loyalty"]
    reward = rewards.new_reward(ledger.config, program, rid, given)
    await ledger.call(rewards.put_reward(ledger.store, reward, "test", set_stock=True))
    return reward


async def _reward(ledger, rid: str) -> rewards.Reward:  # noqa: F811
    got = await ledger.call(rewards.get_reward(ledger.store, ledger.config.programs["loyalty"],
                                               rid))
    assert got is not None
    return got


@pytest_twisted.ensureDeferred
async def test_a_claim_takes_points_and_stock_and_is_journalled_with_the_reward(ledger):  # noqa: F811
    await _put(ledger, "MUG", name="Mug", points=40, stock=2)
    card = await ledger.issue("loyalty", activate=0)
    await ledger.send(Op.EARN, card, 10_000)  # 100 points
    r = await ledger.send(Op.REDEEM_POINTS, card, reward="MUG", operator="ANNA")
    assert (r.code, r.amount, r.points) == ("00", 40, 60)
    assert ((await _reward(ledger, "MUG")).stock, (await _reward(ledger, "MUG")).claimed) == (1, 1)
    last = (await ledger.call(journal_of(ledger.store, card)))[-1]
    assert (last.op, last.dp, last.reward, last.operator) == ("redeem_points", -40, "MUG", "ANNA")
    claims = await ledger.call(rewards.list_claims(ledger.store, "loyalty", 0, time.time() + 1))
    assert [(c.op, c.reward, c.points, c.operator) for c in claims] == [
        ("claim", "MUG", -40, "ANNA")]
    assert (await ledger.call(audit(ledger.store))).ok


@pytest_twisted.ensureDeferred
async def test_the_config_reward_is_the_default_until_the_catalogue_has_it(ledger):  # noqa: F811
    card = await ledger.issue("loyalty", activate=0)
    await ledger.send(Op.EARN, card, 30_000)
    assert (await ledger.send(Op.REDEEM_POINTS, card, reward="COFFEE")).points == 200
    await _put(ledger, "COFFEE", points=150, stock=0)
    r = await ledger.send(Op.REDEEM_POINTS, card, reward="COFFEE")
    assert (r.code, r.message) == (RC.DO_NOT_HONOUR, "out of stock")
    assert (await ledger.send(Op.REDEEM_POINTS, card, reward="TEA")).code == RC.INVALID_TRANSACTION
    assert (await ledger.send(Op.REDEEM_POINTS, card, reward="a b")).code == RC.INVALID_TRANSACTION


@pytest_twisted.ensureDeferred
async def test_refusals_name_their_reason_and_change_nothing(ledger):  # noqa: F811
    today = time.strftime("%Y%m%d", time.gmtime())
    await _put(ledger, "PAST", points=10, valid_to="2020-01-31")
    await _put(ledger, "LATER", points=10, valid_from="2999-01-01")
    await _put(ledger, "NOW", points=10, valid_from=today, valid_to=today)
    await _put(ledger, "ELSEWHERE", points=10, clubs=["BHNRESELLER0001"])
    await _put(ledger, "GOLDONLY", points=10, tier="GOLD")
    await _put(ledger, "OFF", points=10, enabled=False)
    await _put(ledger, "DEAR", points=1_000)
    card = await ledger.issue("loyalty", activate=0)
    await ledger.send(Op.EARN, card, 5_000)
    expected = {"PAST": ("12", "reward not valid today"), "LATER": ("12", "reward not valid today"),
                "ELSEWHERE": ("58", "reward not claimable here"),
                "GOLDONLY": ("12", "tier too low"), "OFF": ("12", "reward disabled"),
                "DEAR": ("51", None)}
    for rid, want in expected.items():
        r = await ledger.send(Op.REDEEM_POINTS, card, reward=rid)
        assert (r.code, r.message) == want, rid
    assert (await ledger.show(card)).points == 50
    assert (await ledger.send(Op.REDEEM_POINTS, card, reward="NOW")).points == 40


@pytest_twisted.ensureDeferred
async def test_concurrent_claims_on_the_last_item_exactly_one_wins(ledger):  # noqa: F811
    await _put(ledger, "LAST", points=10, stock=1)
    cards_ = [await ledger.issue("loyalty", activate=0) for _ in range(8)]
    for card in cards_:
        await ledger.send(Op.EARN, card, 2_000)
    # submitted in one reactor turn: the processor starts them together (one pipeline)
    results = await defer.gatherResults([
        ledger.processor.submit(ledger.request(Op.REDEEM_POINTS, c, reward="LAST"))
        for c in cards_])
    assert sorted(r.code for r in results) == ["00"] + ["05"] * 7
    reward = await _reward(ledger, "LAST")
    assert (reward.stock, reward.claimed) == (0, 1)
    points = [(await ledger.show(c)).points for c in cards_]
    assert sorted(points) == [10] + [20] * 7


@pytest.mark.parametrize("undo", [Op.VOID, Op.REVERSAL])
@pytest_twisted.ensureDeferred
async def test_an_undone_claim_gives_points_and_stock_back(ledger, undo):  # noqa: F811
    await _put(ledger, "MUG", points=40, stock=1)
    card = await ledger.issue("loyalty", activate=0)
    await ledger.send(Op.EARN, card, 5_000)
    key = ledger.key()
    assert (await ledger.send(Op.REDEEM_POINTS, card, reward="MUG", key=key)).points == 10
    r = await ledger.send(undo, card, original_key=key, operator="BOSS")
    assert (r.code, r.points) == ("00", 50)
    reward = await _reward(ledger, "MUG")
    assert (reward.stock, reward.claimed) == (1, 0)
    last = (await ledger.call(journal_of(ledger.store, card)))[-1]
    assert (last.op, last.dp, last.reward, last.operator) == (undo.name.lower(), 40, "MUG", "BOSS")
    claims = await ledger.call(rewards.list_claims(ledger.store, "loyalty", 0, time.time() + 1))
    assert [(c.op, c.voided) for c in claims] == [("claim", True), (undo.name.lower(), False)]
    assert claims[1].orig == key
    # a repeat of the undo changes nothing more
    assert (await ledger.send(Op.VOID, card, original_key=key)).code == RC.INVALID_TRANSACTION
    assert (await _reward(ledger, "MUG")).stock == 1
    assert (await ledger.call(audit(ledger.store))).ok


@pytest.mark.parametrize("how", ["void", "reversal", "rollback", "void-claim"])
@pytest_twisted.ensureDeferred
async def test_an_undone_claim_gives_its_points_back_to_their_lots(ledger, how):  # noqa: F811
    """Whoever undoes a claim (a till's void or reversal, an operator's rollback or void of the
    claim), its points go back to the lots it took them from: the card's points stay the sum
    of its lots, and expire with them (an operator's undo once gave them to no lot)."""
    program = ledger.config.programs["loyalty"]
    await _put(ledger, "MUG", points=40, stock=1)
    card = await ledger.issue("loyalty", activate=0)
    await ledger.send(Op.EARN, card, 5_000)
    earned = await lots_of(ledger, card)
    key = ledger.key()
    assert (await ledger.send(Op.REDEEM_POINTS, card, reward="MUG", key=key)).points == 10
    assert sum((await lots_of(ledger, card)).values()) == 10
    if how in ("void", "reversal"):
        op = Op.VOID if how == "void" else Op.REVERSAL
        assert (await ledger.send(op, card, original_key=key)).code == RC.APPROVED
    elif how == "rollback":
        res = await ledger.call(rollback_last(ledger.store, card, program))
        assert res["rc"] == RC.APPROVED, res
    else:
        res = await ledger.call(rewards.void_claim(ledger.store, program, key, "BOSS"))
        assert res is not None and res["rc"] == RC.APPROVED, res
    assert (await ledger.show(card)).points == 50
    assert await lots_of(ledger, card) == earned
    assert (await _reward(ledger, "MUG")).stock == 1


@pytest_twisted.ensureDeferred
async def test_an_operator_rollback_of_a_claim_gives_the_stock_back(ledger):  # noqa: F811
    await _put(ledger, "MUG", points=40, stock=1)
    card = await ledger.issue("loyalty", activate=0)
    await ledger.send(Op.EARN, card, 5_000)
    assert (await ledger.send(Op.REDEEM_POINTS, card, reward="MUG")).points == 10
    res = await ledger.call(rollback_last(ledger.store, card, ledger.config.programs["loyalty"]))
    assert res["rc"] == "00", res
    assert (await ledger.show(card)).points == 50
    reward = await _reward(ledger, "MUG")
    assert (reward.stock, reward.claimed) == (1, 0)
    last = (await ledger.call(journal_of(ledger.store, card)))[-1]
    assert (last.op, last.reward) == ("rollback", "MUG")


@pytest_twisted.ensureDeferred
async def test_an_admin_api_status_change_names_its_token_in_the_journal(ledger):  # noqa: F811
    from gateway.ledger.cards import set_card_status
    card = await ledger.issue("gift", activate=100)
    res = await ledger.call(set_card_status(ledger.store, card, "suspended",
                                            operator="token:backoffice"))
    assert res["rc"] == "00"
    last = (await ledger.call(journal_of(ledger.store, card)))[-1]
    assert (last.op, last.operator) == ("status:suspended", "token:backoffice")

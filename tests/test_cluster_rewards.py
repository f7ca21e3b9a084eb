"""Reward claims on a Redis Cluster (gateway/ledger/rewardsplit.py): the reward's keys
(`{rw:<program>}`) and the card's (`{c:<id>}`) are in two slots, so a claim is a reservation in
the reward's slot, the card script, then its settlement; an undo is the card script, then the
item given back. Over the session's local cluster (3 primaries, 3 replicas)."""

from __future__ import annotations

import json
import time

import pytest
import pytest_twisted
from test_cluster_store import cledger  # noqa: F401  (fixture)
from test_ledger_cli import tillgate, write_config
from test_ledger_undo import journal_of
from test_points_lots import lots_of
from test_rewards import _put, _reward
from twisted.internet import defer

from gateway.ledger import cards, feed, rewardkeys, rewards, rewardsplit
from gateway.ledger.audit import audit
from gateway.ledger.cards import rollback_last
from gateway.ledger.params import record_ttl
from gateway.ledger.rewardsweep import sweep_reservations
from gateway.ledger.store import StoreError
from protocols.model import RC, Op


def _split(ledger, card: str, rid: str) -> bool:  # noqa: F811
    """Whether the card's and the reward's keys are in two slots (so the claim splits)."""
    return not ledger.store.same_slot(cards.state_key(cards.card_id(card)),
                                      rewardkeys.reward_key("loyalty", rid))


async def _member(ledger, rid: str, spend: int = 10_000) -> str:  # noqa: F811
    """A loyalty card with spend/100 points, in another slot than the reward's."""
    while True:
        card = await ledger.issue("loyalty", activate=0)
        if _split(ledger, card, rid):
            break
    assert (await ledger.send(Op.EARN, card, spend)).code == RC.APPROVED
    return card


async def _claims(ledger) -> list[tuple[str, str, int, bool]]:  # noqa: F811
    got = await ledger.call(rewards.list_claims(ledger.store, "loyalty", 0, time.time() + 1))
    return [(c.op, c.reward, c.points, c.voided) for c in got]


async def _stock(ledger, rid: str) -> tuple[int | None, int]:  # noqa: F811
    reward = await _reward(ledger, rid)
    return reward.stock, reward.claimed


async def _read(ledger, *command: object) -> object:  # noqa: F811
    async def read() -> object:
        return await ledger.store.command(*command)
    return await ledger.call(read())


async def _held(ledger) -> object:  # noqa: F811
    return await _read(ledger, "ZRANGE", rewardkeys.held_key("loyalty"), 0, -1)


async def _sweep(ledger, later: float = rewardsplit.SWEEP_AFTER + 1):  # noqa: F811
    return await ledger.call(sweep_reservations(ledger.store, ledger.config,
                                                time.time() + later, record_ttl(ledger.config)))


@pytest_twisted.ensureDeferred
async def test_a_claim_takes_points_and_stock_once_and_writes_its_line(cledger):  # noqa: F811
    ledger = cledger
    await _put(ledger, "MUG", name="Mug", points=40, stock=2)
    card = await _member(ledger, "MUG")
    key = ledger.key()
    r = await ledger.send(Op.REDEEM_POINTS, card, reward="MUG", operator="ANNA", key=key)
    assert (r.code, r.amount, r.points) == ("00", 40, 60)
    again = await ledger.send(Op.REDEEM_POINTS, card, reward="MUG", operator="ANNA", key=key,
                              repeat=True)  # the till's retransmission: every step replays
    assert (again.code, again.points) == ("00", 60)
    assert await _stock(ledger, "MUG") == (1, 1)
    assert (await ledger.show(card)).points == 60
    assert await _claims(ledger) == [("claim", "MUG", -40, False)]
    last = (await ledger.call(journal_of(ledger.store, card)))[-1]
    assert (last.op, last.dp, last.reward, last.operator) == ("redeem_points", -40, "MUG", "ANNA")
    assert await _held(ledger) == []
    state = await _read(ledger, "HGET", rewardkeys.reservation_key("loyalty", key), "st")
    assert state == b"claimed"
    assert (await ledger.call(audit(ledger.store))).ok


@pytest_twisted.ensureDeferred
async def test_a_claim_the_card_refuses_gives_the_item_back_once(cledger):  # noqa: F811
    ledger = cledger
    await _put(ledger, "DEAR", points=1_000, stock=3)
    card = await _member(ledger, "DEAR")  # 100 points: short
    key = ledger.key()
    r = await ledger.send(Op.REDEEM_POINTS, card, reward="DEAR", key=key)
    assert r.code == RC.INSUFFICIENT_FUNDS
    assert await _stock(ledger, "DEAR") == (3, 0)
    r = await ledger.send(Op.REDEEM_POINTS, card, reward="DEAR", key=key, repeat=True)
    assert r.code == RC.INSUFFICIENT_FUNDS
    assert await _stock(ledger, "DEAR") == (3, 0)  # not given back twice
    assert await _claims(ledger) == []
    assert (await ledger.show(card)).points == 100


@pytest_twisted.ensureDeferred
async def test_the_reward_refuses_in_its_slot_and_a_retransmission_hears_the_same(cledger):  # noqa: F811
    ledger = cledger
    await _put(ledger, "GONE", points=10, stock=0)
    await _put(ledger, "OFF", points=10, enabled=False)
    await _put(ledger, "ELSEWHERE", points=10, clubs=["BHNRESELLER0001"])
    await _put(ledger, "GOLDONLY", points=10, tier="GOLD")
    card = await _member(ledger, "GONE")
    expected = {"GONE": ("05", "out of stock"), "OFF": ("12", "reward disabled"),
                "ELSEWHERE": ("58", "reward not claimable here"),
                "GOLDONLY": ("12", "tier too low"), "TEA": ("12", "unknown reward")}
    for rid, want in expected.items():
        key = ledger.key()
        r = await ledger.send(Op.REDEEM_POINTS, card, reward=rid, key=key)
        assert (r.code, r.message) == want, rid
        if rid != "TEA":  # (TEA: refused before the store, an unknown id of no catalogue)
            await _put(ledger, rid, points=10, stock=5, enabled=True, clubs=[], tier="")
            r = await ledger.send(Op.REDEEM_POINTS, card, reward=rid, key=key, repeat=True)
            assert (r.code, r.message) == want, rid  # its first answer, though it would pass now
    assert (await ledger.show(card)).points == 100
    assert await _claims(ledger) == []


@pytest_twisted.ensureDeferred
async def test_the_config_reward_is_claimed_without_stock(cledger):  # noqa: F811
    ledger = cledger
    card = await _member(ledger, "COFFEE", spend=30_000)
    r = await ledger.send(Op.REDEEM_POINTS, card, reward="COFFEE")
    assert (r.code, r.points) == ("00", 200)
    assert await _claims(ledger) == [("claim", "COFFEE", -100, False)]


@pytest_twisted.ensureDeferred
async def test_two_cards_racing_for_the_last_item_one_wins(cledger):  # noqa: F811
    ledger = cledger
    await _put(ledger, "LAST", points=10, stock=1)
    racers = [await _member(ledger, "LAST", spend=2_000) for _ in range(2)]
    results = await defer.gatherResults([  # one reactor turn: both start together
        ledger.processor.submit(ledger.request(Op.REDEEM_POINTS, c, reward="LAST"))
        for c in racers])
    assert sorted(r.code for r in results) == ["00", "05"]
    assert await _stock(ledger, "LAST") == (0, 1)
    assert sorted([(await ledger.show(c)).points for c in racers]) == [10, 20]
    assert await _claims(ledger) == [("claim", "LAST", -10, False)]


async def _undo(ledger, how: str, card: str, claim_key: str):  # noqa: F811
    """Undo the claim `how`; then again as its retransmission (or a second operator try).
    Returns both answers' codes."""
    if how in ("void", "reversal"):
        op = Op.VOID if how == "void" else Op.REVERSAL
        key = ledger.key()
        first = await ledger.send(op, card, original_key=claim_key, key=key, operator="BOSS")
        again = await ledger.send(op, card, original_key=claim_key, key=key, operator="BOSS",
                                  repeat=True)
        return first.code, again.code
    program = ledger.config.programs["loyalty"]
    if how == "rollback":
        first = await ledger.call(rollback_last(ledger.store, card, program, operator="BOSS"))
        again = await ledger.call(rollback_last(ledger.store, card, program, operator="BOSS"))
    else:
        first = await ledger.call(rewards.void_claim(ledger.store, program, claim_key, "BOSS"))
        again = await ledger.call(rewards.void_claim(ledger.store, program, claim_key, "BOSS"))
    return first["rc"], again["rc"]


@pytest.mark.parametrize("how,second", [("void", "00"), ("reversal", "00"),
                                        ("rollback", "25"), ("void-claim", "12")])
@pytest_twisted.ensureDeferred
async def test_an_undo_gives_points_and_stock_back_once(cledger, how, second):  # noqa: F811
    ledger = cledger
    await _put(ledger, "MUG", points=40, stock=1)
    card = await _member(ledger, "MUG", spend=5_000)
    key = ledger.key()
    assert (await ledger.send(Op.REDEEM_POINTS, card, reward="MUG", key=key)).points == 10
    assert await _stock(ledger, "MUG") == (0, 1)
    assert await _undo(ledger, how, card, key) == ("00", second)
    assert (await ledger.show(card)).points == 50
    lots = await lots_of(ledger, card)
    assert sum(lots.values()) == 50, lots  # back in the lots they came from, on a cluster too
    assert await _stock(ledger, "MUG") == (1, 0)
    op = "void" if how == "void-claim" else how
    assert await _claims(ledger) == [("claim", "MUG", -40, True), (op, "MUG", 40, False)]
    claims = await ledger.call(rewards.list_claims(ledger.store, "loyalty", 0, time.time() + 1))
    assert claims[1].orig == key and claims[1].operator == "BOSS"
    last = (await ledger.call(journal_of(ledger.store, card)))[-1]
    assert (last.op, last.dp, last.reward) == (op, 40, "MUG")
    # another undo of the same claim (a new key) finds it undone: nothing more comes back
    r = await ledger.send(Op.VOID, card, original_key=key)
    assert r.code == RC.INVALID_TRANSACTION
    assert await _stock(ledger, "MUG") == (1, 0)
    assert (await ledger.call(audit(ledger.store))).ok


@pytest_twisted.ensureDeferred
async def test_a_crash_after_the_reservation_is_swept_back(cledger):  # noqa: F811
    ledger = cledger
    await _put(ledger, "MUG", points=40, stock=1)
    card = await _member(ledger, "MUG")
    req = ledger.request(Op.REDEEM_POINTS, card, reward="MUG")
    program = ledger.config.programs["loyalty"]
    params = ledger.processor.params(req, program, "claim_reward", card)
    # the gateway dies after step 1: the item is reserved, the card script never ran
    held = await ledger.call(rewardsplit.reserve(
        ledger.store, rewardkeys.reward_key("loyalty", "MUG"), params, "mask"))
    assert held.state == "held"
    assert await _stock(ledger, "MUG") == (0, 1)
    assert (await _sweep(ledger, later=0)).returned == 0  # too young: it may be on its way
    assert await _stock(ledger, "MUG") == (0, 1)
    report = await _sweep(ledger)
    assert (report.claimed, report.returned) == (0, 1)
    assert await _stock(ledger, "MUG") == (1, 0)
    assert await _held(ledger) == []
    # the till's retransmission comes late: answered 05, no points taken, no item
    r = await ledger.processor.submit(req)
    assert r.code == RC.DO_NOT_HONOUR
    assert (await ledger.show(card)).points == 100
    assert await _stock(ledger, "MUG") == (1, 0)
    assert await _claims(ledger) == []
    assert ((await _sweep(ledger)).claimed, (await _sweep(ledger)).returned) == (0, 0)


@pytest_twisted.ensureDeferred
async def test_points_expire_settles_reservations_held_too_long(
        cledger, tmp_path, tillgate_cluster_url):  # noqa: F811
    # `tillgate points expire` (a cron's sweep, no gateway running) runs what serve runs
    ledger = cledger
    await _put(ledger, "MUG", points=40, stock=1)
    card = await _member(ledger, "MUG")
    params = ledger.processor.params(ledger.request(Op.REDEEM_POINTS, card, reward="MUG"),
                                     ledger.config.programs["loyalty"], "claim_reward", card)
    await ledger.call(rewardsplit.reserve(ledger.store, rewardkeys.reward_key("loyalty", "MUG"),
                                          params, "mask"))  # the gateway died after step 1
    config = write_config(tmp_path, tillgate_cluster_url)
    later = str(int(time.time() + rewardsplit.SWEEP_AFTER + 60))
    done = tillgate(config, "points", "expire", "--now", later)
    assert done.returncode == 0, done.stderr
    assert "reward reservations settled: 0 claimed, 1 items given back" in done.stdout
    assert await _stock(ledger, "MUG") == (1, 0)
    again = tillgate(config, "points", "expire", "--now", later, "--json")
    assert json.loads(again.stdout)["reservations"] == {"claimed": 0, "returned": 0}


@pytest.mark.parametrize("rid,points,code,after", [("MUG", 40, "00", (0, 1)),
                                                   ("DEAR", 1_000, "51", (1, 0))])
@pytest_twisted.ensureDeferred
async def test_a_crash_before_the_settlement_is_swept_to_the_card_answer(
        cledger, monkeypatch, rid, points, code, after):  # noqa: F811
    ledger = cledger
    await _put(ledger, rid, points=points, stock=1)
    card = await _member(ledger, rid)

    async def lost(*_args: object) -> str:  # the settlement never reaches Redis
        raise StoreError("redis at test: connection lost")

    with monkeypatch.context() as m:
        m.setattr(rewardsplit, "settle", lost)
        r = await ledger.send(Op.REDEEM_POINTS, card, reward=rid)
    assert r.code == code  # the card's answer stands
    assert await _stock(ledger, rid) == (0, 1)  # still reserved
    assert await _claims(ledger) == []
    report = await _sweep(ledger)
    assert (report.claimed, report.returned) == ((1, 0) if code == "00" else (0, 1))
    assert await _stock(ledger, rid) == after
    assert await _claims(ledger) == ([("claim", rid, -points, False)] if code == "00" else [])
    assert (await ledger.call(audit(ledger.store))).ok


def test_reward_and_card_keys_are_in_two_slots():
    # what the split is for: the reward's hash tag and a card's never share a slot by design
    assert feed.key_slot(rewardkeys.reward_key("loyalty", "MUG")) == feed.key_slot(
        rewardkeys.reservation_key("loyalty", "L:1")) == feed.key_slot(
        rewardkeys.held_key("loyalty")) == feed.key_slot(rewardkeys.returned_key("loyalty", "v"))


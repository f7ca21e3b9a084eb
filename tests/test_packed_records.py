"""Request records in the packed layout (`redis.packed_records`, docs/ledger.md "Request
records"): the stored response and one msgpack field `u`; every undo reads both layouts, so the
records a gateway wrote before the switch (they live 35 days) are voided, reversed and rolled
back as before, on a real Redis through the Processor."""

from __future__ import annotations

import tomllib
from dataclasses import replace

import msgpack
import pytest
import pytest_twisted
from test_ledger_support import Ledger, ledger_config
from test_rewards import _put, _reward

from gateway.config.model import ConfigError, parse_config
from gateway.ledger import cards
from gateway.ledger.audit import audit
from gateway.ledger.store import Store
from gateway.reactor import deferred_from_coro
from protocols.model import RC, Op


@pytest_twisted.async_yield_fixture
async def gateways(redis_url):
    """(fields, packed): two gateways on one Redis, before and after the switch."""
    config = ledger_config()
    packed = replace(config, redis=replace(config.redis, packed_records=True))
    config = replace(config, redis=replace(config.redis, packed_records=False))
    store = await deferred_from_coro(Store.connect(redis_url, pool_size=8))
    old, new = Ledger(config, store), Ledger(packed, store)
    new._keys = old._keys  # one sequence of request keys for both
    yield old, new
    await deferred_from_coro(store.close())


def _record(redis_client, card: str, key: str) -> dict[bytes, bytes]:
    return redis_client.hgetall(cards.record_key(cards.card_id(card), key))


@pytest_twisted.ensureDeferred
async def test_a_packed_record_is_two_fields_and_undoes_as_before(gateways, redis_client):
    _, new = gateways
    card = await new.issue("gift", activate=2000)
    redeem, reload = new.key(), new.key()
    assert (await new.send(Op.REDEEM, card, 500, key=redeem)).balance == 1500
    assert (await new.send(Op.RELOAD, card, 300, key=reload)).balance == 1800
    rec = _record(redis_client, card, redeem)
    assert set(rec) == {b"resp", b"rc", b"u"}  # rc alone is read alone (reward_orphan.lua)
    u = msgpack.unpackb(rec[b"u"])
    assert (rec[b"rc"], u["op"], u["dv"], u["ramt"]) == (b"00", "redeem", -500, 500)
    # a retransmission replays the stored response
    assert (await new.send(Op.REDEEM, card, 500, key=redeem)).balance == 1500
    r = await new.send(Op.VOID, card, original_key=redeem)
    assert (r.code, r.amount, r.balance) == ("00", 500, 2300)
    assert (await new.send(Op.VOID, card, original_key=redeem)).code == "12"  # once
    # the amount asked for is in `u`: a reversal of another amount is 13
    assert (await new.send(Op.REVERSAL, card, 299, original_key=reload)).code == "13"
    r = await new.send(Op.REVERSAL, card, 300, original_key=reload)
    assert (r.code, r.balance) == ("00", 2000)
    assert redis_client.hget(cards.record_key(cards.card_id(card), reload), "undone") == b"1"
    assert (await new.send(Op.REVERSAL, card, 300, original_key=reload)).balance == 2000
    await new.send(Op.REDEEM, card, 250)
    res = await new.call(cards.rollback_last(new.store, card, new.config.program_of_card(card)))
    assert (res["rc"], res["bal"]) == ("00", 2000)
    assert (await new.call(audit(new.store))).ok


@pytest_twisted.ensureDeferred
async def test_records_of_either_layout_are_undone_by_either_gateway(gateways, redis_client):
    """A rolling switch: records written before it are undone after it, and back."""
    old, new = gateways
    card = await old.issue("loyalty", activate=0)
    before, after = old.key(), new.key()
    await old.send(Op.EARN, card, 10_000, key=before)  # 100 points, the field layout
    await new.send(Op.EARN, card, 5_000, key=after)  # 50 points, packed
    assert b"jid" in _record(redis_client, card, before)
    assert set(_record(redis_client, card, after)) == {b"resp", b"rc", b"u"}
    r = await new.send(Op.VOID, card, original_key=before)
    assert (r.code, r.amount, r.points) == ("00", 100, 50)
    r = await old.send(Op.REVERSAL, card, original_key=after)
    assert (r.code, r.points) == ("00", 0)
    for gateway, key in ((old, before), (new, after)):  # undone once, whichever asks again
        assert (await gateway.send(Op.VOID, card, original_key=key)).code == "12"
    # a tombstone's own fields are read as before
    late = new.key()
    assert (await new.send(Op.REVERSAL, card, original_key=late)).code == "00"
    late_original = await old.send(Op.EARN, card, 1_000, key=late)
    assert late_original.code == RC.DO_NOT_HONOUR
    assert (await new.call(audit(new.store))).ok


@pytest_twisted.ensureDeferred
async def test_a_packed_claim_keeps_the_reward_keys_readable(gateways, redis_client):
    _, new = gateways
    await _put(new, "MUG", name="Mug", points=40, stock=2)
    card = await new.issue("loyalty", activate=0)
    await new.send(Op.EARN, card, 10_000)
    claim = new.key()
    assert (await new.send(Op.REDEEM_POINTS, card, reward="MUG", key=claim)).points == 60
    assert set(_record(redis_client, card, claim)) == {b"resp", b"rc", b"u", b"rwk"}
    # the gateway reads `rwk` before the void (processor._reward_keys): the stock comes back
    r = await new.send(Op.VOID, card, original_key=claim)
    assert (r.code, r.points) == ("00", 100)
    assert ((await _reward(new, "MUG")).stock, (await _reward(new, "MUG")).claimed) == (2, 0)


def test_packed_records_is_a_boolean_or_auto():
    with open("config/tillgate.toml", "rb") as f:
        data = tomllib.load(f)
    assert parse_config(data, "t").redis.packed_records is None  # the default: the ledger's mark
    for value, read in (("auto", None), (True, True), (False, False)):
        data["redis"]["packed_records"] = value
        assert parse_config(data, "t").redis.packed_records is read
    data["redis"]["packed_records"] = "yes"
    with pytest.raises(ConfigError) as raised:
        parse_config(data, "t")
    assert 'redis.packed_records: must be true, false or "auto"' in str(raised.value)

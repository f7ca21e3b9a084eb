"""Issue 19 promotions: `[[programs.X.promotions]]` chosen by day and merchant in the gateway,
applied in the earn and load scripts on a real Redis, named in the journal entry."""

from __future__ import annotations

import datetime as dt
import secrets
import tomllib
from dataclasses import replace
from typing import Any

import pytest
import pytest_twisted
from test_ledger_support import EXTRA_PROGRAMS, Ledger
from test_ledger_undo import journal_of

from gateway.config.model import parse_config
from gateway.config.sections import ConfigError
from gateway.ledger.audit import audit
from gateway.ledger.params import ScriptParams
from gateway.ledger.resellers import ResellerRules
from gateway.ledger.store import Store
from gateway.reactor import deferred_from_coro
from protocols.model import RC, Op, Request

SATURDAY = dt.datetime(2030, 1, 5, 12, tzinfo=dt.UTC)  # a Saturday
LOYALTY_PROMOTIONS = [
    {"id": "DOUBLE-SAT", "kind": "multiplier", "multiplier": 2, "weekdays": ["sat"]},
    {"id": "TRIPLE-DAY", "kind": "multiplier", "multiplier": 3, "dates": ["2030-01-07"],
     "merchants": ["STORE0000000001"]},
    {"id": "WELCOME", "kind": "first_purchase", "points": 50, "from": "2030-01-01"},
    {"id": "BIG-BASKET", "kind": "min_spend", "points": 20, "min_amount": 10000,
     "to": "2030-01-31"},
]
GIFT_PROMOTIONS = [
    {"id": "LOAD50", "kind": "load_bonus", "bonus": 500, "min_amount": 5000,
     "merchants": ["STORE0000000001"]},
]


def promo_config(loyalty: list[dict[str, Any]] = LOYALTY_PROMOTIONS,
                 gift: list[dict[str, Any]] = GIFT_PROMOTIONS):
    with open("config/tillgate.toml", "rb") as f:
        data = tomllib.load(f)
    data["programs"].update(EXTRA_PROGRAMS)
    data["programs"]["loyalty"]["promotions"] = loyalty
    data["programs"]["gift"]["promotions"] = gift
    data["merchants"]["STORE0000000002"] = {"name": "Second shop", "terminals": ["TILL0003"]}
    return parse_config(data, "test")


@pytest_twisted.async_yield_fixture
async def shop(redis_url):
    store = await deferred_from_coro(Store.connect(redis_url, pool_size=4))
    ledger = Ledger(promo_config(), store)
    ledger.processor.clock = SATURDAY.timestamp
    yield ledger
    await deferred_from_coro(store.close())


def on(ledger: Ledger, day: dt.datetime) -> None:
    ledger.processor.clock = day.timestamp


@pytest_twisted.ensureDeferred
async def test_earn_promotions_by_day_and_merchant_first_purchase_once(shop):
    card = await shop.issue("loyalty", activate=0)
    # Saturday at the first shop: double points, the welcome bonus (first earn), no big basket
    r = await shop.send(Op.EARN, card, 1_000, operator="ANNA")
    assert (r.code, r.points) == ("00", 10 * 2 + 50)
    # the next purchase: double again, no welcome; 100.00 reaches the big basket
    assert (await shop.send(Op.EARN, card, 10_000)).points == 70 + 200 + 20
    on(shop, SATURDAY + dt.timedelta(days=1))  # Sunday: nothing but the big basket
    assert (await shop.send(Op.EARN, card, 1_000)).points == 290 + 10
    on(shop, SATURDAY + dt.timedelta(days=2))  # the triple day, at its club only
    assert (await shop.send(Op.EARN, card, 1_000)).points == 300 + 30
    elsewhere = await shop.send(Op.EARN, card, 1_000, terminal="TILL0003",
                                merchant="STORE0000000002")
    assert elsewhere.points == 330 + 10
    on(shop, dt.datetime(2030, 2, 2, 12, tzinfo=dt.UTC))  # a Saturday after the big basket
    assert (await shop.send(Op.EARN, card, 10_000)).points == 340 + 200
    entries = await shop.call(journal_of(shop.store, card))
    # the default's tiers (HOST-SPEC 1.1 section 6): the last earn takes the card past 500 points
    # earned, a zero-value `tier` entry of its own; the promotions are on the earns
    earns = [e for e in entries if e.op == "earn"]
    assert [(e.dp, e.promotions) for e in earns] == [
        (70, "DOUBLE-SAT,WELCOME"), (220, "DOUBLE-SAT,BIG-BASKET"), (10, ""), (30, "TRIPLE-DAY"),
        (10, ""), (200, "DOUBLE-SAT")]
    assert [(e.op, e.dp, e.promotions) for e in entries[-1:]] == [("tier", 0, "")]
    assert earns[0].operator == "ANNA"

    # a void takes the bonus back with the purchase; the welcome is not given a second time
    on(shop, dt.datetime(2030, 2, 3, 12, tzinfo=dt.UTC))  # a Sunday: no multiplier
    other = await shop.issue("loyalty", activate=0)
    key = shop.key()
    assert (await shop.send(Op.EARN, other, 1_000, key=key)).points == 50 + 10
    assert (await shop.send(Op.VOID, other, original_key=key)).points == 0
    assert (await shop.send(Op.EARN, other, 1_000)).points == 10
    assert (await shop.call(audit(shop.store))).ok


def test_an_earn_is_given_its_promotions_decided_as_scalars_and_one_flat_list():
    """The earn script's promotion parameters are what the request alone decides (the highest
    multiplier, the bonuses the amount reaches), not a list of maps to unpack on every call
    (docs/benchmarks.md section 18); a load still gets its `promo` list."""
    config = promo_config()
    params = ScriptParams(config, ResellerRules(config), SATURDAY.timestamp)
    loyalty, gift = config.programs["loyalty"], config.programs["gift"]

    def earn(amount: int, merchant: str = "STORE0000000001") -> dict[str, Any]:
        req = Request(op=Op.EARN, terminal="TILL0001", merchant=merchant, key="k",
                      card="7700000000000000", amount=amount)
        return params.build(req, loyalty, "earn", req.card)

    small, big = earn(1_000), earn(10_000)
    assert "promo" not in small and "promo" not in big
    assert (small["pm"], small["pmi"], small["pb"]) == (2, "DOUBLE-SAT", ["WELCOME", 50, 1])
    assert big["pb"] == ["WELCOME", 50, 1, "BIG-BASKET", 20, 0]
    params.clock = (SATURDAY + dt.timedelta(days=2)).timestamp  # the triple day, at its club
    assert earn(1_000)["pm"] == 3
    assert "pm" not in earn(1_000, merchant="STORE0000000002")
    load = Request(op=Op.RELOAD, terminal="TILL0001", merchant="STORE0000000001", key="k",
                   card="6000000000000000", amount=5_000)
    assert params.build(load, gift, "reload", load.card)["promo"] == [
        {"id": "LOAD50", "k": "load", "b": 500, "min": 5000}]


@pytest_twisted.ensureDeferred
async def test_a_promotion_day_is_the_programs_local_day(redis_url):
    config = promo_config()
    zoned = dt.datetime(2030, 1, 4, 12, tzinfo=dt.UTC)  # Friday noon UTC: Saturday 01:00 in NZ
    config.programs["loyalty"] = replace(config.programs["loyalty"], timezone="Pacific/Auckland")
    store = await deferred_from_coro(Store.connect(redis_url, pool_size=2))
    try:
        ledger = Ledger(config, store)
        card = await ledger.issue("loyalty", activate=0)
        on(ledger, zoned)
        assert (await ledger.send(Op.EARN, card, 1_000)).points == 10 * 2 + 50  # Saturday there
        on(ledger, zoned + dt.timedelta(days=1))  # Saturday noon UTC: Sunday 01:00 in NZ
        assert (await ledger.send(Op.EARN, card, 1_000)).points == 70 + 10
    finally:
        await deferred_from_coro(store.close())


@pytest_twisted.ensureDeferred
async def test_a_load_bonus_on_activation_and_reload_at_its_club(shop):
    card = await shop.issue("gift", activate=5_000)  # load 50.00, get 5.00 more
    assert (await shop.show(card)).balance == 5_500
    r = await shop.send(Op.RELOAD, card, 4_999)  # below the minimum: nothing more
    assert (r.code, r.balance) == ("00", 10_499)
    key = shop.key()
    r = await shop.send(Op.RELOAD, card, 5_000, key=key)
    assert (r.code, r.amount, r.balance) == ("00", 5_000, 15_999)
    r = await shop.send(Op.RELOAD, card, 5_000, terminal="TILL0003", merchant="STORE0000000002")
    assert r.balance == 20_999  # another merchant: no bonus
    assert (await shop.send(Op.REFUND, card, 5_000)).balance == 25_999  # refunds: never
    assert (await shop.send(Op.VOID, card, original_key=key)).balance == 20_499
    entries = await shop.call(journal_of(shop.store, card))
    assert [(e.op, e.dv, e.promotions) for e in entries] == [
        ("activate", 5_500, "LOAD50"), ("reload", 4_999, ""), ("reload", 5_500, "LOAD50"),
        ("reload", 5_000, ""), ("refund", 5_000, ""), ("void", -5_500, "")]
    # the bonus counts against the maximum balance (100,000): 94,700 + 5,500 is too much
    full = await shop.issue("gift", activate=94_200)
    assert (await shop.show(full)).balance == 94_700
    assert (await shop.send(Op.RELOAD, full, 5_000)).code == RC.LIMIT_EXCEEDED
    assert (await shop.call(audit(shop.store))).ok


@pytest.mark.parametrize(("promotion", "error"), [
    ({"id": "X", "kind": "multiplier"},
     "programs.loyalty.promotions[0].multiplier: is required for multiplier"),
    ({"id": "X", "kind": "multiplier", "multiplier": 1},
     "programs.loyalty.promotions[0].multiplier: must be an integer from 2 to 100"),
    ({"id": "X", "kind": "min_spend", "points": 5},
     "programs.loyalty.promotions[0].min_amount: is required for min_spend (minor units)"),
    ({"id": "X", "kind": "load_bonus", "bonus": 5},
     "programs.loyalty.promotions[0].kind: load_bonus does not apply to a loyalty program"),
    ({"id": "X", "kind": "multiplier", "multiplier": 2, "weekdays": ["caturday"]},
     "programs.loyalty.promotions[0].weekdays: must be among mon, tue, wed, thu, fri, sat, sun "
     "(got 'caturday')"),
    ({"id": "X", "kind": "multiplier", "multiplier": 2, "from": "2030-13-01"},
     "programs.loyalty.promotions[0].from: must be a date YYYY-MM-DD (got '2030-13-01')"),
    ({"id": "X", "kind": "multiplier", "multiplier": 2, "merchants": ["NOBODY"]},
     "programs.loyalty.promotions[0].merchants: unknown merchant 'NOBODY'"),
    ({"id": "X", "kind": "multiplier", "multiplier": 2, "percent": 5},
     "programs.loyalty.promotions[0].percent: is not a known setting"),
])
def test_promotion_config_errors_name_their_path(promotion, error):
    with pytest.raises(ConfigError) as caught:
        promo_config(loyalty=[promotion], gift=[])
    assert error in caught.value.errors


@pytest_twisted.ensureDeferred
async def test_a_config_reload_starts_and_ends_a_promotion(tillgate_inprocess_factory):
    from isohelpers import new_card
    from test_config_reload import BASE, _running_with
    from twisted.internet.defer import succeed

    from protocols.model import Request

    gw = await tillgate_inprocess_factory()
    gateway = gw.gateway
    card, _ = await new_card(gateway, "loyalty")
    run = secrets.token_hex(4)  # request keys of their own: the suite's Redis outlives a test
    seq = iter(range(1, 100))

    async def earn() -> int | None:
        result = await gateway.processor.submit(Request(
            op=Op.EARN, card=card, amount=1_000,
            terminal="TILL0001", merchant="STORE0000000001",
            key=f"L:TILL0001:STORE0000000001:{run}{next(seq)}:20261205"))
        return result.points

    async def reload(text: str) -> None:
        gateway.reloader.load = lambda _path: succeed(_running_with(gateway, text))
        answers: list = []
        gateway.reload("test").addCallback(answers.append)
        assert answers and answers[0].applied, answers and answers[0].errors

    assert (await gateway.processor.submit(Request(
        op=Op.ACTIVATE, card=card, terminal="TILL0001", merchant="STORE0000000001",
        key=f"L:TILL0001:STORE0000000001:{run}0:20261205"))).code == "00"
    assert await earn() == 10
    promotion = ('\n[[programs.loyalty.promotions]]\nid = "TRIPLE"\nkind = "multiplier"\n'
                 'multiplier = 3\n')
    await reload(BASE.read_text().replace('cost = 100\n', 'cost = 100\n' + promotion, 1))
    assert await earn() == 10 + 30
    await reload(BASE.read_text())
    assert await earn() == 40 + 10

"""Velocity rules end to end through the Processor on a real redis-server: every rule trips
exactly at its limit and not one request before, also when the burst arrives concurrently
(one batch: every claim in one pipeline, every script racing the others)."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ledger_support import EXTRA_PROGRAMS, MERCH, TERM, Ledger, random_number
from twisted.internet import defer

from gateway.config.model import ConfigError, parse_config
from gateway.ledger import cards
from gateway.ledger.store import Store
from gateway.reactor import deferred_from_coro
from gateway.security import rules
from gateway.security.alerts.queue import STREAM, AlertQueue
from gateway.security.alerts.record import Alert
from protocols.model import RC, Op, Request, Result

T0 = 1_800_000_000 - (1_800_000_000 % 86400)  # the start of a day: every window starts here


def rules_config(*rule_list: dict[str, Any], **extra: Any):
    with open("config/tillgate.toml", "rb") as f:
        data = tomllib.load(f)
    data["programs"].update(EXTRA_PROGRAMS)
    data["rules"] = list(rule_list)
    data.update(extra)
    return parse_config(data, "test")


@pytest_twisted.async_yield_fixture
async def store(redis_url):
    s = await deferred_from_coro(Store.connect(redis_url, pool_size=8))
    yield s
    await deferred_from_coro(s.close())


def make_ledger(store: Store, *rule_list: dict[str, Any]) -> Ledger:
    ledger = Ledger(rules_config(*rule_list), store)
    ledger.now = T0 + 100  # type: ignore[attr-defined]
    ledger.processor.clock = lambda: ledger.now  # type: ignore[attr-defined]
    return ledger


async def burst(ledger: Ledger, requests: list[Request]) -> list[str]:
    """Submit all at once (one batch, one pipeline per phase); the response codes in order."""
    results = await defer.gatherResults([ledger.processor.submit(r) for r in requests])
    return [r.code for r in results]


async def alerts(store: Store) -> list[Alert]:
    entries = await deferred_from_coro(store.client.xrange(STREAM))
    return [Alert.from_json(fields[b"a"]) for _, fields in entries]


# -- card scope: inside the card script ---------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_card_redemptions_decline_on_the_sixth_in_a_concurrent_burst(store):
    ledger = make_ledger(store, {"name": "card-redeem", "scope": "card", "event": "redeem",
                                 "window": 600, "max_count": 5, "action": "decline"})
    card = await ledger.issue(activate=10000)
    codes = await burst(ledger, [ledger.request(Op.REDEEM, card, 100) for _ in range(9)])
    assert sorted(codes) == ["00"] * 5 + [RC.VELOCITY] * 4
    assert (await ledger.show(card)).balance == 10000 - 500
    [alert] = await alerts(store)  # four refusals, one alert for the window
    assert (alert.rule, alert.scope, alert.count, alert.value) == (
        "card-redeem", "card", 5, cards_mask(card))
    assert card not in alert.to_json()
    other = await ledger.issue(activate=1000)  # another card has its own counter
    assert (await ledger.send(Op.REDEEM, other, 100)).code == "00"
    ledger.now += 600  # the next window
    assert (await ledger.send(Op.REDEEM, card, 100)).code == "00"


def cards_mask(card: str) -> str:
    from protocols.model import mask_card
    return mask_card(card)


@pytest_twisted.ensureDeferred
async def test_card_amount_rule_counts_only_approved_value_sequentially(store):
    ledger = make_ledger(store, {"name": "card-spend", "scope": "card", "event": "redeem",
                                 "window": 3600, "max_amount": 1000, "action": "decline"})
    card = await ledger.issue(activate=5000)
    for amount in (400, 400, 200):  # exactly 1000: not more than the limit
        assert (await ledger.send(Op.REDEEM, card, amount)).code == "00"
    assert (await ledger.send(Op.REDEEM, card, 1)).code == RC.VELOCITY
    poor = await ledger.issue(activate=100)
    assert (await ledger.send(Op.REDEEM, poor, 900)).code == RC.INSUFFICIENT_FUNDS  # not counted
    assert (await ledger.send(Op.REDEEM, poor, 100)).code == "00"


@pytest_twisted.ensureDeferred
async def test_lock_card_rule_suspends_the_card_until_an_operator_unlocks(store):
    ledger = make_ledger(store, {"name": "card-lock", "scope": "card", "event": "balance",
                                 "window": 60, "max_count": 2, "action": "lock_card"})
    card = await ledger.issue(activate=500)
    assert [(await ledger.send(Op.BALANCE, card)).code for _ in range(3)] == [
        "00", "00", RC.SUSPENDED]
    assert (await ledger.show(card)).status == "suspended"
    assert (await ledger.send(Op.REDEEM, card, 10)).code == RC.SUSPENDED
    assert await ledger.call(cards.unlock_card(store, card))
    ledger.now += 60
    assert (await ledger.send(Op.REDEEM, card, 10)).code == "00"


@pytest_twisted.ensureDeferred
async def test_card_wrong_pin_rate_limit_refuses_before_the_pin_is_tried(store):
    ledger = make_ledger(store, {"name": "pin-guess", "scope": "card", "event": "wrong_pin",
                                 "window": 60, "max_count": 1, "action": "decline"})
    card = await ledger.issue("secure", pin="1234", activate=5000)
    assert (await ledger.send(Op.BALANCE, card, pin="0000")).code == RC.INCORRECT_PIN
    assert (await ledger.send(Op.BALANCE, card, pin="1234")).code == RC.VELOCITY
    assert (await ledger.show(card)).pin_tries_failed == 1  # the PIN was not even tried
    ledger.now += 60
    assert (await ledger.send(Op.BALANCE, card, pin="1234")).code == "00"


# -- terminal, merchant, operator, source: phase 1 in the merchant's slot ------------------------

@pytest_twisted.ensureDeferred
async def test_terminal_activation_amount_per_day_in_a_concurrent_burst(store):
    ledger = make_ledger(store, {"name": "term-activate", "scope": "terminal",
                                 "event": "activate", "window": 86400, "max_amount": 200000,
                                 "action": "decline"})
    fresh = [await ledger.issue() for _ in range(7)]
    codes = await burst(ledger, [ledger.request(Op.ACTIVATE, c, 50000) for c in fresh])
    assert sorted(codes) == ["00"] * 4 + [RC.VELOCITY] * 3  # 4 x 500.00 = 2,000.00 exactly
    assert (await ledger.send(Op.ACTIVATE, fresh[0], 50000, terminal="TILL0002")).code in (
        "00", RC.INVALID_TRANSACTION)  # the other terminal is not limited by this one


@pytest_twisted.ensureDeferred
async def test_reservation_given_back_when_the_card_refuses(store):
    ledger = make_ledger(store, {"name": "term-activate", "scope": "terminal",
                                 "event": "activate", "window": 86400, "max_amount": 100000,
                                 "action": "decline"})
    never_issued = random_number(ledger.config, "gift")
    assert (await ledger.send(Op.ACTIVATE, never_issued, 100000)).code == RC.UNKNOWN_CARD
    card = await ledger.issue()
    assert (await ledger.send(Op.ACTIVATE, card, 100000)).code == "00"  # the 14 gave it back
    another = await ledger.issue()
    assert (await ledger.send(Op.ACTIVATE, another, 1)).code == RC.VELOCITY


@pytest_twisted.ensureDeferred
async def test_operator_transfers_per_day(store):
    ledger = make_ledger(store, {"name": "op-transfer", "scope": "operator",
                                 "event": "transfer", "window": 86400, "max_count": 3,
                                 "action": "decline"})
    codes = []
    for _ in range(5):
        source, target = await ledger.issue(activate=100), await ledger.issue(activate=0)
        codes.append((await ledger.send(Op.TRANSFER, source, target_card=target,
                                        operator="CLERK7")).code)
    assert codes == ["00", "00", "00", RC.VELOCITY, RC.VELOCITY]
    source, target = await ledger.issue(activate=100), await ledger.issue(activate=0)
    assert (await ledger.send(Op.TRANSFER, source, target_card=target,
                              operator="CLERK8")).code == "00"


@pytest_twisted.ensureDeferred
async def test_unknown_cards_alert_once_at_the_21st_default_rule(store):
    ledger = Ledger(rules_config(*_default_rules()), store)  # HOST-SPEC 6's one rule
    unknown = [random_number(ledger.config, "gift") for _ in range(10)]  # fit, never issued
    nowhere = ["1" * 12 + str(i) for i in range(15)]  # fit no program: 14 before Redis
    numbers = unknown + nowhere
    codes = [(await ledger.send(Op.BALANCE, n)).code for n in numbers[:20]]
    assert set(codes) == {RC.UNKNOWN_CARD}
    assert await alerts(store) == []  # 20 is not more than 20
    assert (await ledger.send(Op.BALANCE, numbers[20])).code == RC.UNKNOWN_CARD  # alert only
    [alert] = await alerts(store)
    assert (alert.rule, alert.scope, alert.value, alert.count) == (
        "unknown-card-burst", "terminal", TERM, 21)
    for n in numbers[21:]:
        assert (await ledger.send(Op.BALANCE, n)).code == RC.UNKNOWN_CARD
    assert len(await alerts(store)) == 1  # de-duplicated for the window


def _default_rules() -> list[dict[str, Any]]:
    with open("config/tillgate.toml", "rb") as f:
        return tomllib.load(f)["rules"]


@pytest_twisted.ensureDeferred
async def test_unknown_card_rate_limit_per_terminal_in_a_concurrent_burst(store):
    ledger = make_ledger(store, {"name": "enum", "scope": "terminal", "event": "unknown_card",
                                 "window": 60, "max_count": 3, "action": "decline"})
    card = await ledger.issue(activate=100)
    numbers = [random_number(ledger.config, "gift") for _ in range(6)]
    numbers += ["7" * 7 + str(i) for i in range(4)]  # fit no program: answered before Redis
    codes = await burst(ledger, [ledger.request(Op.BALANCE, n) for n in numbers])
    assert codes.count(RC.UNKNOWN_CARD) == 3 and codes.count(RC.VELOCITY) == 7
    assert (await ledger.send(Op.BALANCE, card)).code == RC.VELOCITY  # limited for the window
    assert (await ledger.send(Op.BALANCE, card, terminal="TILL0002")).code == "00"
    ledger.now += 60
    assert (await ledger.send(Op.BALANCE, card)).code == "00"


@pytest_twisted.ensureDeferred
async def test_a_good_answer_gives_back_the_unknown_card_reservation(store):
    ledger = make_ledger(store, {"name": "enum", "scope": "terminal", "event": "unknown_card",
                                 "window": 60, "max_count": 1, "action": "decline"})
    card = await ledger.issue(activate=100)
    for _ in range(5):  # known cards never use up the allowance
        assert (await ledger.send(Op.BALANCE, card)).code == "00"
    assert (await ledger.send(Op.BALANCE, random_number(ledger.config, "gift"))).code == "14"
    assert (await ledger.send(Op.BALANCE, card)).code == RC.VELOCITY


@pytest_twisted.ensureDeferred
async def test_wrong_pins_per_source_address_disable_the_terminal(store):
    ledger = make_ledger(store, {"name": "pin-src", "scope": "source", "event": "wrong_pin",
                                 "window": 300, "max_count": 2, "action": "disable_terminal"})
    card = await ledger.issue("secure", pin="1234", activate=5000)
    card2 = await ledger.issue("secure", pin="1234", activate=5000)
    codes = [(await ledger.send(Op.BALANCE, c, pin="9999", source=f"10.1.1.1:{port}")).code
             for c, port in ((card, 4001), (card2, 4002))]
    assert codes == [RC.INCORRECT_PIN] * 2
    assert (await ledger.send(Op.BALANCE, card, pin="1234", source="10.1.1.1:4003")).code == "00"
    third = await ledger.send(Op.BALANCE, card2, pin="9999", source="10.1.1.1:4004")
    assert third.code == RC.INCORRECT_PIN  # the 3rd wrong PIN is answered, then the switch
    assert await ledger.call(rules.terminal_disabled(store, MERCH, TERM))
    refused = await ledger.send(Op.BALANCE, card, pin="1234", source="10.9.9.9:1")
    assert refused.code == RC.TERMINAL_NOT_PERMITTED
    fits_nothing = "1234567890123"
    assert (await ledger.send(Op.BALANCE, fits_nothing)).code == RC.TERMINAL_NOT_PERMITTED
    assert [a.rule for a in await alerts(store)] == ["pin-src"]
    assert (await alerts(store))[0].value == "10.1.1.1"
    assert await ledger.call(rules.set_terminal_enabled(store, MERCH, TERM, True))
    assert (await ledger.send(Op.BALANCE, card, pin="1234")).code == "00"


@pytest_twisted.ensureDeferred
async def test_disable_terminal_on_an_operation_rule_refuses_then_58(store):
    ledger = make_ledger(store, {"name": "reloads", "scope": "merchant", "event": "reload",
                                 "window": 3600, "max_count": 2,
                                 "action": "disable_terminal"})
    card = await ledger.issue(activate=100)
    codes = await burst(ledger, [ledger.request(Op.RELOAD, card, 10) for _ in range(4)])
    # the 3rd passes the limit (65) and disables the terminal; the 4th finds it disabled (58)
    assert sorted(codes) == ["00", "00", RC.TERMINAL_NOT_PERMITTED, RC.VELOCITY]
    assert (await ledger.send(Op.BALANCE, card)).code == RC.TERMINAL_NOT_PERMITTED
    assert (await ledger.send(Op.BALANCE, card, terminal="TILL0002")).code == "00"


@pytest_twisted.ensureDeferred
async def test_alert_rule_never_refuses_and_alerts_once(store):
    ledger = make_ledger(store, {"name": "big-reloads", "scope": "terminal", "event": "reload",
                                 "window": 86400, "max_amount": 1000, "action": "alert"},
                         {"name": "card-reloads", "scope": "card", "event": "reload",
                          "window": 86400, "max_count": 2, "action": "alert"})
    card = await ledger.issue(activate=100)
    codes = await burst(ledger, [ledger.request(Op.RELOAD, card, 400) for _ in range(4)])
    assert codes == ["00"] * 4
    assert sorted(a.rule for a in await alerts(store)) == ["big-reloads", "card-reloads"]


@pytest_twisted.ensureDeferred
async def test_retransmission_is_not_counted_twice(store):
    ledger = make_ledger(store, {"name": "card-redeem", "scope": "card", "event": "redeem",
                                 "window": 600, "max_count": 1, "action": "decline"},
                         {"name": "term-redeem", "scope": "terminal", "event": "redeem",
                          "window": 600, "max_count": 1, "action": "decline"})
    card = await ledger.issue(activate=1000)
    req = ledger.request(Op.REDEEM, card, 100)
    assert (await ledger.processor.submit(req)).code == "00"
    again = Request(op=Op.REDEEM, card=card, amount=100, terminal=TERM, merchant=MERCH,
                    key=req.key)
    assert (await ledger.processor.submit(again)).code == "00"  # replayed, not refused
    assert (await ledger.send(Op.REDEEM, card, 100)).code == RC.VELOCITY


@pytest_twisted.ensureDeferred
async def test_alert_queue_deduplicates_per_rule_value_and_window(store):
    queue = AlertQueue(store)
    rule = rules_config({"name": "r", "scope": "terminal", "event": "redeem", "window": 60,
                         "max_count": 1}).rules[0]
    req = Request(op=Op.REDEEM, terminal=TERM, merchant=MERCH, key="k", card="6039531234567890")

    def trip(value: str, start: int) -> rules.Trip:
        return rules.Trip(rule, value, value, start, 2, 0)

    first = await deferred_from_coro(queue.raise_trip(trip("A", T0), req, T0))
    assert first is not None
    assert await deferred_from_coro(queue.raise_trip(trip("A", T0), req, T0 + 5)) is None
    assert await deferred_from_coro(queue.raise_trip(trip("B", T0), req, T0 + 5)) is not None
    assert await deferred_from_coro(queue.raise_trip(trip("A", T0 + 60), req, T0 + 61))
    assert len(await alerts(store)) == 3


# -- configuration -------------------------------------------------------------------------------

@pytest.mark.parametrize("rule, message", [
    ({"scope": "card", "event": "unknown_card", "action": "alert"}, "rules[0].scope"),
    ({"scope": "terminal", "event": "redeem", "action": "lock_card"}, "rules[0].action"),
    ({"scope": "card", "event": "redeem", "action": "disable_terminal"}, "rules[0].action"),
    ({"scope": "terminal", "event": "wrong_pin", "max_amount": 5}, "rules[0].max_amount"),
    ({"scope": "card", "event": "reverse", "action": "decline"}, "rules[0].action"),
])
def test_rule_combinations_that_mean_nothing_are_config_errors(rule, message):
    full = {"name": "x", "window": 60, "max_count": 1, **rule}
    with pytest.raises(ConfigError) as e:
        rules_config(full)
    assert any(err.startswith(message) for err in e.value.errors), e.value.errors


def test_rule_names_are_unique():
    r = {"name": "x", "scope": "card", "event": "redeem", "window": 60, "max_count": 1}
    with pytest.raises(ConfigError, match=r"rules\[1\]\.name"):
        rules_config(r, r)


MERCHANT_SLOT_RULES = st.fixed_dictionaries({
    "scope": st.sampled_from(["terminal", "merchant", "operator", "source"]),
    "event": st.sampled_from(["redeem", "activate", "unknown_card", "wrong_pin", "declined"]),
    "action": st.sampled_from(["alert", "decline", "disable_terminal"]),
    "max_count": st.integers(1, 3),
})


@settings(max_examples=200, deadline=None)
@given(rule_list=st.lists(MERCHANT_SLOT_RULES, max_size=3),
       op=st.sampled_from([Op.REDEEM, Op.ACTIVATE, Op.BALANCE]),
       code=st.sampled_from(sorted({v for k, v in vars(RC).items() if k.isupper()
                                    and isinstance(v, str)})))
def test_phase_3_is_skipped_only_when_it_would_find_nothing(rule_list, op, code):
    """has_after_phase says no only where after_steps could build nothing (the Processor then
    skips phase 3 without building it)."""
    velocity = rules.Velocity(rules_config(*[{"name": f"r{i}", "window": 60, **rule}
                                             for i, rule in enumerate(rule_list)]).rules)
    req = Request(op=op, terminal=TERM, merchant=MERCH, key="k", card="6", amount=100,
                  source="10.0.0.5:50123")
    plan = velocity.claim_plan(req, T0)
    result = Result(code, amount=100 if code in RC.APPROVALS else None)
    if not velocity.has_after_phase(plan, result):
        assert velocity.after_steps(req, plan, result, T0) is None


def test_source_host_drops_the_port():
    assert rules.source_host("10.0.0.5:50123") == "10.0.0.5"
    assert rules.source_host("::1:50123") == "::1"
    assert rules.source_host("/dev/ttyUSB0") == "/dev/ttyUSB0"
    assert rules.source_host(None) is None


# -- enumeration defence: uniform answers --------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_uniform_decline_answers_inactive_exactly_like_unknown(store):
    from dataclasses import replace

    ledger = make_ledger(store)
    gift = replace(ledger.config.programs["gift"], uniform_decline=True)
    ledger.config = replace(ledger.config, programs={**ledger.config.programs, "gift": gift})
    ledger.processor.config = ledger.config
    issued = await ledger.issue()  # inactive
    unknown = random_number(ledger.config, "gift")
    source = await ledger.issue(activate=100)
    pairs = [(await ledger.send(op, issued, amount, **kw), await ledger.send(op, unknown,
                                                                            amount, **kw))
             for op, amount, kw in ((Op.BALANCE, 0, {}), (Op.REDEEM, 10, {}),
                                    (Op.RELOAD, 10, {}))]
    pairs.append((await ledger.send(Op.TRANSFER, source, target_card=issued),
                  await ledger.send(Op.TRANSFER, source, target_card=unknown)))
    for inactive, missing in pairs:
        assert inactive == missing and inactive.code == RC.UNKNOWN_CARD, (inactive, missing)


@pytest_twisted.ensureDeferred
async def test_two_gateways_racing_share_one_limit(store, redis_url):
    """Two processors on two connections (two gateways) split one burst between them."""
    rule = {"name": "term-redeem", "scope": "terminal", "event": "redeem", "window": 600,
            "max_count": 7, "action": "decline"}
    first = make_ledger(store, rule)
    other_store = await deferred_from_coro(Store.connect(redis_url, pool_size=4))
    try:
        second = make_ledger(other_store, rule)
        card = await first.issue(activate=10000)
        half = [first.request(Op.REDEEM, card, 10) for _ in range(6)]
        other = [second.request(Op.REDEEM, card, 10, key=f"L:{TERM}:{MERCH}:b{i}:20260101")
                 for i in range(6)]
        results = await defer.gatherResults([first.processor.submit(r) for r in half]
                                            + [second.processor.submit(r) for r in other])
    finally:
        await deferred_from_coro(other_store.close())
    codes = [r.code for r in results]
    assert codes.count("00") == 7 and codes.count(RC.VELOCITY) == 5
    assert (await first.show(card)).balance == 10000 - 70


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(1, 6), requests=st.integers(1, 12),
       scope=st.sampled_from(["card", "terminal", "source"]))
@pytest_twisted.ensureDeferred
async def test_any_burst_approves_exactly_the_limit(redis_url, limit, requests, scope):
    s = await deferred_from_coro(Store.connect(redis_url, pool_size=4))
    try:
        await deferred_from_coro(s.command("FLUSHDB"))
        ledger = make_ledger(s, {"name": "r", "scope": scope, "event": "reload", "window": 60,
                                 "max_count": limit, "action": "decline"})
        card = await ledger.issue(activate=0)
        codes = await burst(ledger, [ledger.request(Op.RELOAD, card, 1, source="10.0.0.9:1")
                                     for _ in range(requests)])
    finally:
        await deferred_from_coro(s.close())
    assert codes.count("00") == min(limit, requests)
    assert codes.count(RC.VELOCITY) == max(requests - limit, 0)


@pytest_twisted.ensureDeferred
async def test_declined_answers_at_a_terminal_alert_after_the_limit(store):
    ledger = make_ledger(store, {"name": "declines", "scope": "terminal", "event": "declined",
                                 "window": 60, "max_count": 2, "action": "alert"})
    card = await ledger.issue(activate=100)
    for _ in range(2):
        assert (await ledger.send(Op.REDEEM, card, 500)).code == RC.INSUFFICIENT_FUNDS
    assert await alerts(store) == []
    assert (await ledger.send(Op.REDEEM, card, 500)).code == RC.INSUFFICIENT_FUNDS
    assert [(a.rule, a.count) for a in await alerts(store)] == [("declines", 3)]


@pytest_twisted.ensureDeferred
async def test_partial_approval_gives_back_the_part_not_approved(store):
    ledger = make_ledger(store, {"name": "term-spend", "scope": "terminal", "event": "redeem",
                                 "window": 3600, "max_amount": 1000, "action": "decline"})
    poor, rich = await ledger.issue(activate=300), await ledger.issue(activate=5000)
    partial = await ledger.send(Op.REDEEM, poor, 500, partial_ok=True)
    assert (partial.code, partial.amount) == (RC.PARTIAL, 300)  # 200 of the 500 given back
    assert (await ledger.send(Op.REDEEM, rich, 700)).code == "00"  # 300 + 700 = 1000
    assert (await ledger.send(Op.REDEEM, rich, 1)).code == RC.VELOCITY

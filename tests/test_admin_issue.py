"""`POST /v1/cards/issue` on the admin listener of a gateway running in the test process, over
real HTTP and a real redis-server: cards issued and activated in real time, the same cards and
PINs when the client asks again with its Idempotency-Key, an interrupted order finished, a taken
number stepped over, and every refusal before anything is issued."""

from __future__ import annotations

import secrets

import pytest
import pytest_twisted
from test_admin_cards import call
from twisted.internet import defer

from gateway.issuance.derived import DerivedDraws
from gateway.issuance.realtime import order_tag
from gateway.ledger import cards
from gateway.ledger.journal import latest
from gateway.metrics import families as metrics
from gateway.reactor import deferred_from_coro
from protocols.carddata import generate_card_number, generate_pin, luhn_valid
from protocols.model import RC, Op, Request

SHOP, CRM = "shop-token-0123456789", "crm-token-9876543210"
SECRET = "7f3c1e0b9a8d2c4e6f1a3b5c7d9e0f21436587a9cbedf0123456789abcdef012"
TOKENS = """
[[security.tokens]]
id = "shop"
scopes = ["cards:issue", "cards:read"]
token_env = "TG_TEST_SHOP"

[[security.tokens]]
id = "crm"
scopes = ["cards:read"]
token_env = "TG_TEST_CRM"
"""
WITH_SECRET = '[security]\nissue_secret_env = "TG_TEST_ISSUE_SECRET"\n' + TOKENS


@pytest.fixture
def tokens(monkeypatch):
    monkeypatch.setenv("TG_TEST_SHOP", SHOP)
    monkeypatch.setenv("TG_TEST_CRM", CRM)
    monkeypatch.setenv("TG_TEST_ISSUE_SECRET", SECRET)


async def issue(port: int, body: object, key: str | None, token: str | None = SHOP):
    """Keys name orders for the whole session's redis-server: each test uses its own."""
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await call(port, "/v1/cards/issue", body, token, headers)


def issued_count(program: str) -> float:
    return metrics.REGISTRY.get_sample_value("tillgate_http_cards_issued_total",
                                             {"program": program}) or 0.0


def drawn_number(program, key: str, index: int) -> str:
    """The number the shop's order `key` draws first for its card `index`."""
    draw = DerivedDraws(SECRET.encode(), f"{order_tag('shop', key)}:{index}:0")
    return generate_card_number(program.prefix, program.card_length_max, program.luhn, draw=draw)


async def shop_gateway(factory, extra: str = WITH_SECRET):
    """A gateway in this process with the shop's tokens: (gateway, admin port, store)."""
    gw = await factory(extra=extra)
    return gw, gw.gateway.http.port.getHost().port, gw.gateway.store_service.store


async def journal_length(store, card: str) -> int:
    return len(await deferred_from_coro(latest(store, cards.journal_key(cards.card_id(card)),
                                               100)))


@pytest_twisted.ensureDeferred
async def test_issued_activated_and_the_same_cards_when_asked_again(tillgate_inprocess_factory,
                                                                   tokens):
    gw, port, store = await shop_gateway(tillgate_inprocess_factory)
    order = {"program": "gift", "count": 3, "activate": 2500}

    assert (await issue(port, order, "order-1", token=None))[0] == 401
    assert (await issue(port, order, "order-1", token=CRM))[0] == 403
    assert (await issue(port, order, key=None))[0] == 400

    issued_before = issued_count("gift")
    status, first = await issue(port, order, "order-1")
    assert status == 200 and first["program"] == "gift"
    numbers = [c["card"] for c in first["cards"]]
    assert len(set(numbers)) == 3
    for entry in first["cards"]:
        assert entry["card"].startswith("603953") and len(entry["card"]) == 19
        assert luhn_valid(entry["card"]) and entry["pin"] == ""
        assert (entry["status"], entry["balance"]) == ("active", 2500)
        shown = await deferred_from_coro(cards.show_card(store, entry["card"]))
        assert (shown.status, shown.balance) == ("active", 2500)

    status, again = await issue(port, order, "order-1")  # the answer was lost: ask again
    assert status == 200 and again == first
    assert issued_count("gift") - issued_before == 3  # found again, not issued again
    for number in numbers:  # loaded once, not twice
        assert await journal_length(store, number) == 1
        assert (await deferred_from_coro(cards.show_card(store, number))).balance == 2500

    status, refused = await issue(port, {**order, "count": 2}, "order-1")
    assert status == 409 and "another order" in refused["error"]
    status, other = await issue(port, order, key="order-2")
    assert status == 200 and not {c["card"] for c in other["cards"]} & set(numbers)


@pytest_twisted.ensureDeferred
async def test_two_calls_racing_with_one_key_answer_the_same_cards(tillgate_inprocess_factory,
                                                                  tokens):
    """A client that times out and asks again while its first call is still running."""
    gw, port, store = await shop_gateway(tillgate_inprocess_factory)
    order = {"program": "gift", "count": 5, "activate": 300}
    first, second = await defer.gatherResults([
        defer.ensureDeferred(issue(port, order, "order-race")),
        defer.ensureDeferred(issue(port, order, "order-race"))])
    assert first[0] == second[0] == 200 and first[1] == second[1]
    for entry in first[1]["cards"]:
        assert await journal_length(store, entry["card"]) == 1  # activated once
        assert (await deferred_from_coro(cards.show_card(store, entry["card"]))).balance == 300


@pytest_twisted.ensureDeferred
async def test_a_pin_program_gets_pins_that_work_at_the_till(tillgate_inprocess_factory, tokens):
    gw, port, _store = await shop_gateway(tillgate_inprocess_factory)
    status, answer = await issue(port, {"program": "secure", "count": 1, "activate": 1000},
                                 key="pin-order")
    assert status == 200
    (entry,) = answer["cards"]
    assert len(entry["pin"]) == 4 and entry["pin"].isdigit()
    assert (await issue(port, {"program": "secure", "count": 1, "activate": 1000},
                        key="pin-order"))[1] == answer  # the same PIN again, never stored

    def balance(pin: str):
        return gw.gateway.processor.submit(Request(
            op=Op.BALANCE, card=entry["card"], pin=pin, terminal="TILL0001",
            merchant="STORE0000000001", key=f"test-admin-issue:{secrets.token_hex(8)}"))

    assert (await balance(entry["pin"])).balance == 1000
    wrong = "0000" if entry["pin"] != "0000" else "1111"
    assert (await balance(wrong)).code == RC.INCORRECT_PIN


@pytest_twisted.ensureDeferred
async def test_an_interrupted_order_is_finished_and_taken_numbers_stepped_over(
        tillgate_inprocess_factory, tokens, redis_client):
    gw, port, store = await shop_gateway(tillgate_inprocess_factory)
    program = gw.gateway.config.programs["gift"]
    # another card already has the number this order's first draw gives
    taken = drawn_number(program, "order-3", 0)
    assert await deferred_from_coro(cards.issue_card(store, program, taken))

    order = {"program": "gift", "count": 2, "activate": 700}
    status, first = await issue(port, order, key="order-3")
    assert status == 200 and taken not in [c["card"] for c in first["cards"]]
    assert (await deferred_from_coro(cards.show_card(store, taken))).status == "issued"

    # the first call stopped before its second card: nothing of that card exists
    lost = first["cards"][1]["card"]
    for key in redis_client.scan_iter(match=f"{{c:{cards.card_id(lost)}}}*"):
        redis_client.delete(key)
    status, again = await issue(port, order, key="order-3")
    assert status == 200 and again == first
    assert (await deferred_from_coro(cards.show_card(store, lost))).balance == 700


@pytest_twisted.ensureDeferred
async def test_refusals_issue_nothing(tillgate_inprocess_factory, tokens, redis_client):
    gw, port, _store = await shop_gateway(tillgate_inprocess_factory)
    before = len(list(redis_client.scan_iter(match="{c:*}:s")))
    for body in ({"program": "gift", "count": 0}, {"program": "gift", "count": 101},
                 {"program": "gift", "count": 1, "activate": 12.5},
                 {"program": "gift", "count": True}, {"program": ["gift"], "count": 1},
                 {"program": "nope", "count": 1}, {"program": "loyalty", "count": 1, "face": 5},
                 {"program": "gift", "count": 1, "amount": 2500}, ["gift"]):
        status, answer = await issue(port, body, "order-5")
        assert status == 400, (body, answer)
    for body, code in (({"program": "gift", "count": 1, "activate": 100001}, RC.LIMIT_EXCEEDED),
                       ({"program": "loyalty", "count": 1, "activate": 5}, RC.INVALID_AMOUNT)):
        status, answer = await issue(port, body, "order-5")
        assert (status, answer.get("code")) == (422, code), answer
    assert (await issue(port, b"not json", "order-5"))[0] == 400
    assert len(list(redis_client.scan_iter(match="{c:*}:s"))) == before
    # the refused orders did not use their key up
    assert (await issue(port, {"program": "gift", "count": 1}, "order-5"))[0] == 200


@pytest_twisted.ensureDeferred
async def test_an_activation_the_card_refuses_ends_the_order(tillgate_inprocess_factory, tokens):
    """A card of the order that an operator suspended before its activation was reached: the
    order stops there, with the cards so far, and asking again answers the same."""
    gw, port, store = await shop_gateway(tillgate_inprocess_factory)
    program = gw.gateway.config.programs["gift"]
    second = drawn_number(program, "order-4", 1)
    tag = order_tag("shop", "order-4")
    assert await deferred_from_coro(cards.issue_card(store, program, second, batch=f"api:{tag}"))
    await deferred_from_coro(cards.set_card_status(store, second, "suspended", operator="test"))

    order = {"program": "gift", "count": 3, "activate": 900}
    status, answer = await issue(port, order, key="order-4")
    assert (status, answer["code"]) == (422, RC.SUSPENDED)
    assert [(c["status"], c["balance"]) for c in answer["cards"]] == [("active", 900),
                                                                       ("issued", 0)]
    assert answer["cards"][1]["card"] == second
    assert (await issue(port, order, key="order-4")) == (status, answer)


@pytest_twisted.ensureDeferred
async def test_off_without_a_secret(tillgate_inprocess_factory, tokens):
    _gw, port, _store = await shop_gateway(tillgate_inprocess_factory, extra=TOKENS)
    status, answer = await issue(port, {"program": "gift", "count": 1}, "order-6")
    assert status == 503 and "issue_secret" in answer["error"]


def test_derived_draws_repeat_for_the_same_secret_and_label_only():
    secret = SECRET.encode()

    def pins(label: str, key: bytes = secret) -> list[str]:
        draw = DerivedDraws(key, label)
        return [generate_pin(6, draw=draw) for _ in range(20)]

    assert pins("a:0:0") == pins("a:0:0")
    assert pins("a:0:0") != pins("a:0:1")
    assert pins("a:0:0") != pins("a:0:0", secret[::-1])
    draw = DerivedDraws(secret, "uniform")
    counts = [0] * 7
    for _ in range(7000):
        counts[draw.randbelow(7)] += 1
    assert all(850 < n < 1150 for n in counts), counts  # about 1000 each; 1e-6 to fail
    with pytest.raises(ValueError):
        DerivedDraws(b"short", "x")
    with pytest.raises(ValueError):
        draw.randbelow(0)

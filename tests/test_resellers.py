"""Reseller (POSA) activations from the Blackhawk profile, over ISO 8583 into a real gateway."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest_twisted
from isohelpers import in_thread, new_card

from gateway.ledger.cards import show_card
from gateway.ledger.resellers import report_csv, settlement_rows
from gateway.reactor import deferred_from_coro
from gateway.sim.isoclient import IsoClient
from protocols.isobuild import request_fields, reversal_fields
from protocols.model import Op

BHN = {"terminal": "BHN00001", "merchant": "BHNRESELLER0001"}
STORE = {"terminal": "TILL0001", "merchant": "STORE0000000001"}
UPC_25 = "799366289999"  # fixed $25.00
UPC_VARIABLE = "799366289975"  # $10.00 - $500.00


@pytest_twisted.async_fixture
async def gateway(tillgate_inprocess_factory, redis_url):
    return (await tillgate_inprocess_factory(redis_url=redis_url)).gateway


def exchange(gw, *messages):
    with IsoClient("127.0.0.1", gw.listeners[0].bound_port) as till:
        return [till.exchange(m) for m in messages]


def activation(card, amount, stan, rrn, upc=UPC_25, **kw):
    return request_fields(Op.ACTIVATE, card=card, amount=amount, stan=stan, rrn=rrn, upc=upc,
                          **BHN, **kw)


async def balance_of(gw, card):
    return (await deferred_from_coro(show_card(gw.store_service.store, card))).balance


@pytest_twisted.ensureDeferred
async def test_catalogue_rules(gateway):
    card, _ = await new_card(gateway)
    wrong_amount, no_upc, unknown_upc, variable_low, ok = await in_thread(
        exchange, gateway,
        activation(card, 2000, "000001", "000000000001"),
        request_fields(Op.ACTIVATE, card=card, amount=2500, stan="000002", rrn="000000000002",
                       **BHN),
        activation(card, 2500, "000003", "000000000003", upc="036000291452"),
        activation(card, 999, "000004", "000000000004", upc=UPC_VARIABLE),
        activation(card, 2500, "000005", "000000000005"),
    )
    assert wrong_amount["39"] == "13"
    assert no_upc["39"] == "30"
    assert unknown_upc["39"] == "12"
    assert variable_low["39"] == "13"
    assert ok["39"] == "00"
    assert await balance_of(gateway, card) == 2500


@pytest_twisted.ensureDeferred
async def test_a_retransmitted_rrn_gets_the_original_response(gateway):
    card, _ = await new_card(gateway)
    first, again, other = await in_thread(
        exchange, gateway,
        activation(card, 2500, "000001", "112233445566"),
        # The network retries under a new STAN and transmission time, same RRN and content.
        activation(card, 2500, "000002", "112233445566", transmitted="1124235959"),
        # The same RRN with other content is a duplicate, not a retransmission.
        activation(card, 5000, "000003", "112233445566", upc="799366289982"),
    )
    assert first["39"] == again["39"] == "00"
    assert first["38"] == again["38"]
    assert other["39"] == "94"
    assert await balance_of(gateway, card) == 2500


@pytest_twisted.ensureDeferred
async def test_deactivation_only_while_nothing_was_spent(gateway):
    fresh, _ = await new_card(gateway)
    spent, _ = await new_card(gateway)
    act_fresh = activation(fresh, 2500, "000001", "000000000101")
    act_spent = activation(spent, 2500, "000002", "000000000102")
    results = await in_thread(
        exchange, gateway, act_fresh, act_spent,
        request_fields(Op.REDEEM, card=spent, amount=100, stan="000003", **STORE),
        request_fields(Op.VOID, card=fresh, stan="000004", rrn="000000000201", original=act_fresh,
                       **BHN),
        request_fields(Op.VOID, card=spent, stan="000005", rrn="000000000202", original=act_spent,
                       **BHN),
    )
    assert [r["39"] for r in results] == ["00", "00", "00", "00", "12"]
    assert await balance_of(gateway, fresh) == 0
    assert await balance_of(gateway, spent) == 2400


@pytest_twisted.ensureDeferred
async def test_reversal_finds_its_original_by_rrn(gateway):
    card, _ = await new_card(gateway)
    first = activation(card, 2500, "000001", "000000000301")
    retry = activation(card, 2500, "000002", "000000000301", transmitted="1124235959")
    # The network reverses the retry it timed out on: field 90 names the second STAN.
    reversal = reversal_fields(retry, stan="000003")
    responses = await in_thread(exchange, gateway, first, retry, reversal)
    assert [r["39"] for r in responses] == ["00", "00", "00"]
    assert await balance_of(gateway, card) == 0


@pytest_twisted.ensureDeferred
async def test_settlement_report_of_the_day(gateway):
    card, _ = await new_card(gateway)
    act = activation(card, 2500, "000001", "000000000401", serial="SN0001")
    await in_thread(exchange, gateway, act, act,  # a retransmission settles once
                    request_fields(Op.VOID, card=card, stan="000002", rrn="000000000402",
                                   original=act, **BHN))
    store = gateway.store_service.store
    today = dt.datetime.now(dt.UTC).date()
    rows = await deferred_from_coro(settlement_rows(store, gateway.config, "blackhawk", today))
    table = list(csv.DictReader(io.StringIO(report_csv(rows))))
    assert [(r["type"], r["amount"], r["rrn"]) for r in table] == [
        ("activation", "2500", "000000000401"), ("deactivation", "2500", "000000000402")]
    assert table[0]["upc"] == UPC_25 and table[0]["serial"] == "SN0001"
    assert card not in report_csv(rows) and table[0]["card"].startswith(card[:6])

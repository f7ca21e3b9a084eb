"""The simulator's messages checked against the host's own codecs: what a `Till` sends is what
protocols.isomap / protocols.tgl read, and what the host answers is what `Reply` shows. Amounts
typed by people go through gateway.ledger.amounts only. No gateway needed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config.model import load_config
from gateway.ledger.amounts import format_amount, parse_amount
from gateway.pytest_plugin import default_base_config
from gateway.sim.messages import Call, Exchange, IsoDialect, TglDialect
from gateway.sim.render import as_json, as_table
from protocols import isocodec, tgl
from protocols.isomap import message_to_request, result_to_response
from protocols.isospec import SPEC_ASCII
from protocols.model import Op, Result

CONFIG = load_config(default_base_config())
IDS = {"terminal": "TILL0001", "merchant": "STORE0000000001"}
GIFT = "6039530000000000018"
LOYALTY = "7712345678"
SECURE = "6039540000000006"


@given(st.integers(min_value=0, max_value=10**10 - 1))
@settings(max_examples=200)
def test_amounts_round_trip_without_floats(minor):
    text = format_amount(minor)
    assert parse_amount(text) == minor
    assert Decimal(text) * 100 == minor


@pytest.mark.parametrize("text, minor", [("12.50", 1250), ("12.5", 1250), ("12", 1200),
                                         ("0.01", 1), (" 7.10 ", 710), ("0.30", 30)])
def test_amounts_typed_by_people(text, minor):
    assert parse_amount(text) == minor


@pytest.mark.parametrize("text", ["1.005", "-1", "1e3", "", "1,000.00", "nan", "12.", ".5"])
def test_amounts_refused_with_a_reason(text):
    with pytest.raises(ValueError, match="amount"):
        parse_amount(text)


def iso_round_trip(call: Call, seq: str = "000042"):
    dialect = IsoDialect("ascii", CONFIG)
    fields = dialect.build(call, seq=seq, **IDS)
    decoded = isocodec.decode(dialect.encode(fields), SPEC_ASCII)
    return fields, message_to_request(decoded)


@pytest.mark.parametrize("call, op, code", [
    (Call(Op.ACTIVATE, card=GIFT, amount=2500), Op.ACTIVATE, "900060"),
    (Call(Op.ACTIVATE, card=LOYALTY, amount=0), Op.ACTIVATE, "900090"),
    (Call(Op.PREVALIDATE, card=GIFT), Op.PREVALIDATE, "900060"),
    (Call(Op.RELOAD, card=GIFT, amount=100), Op.RELOAD, "210060"),
    (Call(Op.REDEEM, card=GIFT, amount=100, partial=True), Op.REDEEM, "006000"),
    (Call(Op.REFUND, card=GIFT, amount=100), Op.REFUND, "200060"),
    (Call(Op.CASHOUT, card=GIFT), Op.CASHOUT, "616000"),
    (Call(Op.BALANCE, card=GIFT, mti="0100"), Op.BALANCE, "316000"),
    (Call(Op.POINTS_BALANCE, card=LOYALTY), Op.POINTS_BALANCE, "319000"),
    (Call(Op.TRANSFER, card=GIFT, target="6039530000000000026"), Op.TRANSFER, "486060"),
    (Call(Op.EARN, card=LOYALTY, amount=1250), Op.EARN, "000090"),
    (Call(Op.ADD_POINTS, card=LOYALTY, amount=50), Op.ADD_POINTS, "210090"),
    (Call(Op.RETURN, card=LOYALTY, amount=500), Op.RETURN, "200090"),
    (Call(Op.REDEEM_POINTS, card=LOYALTY, reward="COFFEE"), Op.REDEEM_POINTS, "009000"),
])
def test_every_iso_operation_reads_back_as_itself(call, op, code):
    fields, request = iso_round_trip(call)
    assert fields["3"] == code and request.op is op
    assert (request.card, request.amount or None) == (call.card, call.amount or None)
    assert request.partial_ok == call.partial and request.reward == call.reward


def test_void_and_reversal_name_their_original():
    sale_fields, _ = iso_round_trip(Call(Op.REDEEM, card=GIFT, amount=700), "000100")
    sale = Exchange(Call(Op.REDEEM, card=GIFT, amount=700), "000100", sale_fields)
    void_fields, void = iso_round_trip(Call(Op.VOID, card=GIFT, amount=700, original=sale))
    assert void_fields["3"] == "026000" and void.op is Op.VOID
    assert void_fields["90"].startswith("0200000100" + sale_fields["7"])
    rev_fields, reversal = iso_round_trip(Call(Op.REVERSAL, card=GIFT, original=sale))
    assert rev_fields["t"] == "0400" and reversal.op is Op.REVERSAL
    assert reversal.original_key == void.original_key


def test_pin_goes_as_a_block_the_host_reads_back():
    fields, request = iso_round_trip(Call(Op.REDEEM, card=SECURE, amount=5, pin="4321",
                                          invoice="INV9"))
    assert "4321" not in fields["52"] and request.pin == "4321" and request.invoice == "INV9"


def test_iso_reply_from_the_host_mapping():
    fields, _ = iso_round_trip(Call(Op.EARN, card=LOYALTY, amount=1250))
    response = result_to_response(fields, Result("00", amount=1250, points=312, balance=None,
                                                 tier="GOLD", message="Thanks",
                                                 auth_id="A1B2C3"))
    wire = isocodec.decode(isocodec.encode(dict(response), SPEC_ASCII), SPEC_ASCII)
    dialect = IsoDialect()
    reply = dialect.reply(wire)
    assert dialect.match(fields, wire)
    assert (reply.rc, reply.amount, reply.points, reply.tier, reply.message, reply.auth) == \
        ("00", 1250, 312, "GOLD", "Thanks", "A1B2C3")
    fields, _ = iso_round_trip(Call(Op.BALANCE, card=GIFT))
    response = result_to_response(fields, Result("00", balance=-25, currency="840"))
    assert dialect.reply(response).balance == -25


def test_tgl_request_and_reply_through_the_host_codec():
    dialect = TglDialect()
    sale = Exchange(Call(Op.REDEEM, card=GIFT, amount=300), "77", {"id": "77"})
    fields = dialect.build(Call(Op.VOID, card=GIFT, original=sale), seq="78", **IDS)
    request = tgl.parse_request(dialect.encode(fields), today="20261124")
    assert request.op is Op.VOID and request.original_key.endswith(":77:20261124")
    fields = dialect.build(Call(Op.ACTIVATE_PREVALUED, card=GIFT, amount=2500), seq="79", **IDS)
    assert fields["op"] == "activate"
    payload = tgl.format_response("79", Result("10", amount=250, balance=0, points=3))
    reply = dialect.reply(dialect.decode(payload))
    assert (reply.rc, reply.amount, reply.balance, reply.points) == ("10", 250, 0, 3)
    assert dialect.match(fields, reply.fields)


def test_printed_exchanges_hide_card_numbers_and_pins():
    dialect = IsoDialect("ascii", CONFIG)
    call = Call(Op.TRANSFER, card=SECURE, target="6039540000000014", pin="9876")
    fields = dialect.build(call, seq="000001", **IDS)
    response = result_to_response(fields, Result("00", balance=0, currency="840"))
    exchange = Exchange(call, "000001", fields, dialect.reply(response), 0.002)
    for text in (as_table(exchange), as_json(exchange)):
        assert SECURE not in text and "6039540000000014" not in text
        assert "9876" not in text and fields["52"] not in text
        assert "603954******0006" in text


def test_reader_data_goes_where_the_host_reads_it_and_is_never_printed():
    track = f";{GIFT}=4912101000000?"
    fields, request = iso_round_trip(Call(Op.BALANCE, track2=track))
    assert fields["35"] == track and request.card == GIFT
    fields, request = iso_round_trip(Call(Op.BALANCE, barcode=f"tillgate:card/{GIFT}"))
    assert "BC" in fields["63"] and request.card == GIFT
    exchange = Exchange(Call(Op.BALANCE, barcode=f"tillgate:card/{GIFT}"), "000001", fields)
    for text in (as_table(exchange), as_json(exchange)):
        assert GIFT not in text and "barcode (not shown)" in as_table(exchange)
    with pytest.raises(ValueError, match="not a whole swipe"):
        IsoDialect().build(Call(Op.BALANCE, swipe=track), seq="000002", **IDS)
    tgl_fields = TglDialect().build(Call(Op.BALANCE, swipe=track + "\r"), seq="3", **IDS)
    assert tgl.parse_request(TglDialect().encode(tgl_fields), today="20261124").card == GIFT

"""TGL/1 payloads: every op of HOST-SPEC 3 onto a Request, format errors, responses."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.model import Op, Request, Result, line_request_key
from protocols.tgl import TGL_OPS, TglFormatError, format_response, parse_request, parse_response

TODAY = "20261124"
GIFT = "6039530000000000006"  # 19 digits of program gift (the codec does not check Luhn)
BASE = {"term": "TILL0001", "merch": "STORE0000000001"}


def payload(**fields: str) -> bytes:
    return b"\x1c".join([b"TGL1", b"Q", *(f"{k}={v}".encode() for k, v in fields.items())])


def parse(**fields: str) -> Request:
    return parse_request(payload(**fields), today=TODAY)


def test_spec_op_list_is_exactly_the_tgl_ops():
    spec = ("signon echo activate prevalidate reload redeem refund cashout balance pbalance void "
            "reverse transfer earn padd return predeem").split()
    assert sorted(TGL_OPS) == sorted(spec)


# One request per op, with what each needs; the op maps one-to-one onto protocols.model.Op.
OP_CASES = {
    "signon": {},
    "echo": {},
    "activate": {"card": GIFT, "amt": "2500"},
    "prevalidate": {"card": GIFT},
    "reload": {"card": GIFT, "amt": "1000"},
    "redeem": {"card": GIFT, "amt": "799", "partial": "1"},
    "refund": {"card": GIFT, "amt": "500"},
    "cashout": {"card": GIFT},
    "balance": {"card": GIFT},
    "pbalance": {"card": "7700000001"},
    "void": {"card": GIFT, "orig": "41"},
    "reverse": {"card": GIFT, "orig": "41"},
    "transfer": {"card": GIFT, "target": "6039530000000000014"},
    "earn": {"card": "7700000001", "amt": "1250"},
    "padd": {"card": "7700000001", "amt": "30"},
    "return": {"card": "7700000001", "amt": "1250"},
    "predeem": {"card": "7700000001", "reward": "COFFEE"},
}


@pytest.mark.parametrize("op", sorted(OP_CASES))
def test_every_op_parses(op):
    req = parse(id="42", op=op, **BASE, **OP_CASES[op])
    assert req.op is Op(op)
    assert req.terminal == "TILL0001" and req.merchant == "STORE0000000001"
    assert req.key == line_request_key("TILL0001", "STORE0000000001", "42", TODAY)
    assert req.key == "L:TILL0001:STORE0000000001:42:20261124"
    assert req.channel == "tgl"
    assert req.card == OP_CASES[op].get("card")
    assert req.amount == int(OP_CASES[op].get("amt", "0"))


def test_fields_in_any_order_and_every_optional_key():
    req = parse(pin="1234", inv="INV-77", opid="ann", amt="1500", card=GIFT,
                merch="STORE0000000001", op="redeem", partial="1", term="TILL0002", id="000123")
    assert (req.pin, req.invoice, req.operator, req.partial_ok) == ("1234", "INV-77", "ann", True)
    assert req.key == "L:TILL0002:STORE0000000001:000123:20261124"
    assert req.entry_mode == "010"


def test_void_and_reverse_name_the_original_by_its_id_today():
    req = parse(id="43", op="void", card=GIFT, orig="41", **BASE)
    assert req.original_key == "L:TILL0001:STORE0000000001:41:20261124"
    reverse = parse(id="44", op="reverse", card=GIFT, orig="41", **BASE)
    assert reverse.original_key == req.original_key


def test_transfer_target_and_predeem_points():
    assert parse(id="1", op="transfer", card=GIFT, target="6039530000000000014",
                 **BASE).target_card == "6039530000000000014"
    assert parse(id="1", op="predeem", card="7700000001", amt="100", **BASE).amount == 100


def test_activate_becomes_prevalued_when_the_program_has_face_values():
    data = payload(id="5", op="activate", card=GIFT, amt="2500", **BASE)
    assert parse_request(data, today=TODAY, prevalued=lambda card: True).op is Op.ACTIVATE_PREVALUED
    assert parse_request(data, today=TODAY, prevalued=lambda card: False).op is Op.ACTIVATE
    assert parse_request(data, today=TODAY).op is Op.ACTIVATE


def test_activate_without_amount_loads_zero():
    assert parse(id="6", op="activate", card="7700000001", **BASE).amount == 0


def test_unknown_keys_are_ignored_and_listed():
    req = parse(id="7", op="balance", card=GIFT, lane="4", **BASE)
    assert req.extras["tgl_unknown"] == "lane"


def test_same_key_same_content_same_fingerprint():
    a = parse(id="8", op="redeem", card=GIFT, amt="100", pin="1111", **BASE)
    b = parse(id="8", op="redeem", card=GIFT, amt="100", pin="2222", **BASE)
    c = parse(id="8", op="redeem", card=GIFT, amt="101", **BASE)
    assert a.key == b.key == c.key
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


# --- format errors -------------------------------------------------------------------------

BAD = [
    ({"op": "redeem", "card": GIFT, "amt": "12.50"}, "amt"),
    ({"op": "redeem", "card": GIFT, "amt": "-5"}, "amt"),
    ({"op": "redeem", "card": GIFT, "amt": "1234567890123"}, "amt"),
    ({"op": "redeem", "card": GIFT}, "amt: required"),
    ({"op": "redeem", "amt": "5"}, "card, track, swipe or barcode: required"),
    ({"op": "fly", "card": GIFT}, "op: unknown"),
    ({"op": "signoff"}, "op: unknown"),
    ({"op": "activate_prevalued", "card": GIFT}, "op: unknown"),
    ({"card": GIFT}, "op: required"),
    ({"op": "void", "card": GIFT}, "orig: required"),
    ({"op": "void", "card": GIFT, "orig": "x1"}, "orig"),
    ({"op": "transfer", "card": GIFT}, "target: required"),
    ({"op": "predeem", "card": "7700000001"}, "amt or reward"),
    ({"op": "redeem", "card": GIFT, "amt": "5", "pin": "12"}, "pin"),
    ({"op": "redeem", "card": GIFT, "amt": "5", "partial": "yes"}, "partial"),
    ({"op": "balance", "card": "60395-3"}, "card"),
    ({"op": "balance", "card": GIFT, "inv": "x" * 21}, "inv"),
]


@pytest.mark.parametrize(("fields", "reason"), BAD, ids=[r for _, r in BAD])
def test_format_error_keeps_the_id(fields, reason):
    with pytest.raises(TglFormatError) as err:
        parse(id="99", **{**BASE, **fields})
    assert err.value.seq_id == "99"
    assert reason in err.value.reason


@pytest.mark.parametrize("missing", ["term", "merch"])
def test_terminal_and_merchant_are_required(missing):
    fields = {**BASE, "op": "echo", "id": "3"}
    del fields[missing]
    with pytest.raises(TglFormatError, match=f"{missing}: required"):
        parse(**fields)


def test_long_terminal_is_a_format_error():
    with pytest.raises(TglFormatError, match="term"):
        parse(id="3", op="echo", term="TILL00001", merch="M")


@pytest.mark.parametrize("data", [
    b"", b"TGL2\x1cQ\x1cid=1", b"TGL1", b"TGL1\x1cR\x1cid=1\x1crc=00", b"garbage\xff",
])
def test_not_a_request_has_no_id(data):
    with pytest.raises(TglFormatError) as err:
        parse_request(data, today=TODAY)
    assert err.value.seq_id is None


@pytest.mark.parametrize("seq", ["", "abc", "1234567890123", "12 "])
def test_unreadable_id_is_not_echoed(seq):
    with pytest.raises(TglFormatError) as err:
        parse(id=seq, op="echo", **BASE)
    assert err.value.seq_id is None


def test_missing_id():
    with pytest.raises(TglFormatError, match="id: required") as err:
        parse(op="echo", **BASE)
    assert err.value.seq_id is None


def test_key_given_twice_and_field_without_equals():
    with pytest.raises(TglFormatError, match="amt: given twice") as err:
        parse_request(payload(id="4", op="redeem", card=GIFT, amt="1", **BASE) + b"\x1camt=2",
                      today=TODAY)
    assert err.value.seq_id == "4"
    with pytest.raises(TglFormatError, match="key=value") as err:
        parse_request(payload(id="4", op="echo", **BASE) + b"\x1cbroken", today=TODAY)
    assert err.value.seq_id == "4"


def test_non_ascii_value_is_a_format_error_with_the_id():
    data = payload(id="5", op="balance", **BASE) + b"\x1ccard=6039\xe90000"
    with pytest.raises(TglFormatError, match="card: not printable") as err:
        parse_request(data, today=TODAY)
    assert err.value.seq_id == "5"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_any_bytes_give_a_request_or_a_format_error(data):
    try:
        req = parse_request(b"TGL1\x1cQ\x1c" + data, today=TODAY)
    except TglFormatError as e:
        assert e.seq_id is None or e.seq_id.isdigit()
    else:
        assert isinstance(req, Request)


# --- card data through the decoders --------------------------------------------------------

@pytest.mark.parametrize(("source", "text", "mode"), [
    ("track", f";{GIFT}=2912?", "020"),
    ("swipe", f"%B{GIFT}^HOLDER/A^2912101?;{GIFT}=2912101?\r", "020"),
    ("barcode", GIFT, "030"),
    ("barcode", f"tillgate:card/{GIFT}", "030"),
    ("barcode", f"https://cards.example/c?card={GIFT}", "030"),
])
def test_card_from_track_swipe_or_barcode(source, text, mode):
    req = parse(id="10", op="balance", **BASE, **{source: text})
    assert (req.card, req.entry_mode) == (GIFT, mode)


def test_card_key_wins_over_track():
    req = parse(id="10", op="balance", card=GIFT, track=";6039530000000000014=2912?", **BASE)
    assert req.card == GIFT


def test_undecodable_track_is_a_format_error():
    with pytest.raises(TglFormatError, match="track") as err:
        parse(id="11", op="balance", track=";E?", **BASE)
    assert err.value.seq_id == "11"


# --- responses -----------------------------------------------------------------------------


def test_response_bytes():
    result = Result(code="00", amount=799, balance=1701, auth_id="A1B2C3")
    assert format_response("42", result) == (
        b"TGL1\x1cR\x1cid=42\x1crc=00\x1cauth=A1B2C3\x1camt=799\x1cbal=1701")


def test_response_with_points_tier_message():
    result = Result(code="00", points=130, tier="GOLD", message="Thank you")
    assert parse_response(format_response("7", result)) == {
        "id": "7", "rc": "00", "pts": "130", "tier": "GOLD", "msg": "Thank you"}


def test_format_error_response_without_id():
    assert format_response(None, Result(code="30")) == b"TGL1\x1cR\x1crc=30"


def test_message_is_cleaned_and_cut():
    out = parse_response(format_response("1", Result(code="05", message="caf\xe9\x1c" + "x" * 60)))
    assert out["msg"] == "caf??" + "x" * 35


def test_only_swipe_may_carry_the_readers_trailing_cr():
    with pytest.raises(TglFormatError, match="track: not printable"):
        parse(id="12", op="balance", track=f";{GIFT}=2912?\r", **BASE)
    with pytest.raises(TglFormatError, match="swipe: not printable"):
        parse(id="12", op="balance", swipe=f";{GIFT}\r=2912?", **BASE)

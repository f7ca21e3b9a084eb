"""protocols.isomap and protocols.field63: ISO messages <-> Request/Result (HOST-SPEC 2)."""

from __future__ import annotations

import pytest

from protocols import field63, isocodec
from protocols.isomap import (
    FINANCIAL_CODES,
    IsoFormatError,
    clear_pin,
    format_error_response,
    message_to_request,
    response_mti,
    result_to_response,
)
from protocols.isospec import SPEC_ASCII, SPEC_BINARY_BITMAP
from protocols.model import Op, Result, iso_request_key

PAN = "6039530000000000018"
BASE = {
    "t": "0200", "2": PAN, "3": "006000", "4": "000000001500", "7": "1124030000",
    "11": "000123", "12": "030000", "13": "1124", "22": "021", "37": "123456789012",
    "41": "TILL0001", "42": "STORE0000000001", "49": "840",
}


def msg(**changes: str | None) -> dict[str, str]:
    """BASE with fields replaced (f3="...") or removed (f2=None), through a real encode/decode."""
    doc = dict(BASE)
    for name, value in changes.items():
        key = name[1:] if name.startswith("f") else name
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return isocodec.decode(isocodec.encode(doc, SPEC_ASCII), SPEC_ASCII)


def pin_block(pin: str, pan: str) -> str:
    pin_field = int(f"0{len(pin):X}{pin}".ljust(16, "F"), 16)
    pan_field = int("0000" + pan[:-1][-12:], 16)
    return f"{pin_field ^ pan_field:016X}"


def format_error(fields, **kw) -> IsoFormatError:
    with pytest.raises(IsoFormatError) as info:
        message_to_request(fields, **kw)
    return info.value


# --- processing codes ------------------------------------------------------------------------


@pytest.mark.parametrize("code, op", sorted(FINANCIAL_CODES.items()))
def test_financial_codes(code, op):
    extra = {"f103": "6039530000000000026"} if op is Op.TRANSFER else {}
    request = message_to_request(msg(f3=code, **extra), source="10.0.0.1:5000")
    assert request.op is op
    assert request.card == PAN
    assert request.amount == 1500
    assert request.currency == "840"
    assert request.rrn == "123456789012"
    assert request.entry_mode == "021"
    assert request.source == "10.0.0.1:5000"
    assert request.channel == "iso"
    assert request.key == iso_request_key("0200", "TILL0001", "STORE0000000001", "000123",
                                          "1124030000")
    assert not request.advice and not request.repeat


@pytest.mark.parametrize("code, op", [("900060", Op.PREVALIDATE), ("316000", Op.BALANCE),
                                      ("319000", Op.POINTS_BALANCE)])
def test_authorisation_codes(code, op):
    assert message_to_request(msg(t="0100", f3=code)).op is op


@pytest.mark.parametrize("mti, code", [("0100", "006000"), ("0200", "999999"),
                                       ("0200", "310000")])
def test_undefined_processing_code_is_invalid_transaction(mti, code):
    error = format_error(msg(t=mti, f3=code))
    assert (error.code, error.field) == ("12", "3")


def test_amount_optional_where_the_operation_has_none():
    for code in ("316000", "319000", "616000"):
        assert message_to_request(msg(f3=code, f4=None)).amount == 0


@pytest.mark.parametrize("code", ["006000", "900060", "210060", "200060", "000090", "210090",
                                  "200090", "930060", "009000"])
def test_amount_mandatory(code):
    assert format_error(msg(f3=code, f4=None)).field == "4"


def test_redeem_points_by_reward_needs_no_amount():
    request = message_to_request(msg(f3="009000", f4=None, f63="RW006COFFEE"))
    assert (request.op, request.reward, request.amount) == (Op.REDEEM_POINTS, "COFFEE", 0)


def test_advice():
    request = message_to_request(msg(t="0220"))
    assert request.advice and not request.repeat
    assert request.key == message_to_request(msg()).key  # same class as its 0200


# --- voids and reversals ----------------------------------------------------------------------

ORIGINAL = "0200" + "000100" + "1124025959" + "0" * 22


def test_void():
    request = message_to_request(msg(f3="026000", f90=ORIGINAL))
    assert request.op is Op.VOID
    assert request.original_key == iso_request_key("0200", "TILL0001", "STORE0000000001",
                                                   "000100", "1124025959")


@pytest.mark.parametrize("mti, advice, repeat", [("0400", False, False), ("0401", False, True),
                                                 ("0420", True, False), ("0421", True, True)])
def test_reversals(mti, advice, repeat):
    request = message_to_request(msg(t=mti, f90=ORIGINAL))
    assert request.op is Op.REVERSAL
    assert request.original_op is Op.REDEEM
    assert (request.advice, request.repeat) == (advice, repeat)
    assert request.original_key == iso_request_key("0200", "TILL0001", "STORE0000000001",
                                                   "000100", "1124025959")
    assert request.key.startswith("I4:")


def test_reversal_of_an_authorisation_and_of_a_void():
    original = "0100" + ORIGINAL[4:]
    assert message_to_request(msg(t="0400", f3="316000", f90=original)).original_op is Op.BALANCE
    assert message_to_request(msg(t="0400", f3="026000", f90=ORIGINAL)).original_op is Op.VOID


@pytest.mark.parametrize("changes", [{"f90": None}, {"f90": "0200ABCDEF" + "0" * 32}])
def test_void_and_reversal_need_field_90(changes):
    assert format_error(msg(f3="026000", **changes)).field == "90"
    assert format_error(msg(t="0400", **changes)).field == "90"


# --- mandatory fields and cards ----------------------------------------------------------------


@pytest.mark.parametrize("key", ["3", "7", "11", "41", "42"])
def test_mandatory_fields(key):
    error = format_error(msg(**{f"f{key}": None}))
    assert (error.code, error.field) == ("30", key)


def test_no_card_at_all():
    assert format_error(msg(f2=None)).field == "2"


@pytest.mark.parametrize("pan", ["12345", "60395300000000000181", "60395300000A0018"])
def test_bad_pan(pan):
    assert format_error(dict(msg(), **{"2": pan})).field == "2"


def test_card_from_track2_track1_and_barcode():
    assert message_to_request(msg(f2=None, f35=f"{PAN}=29121010000000000")).card == PAN
    track1 = f"B{PAN}^HOLDER/CARD^2912101000000000000"
    assert message_to_request(msg(f2=None, f45=track1)).card == PAN
    assert message_to_request(msg(f2=None, f63=f"BC019{PAN}")).card == PAN


def test_unreadable_track_is_a_format_error():
    assert format_error(msg(f2=None, f35="=2912")).field == "35"
    assert format_error(msg(f2=None, f45="%E?")).field == "45"


def test_transfer_needs_a_target():
    assert format_error(msg(f3="486060")).field == "103"
    assert format_error(msg(f3="486060", f103="12AB")).field == "103"
    request = message_to_request(msg(f3="486060", f103="6039530000000000026"))
    assert request.target_card == "6039530000000000026"


def test_unknown_mti_is_a_format_error():
    for mti in ("0300", "0210", "0201"):
        assert format_error(msg(t=mti)).field == "t"


def test_numeric_fields_checked_even_without_the_codec():
    fields = dict(msg())
    fields["4"] = "00000000A500"
    assert format_error(fields).field == "4"


# --- field 63 ----------------------------------------------------------------------------------


def test_tags():
    request = message_to_request(msg(f63="IN006INV001OP003007PA0011RW006COFFEEUP01207123456789"
                                          "0SN004S123ZZ002hiQQ000"))
    assert request.invoice == "INV001"
    assert request.operator == "007"
    assert request.partial_ok is True
    assert request.reward == "COFFEE"
    assert request.upc == "071234567890"
    assert request.serial == "S123"
    assert request.extras == {"63.ZZ": "hi", "63.QQ": ""}


@pytest.mark.parametrize("text", ["IN", "IN00", "IN0a5abc", "in003abc", "IN005abc", "PA0012",
                                  "IN003abcIN003abc", "IN000", "IN021" + "x" * 21])
def test_malformed_tags(text):
    error = format_error(msg(f63=text))
    assert error.code == "30"
    assert error.field.startswith("63")


def test_field63_round_trip():
    tags = {"PT": "120", "TR": "Gold", "EX": "20291231", "MS": ""}
    text = field63.format(tags)
    assert text == "PT003120TR004GoldEX00820291231MS000"
    assert field63.parse(text) == (tags, {})
    with pytest.raises(ValueError):
        field63.format({"p1": "x"})
    with pytest.raises(ValueError):
        field63.format({"MS": "x" * 1000})


# --- PIN blocks --------------------------------------------------------------------------------


def test_clear_pin_block():
    block = pin_block("1234", PAN)
    request = message_to_request(msg(f52=block))
    assert (request.pin, request.pin_block) == ("1234", block)
    assert clear_pin(pin_block("123456789012", PAN), PAN) == "123456789012"
    assert clear_pin(block.lower(), PAN) == "1234"


def test_pin_block_not_decoded_when_a_key_is_configured():
    request = message_to_request(msg(f52=pin_block("1234", PAN)), clear_pin_blocks=False)
    assert request.pin is None and request.pin_block


def test_pin_block_for_another_card_is_no_pin():
    block = pin_block("1234", "6039530000000000026")
    assert message_to_request(msg(f52=block)).pin is None
    assert clear_pin("FFFFFFFFFFFFFFFF", PAN) is None


@pytest.mark.parametrize("block", ["123456789012345G", "+123456789012345", "0x23456789012345"])
def test_malformed_pin_block(block):
    assert format_error(msg(f52=block)).field == "52"


# --- network management ------------------------------------------------------------------------

SIGNON = {"t": "0800", "7": "1124030000", "11": "000001", "41": "TILL0001", "70": "001"}


@pytest.mark.parametrize("code, op", [("001", Op.SIGNON), ("002", Op.SIGNOFF), ("301", Op.ECHO)])
def test_network_management(code, op):
    fields = dict(SIGNON, **{"70": code})
    request = message_to_request(fields)
    assert request.op is op and request.terminal == "TILL0001"
    response = result_to_response(fields, Result("00"))
    assert response == {"t": "0810", "7": "1124030000", "11": "000001", "41": "TILL0001",
                        "70": code, "39": "00"}
    isocodec.encode(response, SPEC_ASCII)


def test_network_errors():
    assert format_error(dict(SIGNON, **{"70": "161"})).code == "12"
    assert format_error({k: v for k, v in SIGNON.items() if k != "70"}).field == "70"


# --- responses ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mti, expected", [("0100", "0110"), ("0200", "0210"), ("0220", "0230"),
                                           ("0400", "0410"), ("0401", "0410"), ("0420", "0430"),
                                           ("0421", "0430"), ("0800", "0810")])
def test_response_mti(mti, expected):
    assert response_mti(mti) == expected


@pytest.mark.parametrize("mti", ["0210", "020", "02A0", "0230"])
def test_no_response_mti(mti):
    with pytest.raises(ValueError):
        response_mti(mti)


def test_approved_sale_response():
    fields = msg(f52=pin_block("1234", PAN), f35=f"{PAN}=2912", f63="IN003abc")
    result = Result("00", balance=8500, currency="840", auth_id="A1B2C3", points=12,
                    tier="Gold", expiry="20291231", message="Thank you")
    response = result_to_response(fields, result)
    assert response == {
        "t": "0210", "2": "603953*********0018", "3": "006000", "4": "000000001500",
        "7": "1124030000", "11": "000123", "12": "030000", "13": "1124",
        "37": "123456789012", "38": "A1B2C3", "39": "00", "41": "TILL0001",
        "42": "STORE0000000001", "49": "840",
        "54": "6002840C000000008500" "9002999C000000000012",
        "63": "PT00212TR004GoldEX00820291231MS009Thank you",
    }
    for spec in (SPEC_ASCII, SPEC_BINARY_BITMAP):
        assert isocodec.decode(isocodec.encode(response, spec), spec)["39"] == "00"


def test_pan_absent_when_not_masked():
    assert "2" not in result_to_response(msg(), Result("00", auth_id="1"), mask_pan=False)


def test_partial_approval_sets_the_approved_amount():
    response = result_to_response(msg(), Result("10", amount=700, balance=0, currency="840",
                                                auth_id="7"))
    assert (response["4"], response["38"], response["39"]) == ("000000000700", "000007", "10")
    assert response["54"] == "6002840C000000000000"


def test_decline_has_no_auth_id_and_keeps_balance():
    response = result_to_response(msg(), Result("51", balance=300, currency="840"))
    assert "38" not in response and response["39"] == "51"
    assert response["54"] == "6002840C000000000300"


def test_points_only_and_negative_balance():
    response = result_to_response(msg(f3="000090", f49=None), Result("00", points=55, balance=-5))
    assert response["54"] == "9002999C000000000055"  # no currency known: no money entry
    assert response["38"] == "000123"  # no auth id from the handler: the STAN
    response = result_to_response(msg(), Result("00", balance=-5, currency="840", auth_id="1"))
    assert response["54"] == "6002840D000000000005"


def test_receipt_message_is_printable_and_short():
    response = result_to_response(msg(), Result("05", message="Désolé\n" + "x" * 50))
    tags, _ = field63.parse(response["63"])
    assert tags["MS"] == "D?sol??" + "x" * 33


# --- error responses ---------------------------------------------------------------------------


def test_format_error_response_echoes_what_it_can():
    error = format_error(msg(f3="026000"))  # no field 90
    response = format_error_response(error.fields_to_echo, code=error.code)
    assert response["t"] == "0210" and response["39"] == "30"
    assert response["2"] == "603953*********0018"
    assert response["11"] == "000123" and response["41"] == "TILL0001"
    isocodec.encode(response, SPEC_ASCII)


def test_format_error_response_from_a_half_decoded_message():
    data = isocodec.encode(BASE, SPEC_ASCII)
    with pytest.raises(isocodec.IsoDecodeError) as info:
        isocodec.decode(data[:-10], SPEC_ASCII)
    response = format_error_response(info.value.fields_to_echo)
    assert response is not None
    assert response["39"] == "30" and "42" not in response and "49" not in response
    isocodec.encode(response, SPEC_ASCII)


@pytest.mark.parametrize("fields", [{"t": "0200"}, {"t": "0210", "11": "000001"},
                                    {"t": "02x0", "11": "000001"}, {"t": "0200", "11": "00001"},
                                    {}])
def test_format_error_response_needs_mti_and_stan(fields):
    assert format_error_response(fields) is None


def test_network_format_error_response():
    response = format_error_response(dict(SIGNON, **{"70": "99"}))
    assert response == {"t": "0810", "7": "1124030000", "11": "000001", "41": "TILL0001",
                        "39": "30"}

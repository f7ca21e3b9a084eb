"""Card-data decoders against the shared vectors and the documented rules, on both twins.

The compiled twin is required (its absence fails these tests) unless TILLGATE_NO_EXTENSIONS=1.
tests/data/carddata.json is a copy of /work/shared/vectors/carddata.json (HOST-SPEC 4).
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
from pathlib import Path

import pytest

from protocols import _carddata_py, carddata
from protocols.carddata_errors import (
    CardDataError,
    CharacterError,
    CheckDigitError,
    FormatError,
    LengthError,
    LRCError,
    UnreadableError,
)

VECTORS = json.loads((Path(__file__).parent / "data" / "carddata.json").read_text())["cases"]
IMPLEMENTATIONS = ["python"] if os.environ.get("TILLGATE_NO_EXTENSIONS") == "1" else ["python", "c"]


@pytest.fixture(params=IMPLEMENTATIONS)
def cd(request):
    if request.param == "python":
        return _carddata_py
    return importlib.import_module("protocols._carddata_c")


def _run(cd, kind: str, text: str):
    if kind == "luhn":
        return {"valid": cd.luhn_valid(text)}
    return getattr(cd, f"decode_{kind}")(text)


@pytest.mark.parametrize("case", VECTORS, ids=[case["id"] for case in VECTORS])
def test_vector(cd, case):
    if "error" in case:
        with pytest.raises(CardDataError) as caught:
            _run(cd, case["kind"], case["input"])
        assert caught.value.kind == case["error"]
        assert 0 <= caught.value.position <= len(case["input"])
    else:
        result = _run(cd, case["kind"], case["input"])
        for field, value in case["expect"].items():
            assert result[field] == value, field


def test_facade_names_its_implementation():
    want = "python" if os.environ.get("TILLGATE_NO_EXTENSIONS") == "1" else "c"
    assert carddata.IMPLEMENTATION == want
    assert carddata.luhn_valid("79927398713")


# --- tracks ---------------------------------------------------------------------------------------

T2 = ";6039531234567890123=49121010000000000?"
T1 = "%B6039531234567890123^DOE/JANE^4912101000000000000?"


def test_track2_absent_expiry_and_service_code(cd):
    assert cd.decode_track2(";6039531234567890123==101123?") == {
        "pan": "6039531234567890123", "expiry": None, "service_code": "101",
        "discretionary": "123"}
    assert cd.decode_track2("6039531234567890123===99\r\n")["discretionary"] == "99"


def test_track2_refusals_name_the_position(cd):
    cases = [
        (";60395312345678901234=4912?", LengthError, 20),  # 20-digit PAN
        (";=4912?", FormatError, 1),  # no PAN
        (";6039531234567890123=49?", FormatError, 23),  # expiry truncated
        (";6039531234567890123=4912?<<", FormatError, 27),  # two characters after `?`
        (";6039531234567890123=4912?A", LRCError, 26),  # LRC outside the 4-bit set
        (";60395312 4567890123=4912?", CharacterError, 9),
    ]
    for text, error, position in cases:
        with pytest.raises(error) as caught:
            cd.decode_track2(text)
        assert caught.value.position == position, text


def test_track1_fields_and_limits(cd):
    assert cd.decode_track1("B12345678^AB^^^")["expiry"] is None
    assert cd.decode_track1("%BLOYALTY42^A B^?")["pan"] == "LOYALTY42"  # alphanumeric loyalty id
    for text, error, position in [
        ("%B1234 5678^DOE/JANE^4912?", CharacterError, 6),
        ("%B12345678^" + "N" * 27 + "^4912?", LengthError, 37),
        ("%B12345678^N^4912?", LengthError, 11),
        ("%B12345678^DOE/JANE?", FormatError, 19),
        ("%B12345678DOE?", FormatError, 13),
        ("%b12345678^DOE/JANE^4912?", CharacterError, 1),  # lower case is outside the 6-bit set
        ("%B12345678^DOE/JANE^49A2?", FormatError, 22),
        (T1 + "=", LRCError, len(T1)),
    ]:
        with pytest.raises(error) as caught:
            cd.decode_track1(text)
        assert caught.value.position == position, text


def test_track3_fields(cd):
    assert cd.decode_track3("+016039531234567890123==1?") == {
        "pan": "6039531234567890123", "format_code": "01", "country_code": None,
        "discretionary": "1"}
    with pytest.raises(FormatError):
        cd.decode_track3(";0?")


def test_lrc_rule_matches_the_documented_computation(cd):
    # XOR of (ASCII - 0x30) over `;`, data and `?`, printed back as 0x30 + value.
    lrc = 0
    for c in T2:
        lrc ^= ord(c) - 0x30
    assert cd.decode_track2(T2 + chr(0x30 + lrc))["pan"] == "6039531234567890123"
    lrc = 0
    for c in T1:
        lrc ^= ord(c) - 0x20
    assert cd.decode_track1(T1 + chr(0x20 + lrc))["name"] == "DOE/JANE"


def test_swipe_with_vendor_prefix_three_tracks_and_lrc(cd):
    t3 = ";016039531234567890123=724000?"
    swipe = "!STCARD A " + T1 + T2 + "<" + t3 + "\r"
    result = cd.decode_swipe(swipe)
    assert result["source"] == "track1"
    assert set(result["tracks"]) == {"track1", "track2", "track3"}
    assert result["tracks"]["track3"]["country_code"] == "724"


def test_swipe_takes_first_good_track_and_reports_the_first_fault(cd):
    bad_t1 = "%A6039531234567890123^DOE/JANE^4912?"
    assert cd.decode_swipe(bad_t1 + T2 + "\r")["source"] == "track2"
    with pytest.raises(FormatError) as caught:
        cd.decode_swipe("xx" + bad_t1 + ";E?")
    assert caught.value.position == 3
    with pytest.raises(UnreadableError):
        cd.decode_swipe("%E?;E?\r")
    with pytest.raises(FormatError):
        cd.decode_swipe("6039531234567890123")


# --- barcodes -------------------------------------------------------------------------------------


def test_retail_barcodes(cd):
    assert cd.decode_barcode("96385074")["symbology"] == "ean-8"
    assert cd.decode_barcode("]E04006381333931")["symbology"] == "ean-13"
    with pytest.raises(CheckDigitError) as caught:
        cd.decode_barcode("96385075")
    assert caught.value.position == 7


def test_code128_text(cd):
    assert cd.decode_barcode("GC12345678")["pan"] == "GC12345678"
    assert cd.decode_barcode("HELLO WORLD") == {
        "symbology": "code128", "data": "HELLO WORLD", "ai": None, "pan": None}
    with pytest.raises(CharacterError) as caught:
        cd.decode_barcode("ABC\u00e9")
    assert caught.value.position == 3


def test_gs1_forms_and_refusals(cd):
    for prefix in ("]C1", "]Q3", "]d2", "\x1d"):
        result = cd.decode_barcode(prefix + "0109501101530003" + "17491231" + "10LOT7")
        assert result["ai"] == {"01": "09501101530003", "17": "491231", "10": "LOT7"}
        assert result["data"] == "(01)09501101530003(17)491231(10)LOT7"
    for text, error, position in [
        ("]C1", FormatError, 3),
        ("]C1" + "99X" + "\x1d" + "9", FormatError, 7),  # (99) fine, then "9" is no AI
        ("]C1010950110153000", LengthError, 18),
        ("]C1" + "21" + "A" * 21, LengthError, 25),
        ("]C121AB\x1d21CD", FormatError, 8),
        ("]C110A~B", CharacterError, 6),
        ("]C1" + "1112345X", CharacterError, 10),
        ("]C", FormatError, 0),
    ]:
        with pytest.raises(error) as caught:
            cd.decode_barcode(text)
        assert caught.value.position == position, text


def test_gs1_card_number_choice(cd):
    gsrn = "12345678901234567"
    gsrn += cd.gs1_check_digit(gsrn)
    # (8018) GSRN is 18 digits: a card number; (8004) wins over it, (21) comes last.
    assert cd.decode_barcode("]C1" + "8018" + gsrn + "21SERIAL0001")["pan"] == gsrn
    assert cd.decode_barcode("]C1" + "21SERIAL0001\x1d8004GIAI12345")["pan"] == "GIAI12345"
    assert cd.decode_barcode("]C1" + "21SHORT")["pan"] is None
    with pytest.raises(CheckDigitError):
        cd.decode_barcode("]C1" + "8018" + gsrn[:-1] + str((int(gsrn[-1]) + 1) % 10))


def test_qr_payloads(cd):
    assert cd.decode_barcode("HTTPS://X.EXAMPLE/C/ABCD1234/")["pan"] == "ABCD1234"
    assert cd.decode_barcode("https://x.example/lookup?a=1&card=77123456789#top")["pan"] == (
        "77123456789")
    for text, error in [
        ("tillgate:cards/6039531234567890123", FormatError),
        ("tillgate:card/603953", LengthError),
        ("https://x.example/", FormatError),
        ("https:///6039531234567890123", FormatError),
        ("https://x.example/c/6039-5312-3456", CharacterError),
    ]:
        with pytest.raises(error):
            cd.decode_barcode(text)


# --- card_number, check digits, bulk --------------------------------------------------------------


def test_card_number_accepts_every_form(cd):
    pan = "6039531234567890123"
    for text in (pan, pan + "\r", T2, T1, T2[1:-1], T1[1:-1], "%E?" + T2 + "\r",
                 "tillgate:card/" + pan, "https://c.example/c/" + pan, "]C18004" + pan):
        assert cd.card_number(text) == pan, text
    with pytest.raises(FormatError):
        cd.card_number("036000291452 ")  # a product code with a stray space: no card number
    with pytest.raises(LengthError):
        cd.card_number("1" * 20)
    with pytest.raises(FormatError):
        cd.card_number("")


def test_check_digits(cd):
    assert cd.luhn_check_digit("7992739871") == "3"
    assert cd.gs1_check_digit("03600029145") == "2"
    assert not cd.luhn_valid("79927398713x")
    assert not cd.luhn_valid("")
    with pytest.raises(CharacterError) as caught:
        cd.luhn_check_digit("12a4")
    assert caught.value.position == 2


def test_decode_many_returns_errors_in_place(cd):
    results = cd.decode_many("track2", [T2, ";12A?", T2[1:-1]])
    assert results[0] == results[2] == cd.decode_track2(T2)
    assert isinstance(results[1], CharacterError) and results[1].position == 3
    assert cd.decode_many("card", [T1, "tillgate:card/12345678"]) == [
        "6039531234567890123", "12345678"]
    with pytest.raises(ValueError):
        cd.decode_many("nope", [])


def test_non_text_is_a_type_error(cd):
    with pytest.raises(TypeError):
        cd.decode_track2(b";123?")
    with pytest.raises(TypeError):
        cd.card_number(None)


def test_errors_carry_kind_position_and_pickle():
    error = LRCError(5, "LRC mismatch")
    assert (error.kind, error.position, str(error)) == ("lrc", 5, "LRC mismatch (at position 5)")
    assert pickle.loads(pickle.dumps(error)) == error
    assert CardDataError("syntax", 1, "x").kind == "syntax"


# --- generation (pure module and facade only: not a hot path) -------------------------------------


def test_generated_numbers_obey_the_program():
    for _ in range(50):
        number = carddata.generate_card_number("603953", 19, True)
        assert len(number) == 19 and number.startswith("603953")
        assert carddata.luhn_valid(number)
    numbers = {carddata.generate_card_number("77", 10, False) for _ in range(50)}
    assert len(numbers) == 50 and all(len(n) == 10 for n in numbers)
    ranged = carddata.generate_card_number("", 12, True, "500000000000", "500000099999")
    assert "500000000000" <= ranged <= "500000099999" and carddata.luhn_valid(ranged)
    assert carddata.generate_card_number("GC", 12, False, alphanumeric=True).isalnum()
    pin = carddata.generate_pin(6)
    assert len(pin) == 6 and pin.isdigit()


def test_generation_refuses_impossible_programs():
    for args in [("6", 7, True), ("6", 20, True), ("12345678", 8, True), ("A", 10, False),
                 ("", 10, False, "1", None), ("9", 10, False, "1000000000", "1000000099")]:
        with pytest.raises(ValueError):
            carddata.generate_card_number(*args)
    with pytest.raises(ValueError):
        carddata.generate_pin(3)

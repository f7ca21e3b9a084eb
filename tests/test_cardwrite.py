"""The card-data encoders (protocols/cardwrite.py) against the decoders of issue 5.

Every track and barcode payload written is read back by both twins of protocols.carddata to the
same number and fields (thousands of generated cards of numeric and alphanumeric programs, with
and without expiry, service code, discretionary data and LRC); the shared vectors that describe
encodable data are reproduced character for character.
"""

from __future__ import annotations

import importlib
import json
import os
import random
from pathlib import Path

import pytest

from protocols import _carddata_py, cardwrite
from protocols._carddata_py import generate_card_number, luhn_valid

VECTORS = Path("/work/shared/vectors/carddata.json")
TWINS = [pytest.param(_carddata_py, id="python")]
if os.environ.get("TILLGATE_NO_EXTENSIONS") != "1":
    TWINS.append(pytest.param(importlib.import_module("protocols._carddata_c"), id="c"))

# (prefix, length, luhn, alphanumeric): the shapes of programs that draw their numbers.
PROGRAMS = [
    ("603953", 19, True, False),
    ("603954", 16, True, False),
    ("77", 10, False, False),
    ("9", 8, False, False),
    ("", 19, False, True),
    ("L", 10, False, True),
    ("", 8, False, True),
]
CARDS_PER_PROGRAM = 700  # 4,900 cards, each through every track and barcode, in each twin


def _vectors(kind: str) -> list[dict]:
    if not VECTORS.exists():
        pytest.skip("no shared vectors on this machine")
    cases = json.loads(VECTORS.read_text())["cases"]
    return [case for case in cases if case["kind"] == kind and "expect" in case]


def _with_lrc(text: str) -> bool:
    return not text.endswith("?")


@pytest.mark.parametrize("twin", TWINS)
def test_track_vectors_are_reproduced(twin) -> None:
    """Each track vector written with sentinels is written again, identically, from its fields
    (the decoder's reading of it, checked against the vector's expectation first)."""
    reproduced = 0
    for kind, encode in (("track1", _encode1), ("track2", _encode2), ("track3", _encode3)):
        for case in _vectors(kind):
            text = case["input"]
            fields = getattr(twin, f"decode_{kind}")(text)
            for key, want in case["expect"].items():
                assert fields[key] == want, (case["id"], key)
            if text[0] not in "%;":
                continue  # a bare track: the encoders always write sentinels
            assert encode(fields, _with_lrc(text)) == text, case["id"]
            reproduced += 1
    assert reproduced >= 5


def test_swipe_and_qr_vectors_are_reproduced() -> None:
    (swipe,) = [c for c in _vectors("swipe") if c["id"] == "swipe-both"]
    text = swipe["input"]
    t1 = _carddata_py.decode_track1(text[:text.index(";")])
    written = (cardwrite.encode_track1(t1["pan"], t1["name"], t1["expiry"], t1["service_code"],
                                       t1["discretionary"])
               + cardwrite.encode_track2(t1["pan"], t1["expiry"], t1["service_code"],
                                         "0000000000") + "\r")
    assert written == text
    (qr,) = [c for c in _vectors("barcode") if c["expect"].get("symbology") == "uri"]
    assert cardwrite.qr_payload(qr["expect"]["pan"]) == qr["input"]


def test_documented_lrc_examples() -> None:
    """docs/card-data.md: both examples have the LRC `<`."""
    assert cardwrite.encode_track2("6039531234567890123", "4912", "101", "0000000000",
                                   with_lrc=True)[-1] == "<"
    assert cardwrite.encode_track1("6039531234567890123", "DOE/JANE", "4912", "101",
                                   "000000000000", with_lrc=True)[-1] == "<"


def _encode1(f: dict, with_lrc: bool) -> str:
    return cardwrite.encode_track1(f["pan"], f["name"], f["expiry"], f["service_code"],
                                   f["discretionary"], with_lrc)


def _encode2(f: dict, with_lrc: bool) -> str:
    return cardwrite.encode_track2(f["pan"], f["expiry"], f["service_code"], f["discretionary"],
                                   with_lrc)


def _encode3(f: dict, with_lrc: bool) -> str:
    return cardwrite.encode_track3(f["pan"], f["country_code"], f["discretionary"],
                                   f["format_code"], with_lrc)


def _maybe(draw: random.Random, make) -> str | None:
    return make() if draw.random() < 0.6 else None


def _digits(draw: random.Random, n: int) -> str:
    return "".join(draw.choice("0123456789") for _ in range(n))


def _card(draw: random.Random, prefix: str, length: int, luhn: bool, alphanumeric: bool) -> dict:
    number = generate_card_number(prefix, length, luhn, alphanumeric=alphanumeric)
    names = ["GIFT CARD", "DOE/JANE", "LOYALTY 2026", "MR/A.B-C", "PRZ/LE ",
             "X" * cardwrite.NAME_MAX, "AB"]
    return {
        "pan": number,
        "name": draw.choice(names),
        "expiry": _maybe(draw, lambda: f"{draw.randrange(100):02d}{draw.randrange(1, 13):02d}"),
        "service_code": _maybe(draw, lambda: draw.choice(["101", "120", "201", "220", "000"])),
        "discretionary": _digits(draw, draw.randrange(0, 8)),
        "country_code": _maybe(draw, lambda: draw.choice(["840", "826", "724"])),
        "with_lrc": draw.random() < 0.5,
    }


@pytest.mark.parametrize("twin", TWINS)
@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: f"{p[0] or 'any'}-{p[1]}-{p[3]}")
def test_round_trip_of_generated_cards(twin, program) -> None:
    draw = random.Random(f"cardwrite-{program}")
    for _ in range(CARDS_PER_PROGRAM):
        card = _card(draw, *program)
        pan, lrc = card["pan"], card["with_lrc"]
        if program[2]:
            assert luhn_valid(pan)
        track1 = cardwrite.encode_track1(pan, card["name"], card["expiry"], card["service_code"],
                                         card["discretionary"], lrc)
        assert twin.decode_track1(track1) == {
            "pan": pan, "name": card["name"], "expiry": card["expiry"],
            "service_code": card["service_code"], "discretionary": card["discretionary"]}
        # A reader's swipe carries no LRC (an LRC of `;` or `+` would read as a start sentinel).
        swipe = cardwrite.encode_track1(pan, card["name"], card["expiry"], card["service_code"],
                                        card["discretionary"])
        if pan.isdigit():
            track2 = cardwrite.encode_track2(pan, card["expiry"], card["service_code"],
                                             card["discretionary"], lrc)
            assert twin.decode_track2(track2) == {
                "pan": pan, "expiry": card["expiry"], "service_code": card["service_code"],
                "discretionary": card["discretionary"]}
            track3 = cardwrite.encode_track3(pan, card["country_code"], card["discretionary"],
                                             with_lrc=lrc)
            assert twin.decode_track3(track3) == {
                "pan": pan, "format_code": "01", "country_code": card["country_code"],
                "discretionary": card["discretionary"]}
            swipe += (cardwrite.encode_track2(pan, card["expiry"], card["service_code"],
                                              card["discretionary"])
                      + cardwrite.encode_track3(pan, card["country_code"], card["discretionary"]))
        else:
            with pytest.raises(ValueError, match="track 2 holds card numbers of digits only"):
                cardwrite.encode_track2(pan)
            with pytest.raises(ValueError, match="track 3 holds card numbers of digits only"):
                cardwrite.encode_track3(pan)
        swiped = twin.decode_swipe(swipe + "\r")
        assert (swiped["pan"], swiped["source"]) == (pan, "track1")
        assert set(swiped["tracks"]) == ({"track1", "track2", "track3"} if pan.isdigit()
                                         else {"track1"})
        assert twin.card_number(track1) == pan
        assert twin.card_number(cardwrite.code128_payload(pan)) == pan
        qr = twin.decode_barcode(cardwrite.qr_payload(pan))
        assert (qr["symbology"], qr["pan"]) == ("uri", pan)
        if not (pan.isdigit() and len(pan) in (8, 12, 13)):  # product-code lengths: see docs
            code = twin.decode_barcode(cardwrite.code128_payload(pan))
            assert (code["symbology"], code["pan"]) == ("code128", pan)


@pytest.mark.parametrize("call, message", [
    (lambda: cardwrite.encode_track2("60395312A4567890"), "digits only"),
    (lambda: cardwrite.encode_track3("ABC12345"), "digits only"),
    (lambda: cardwrite.encode_track1("abc12345", "GIFT CARD"), "upper-case letters"),
    (lambda: cardwrite.encode_track1("12345678", "G"), "2 to 26 characters"),
    (lambda: cardwrite.encode_track1("12345678", "gift card"), "upper-case letters, digits"),
    (lambda: cardwrite.encode_track1("12345678", "GIFT^CARD"), r"other than % \^ \?"),
    (lambda: cardwrite.encode_track1("12345678", "GIFT CARD", "491"), "expiry"),
    (lambda: cardwrite.encode_track2("12345678", "4912", "10"), "service code"),
    (lambda: cardwrite.encode_track2("1" * 20), "at most 19"),
    (lambda: cardwrite.encode_track2("", "4912"), "no card number"),
    (lambda: cardwrite.encode_track2("1" * 19, "4912", "101", "1" * 11), "at most 37"),
    (lambda: cardwrite.encode_track1("1" * 19, "X" * 26, "4912", "101", "1" * 30), "at most 76"),
    (lambda: cardwrite.encode_track3("12345678", "84"), "country code"),
    (lambda: cardwrite.encode_track3("12345678", format_code="1"), "format code"),
    (lambda: cardwrite.qr_payload("1234567"), "8 to 19"),
    (lambda: cardwrite.code128_payload("12345678-1"), "8 to 19"),
])
def test_what_cannot_be_written_is_refused_clearly(call, message) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        call()
    assert "12345678" not in str(refused.value)  # never the number itself

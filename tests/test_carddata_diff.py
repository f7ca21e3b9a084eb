"""Differential and fuzz tests: the compiled twin answers exactly as the pure specification.

Every generated input, valid, mutated or arbitrary, goes through every decoder of both twins; the
outcomes (result, or refusal class + kind + position + message) must be equal, and nothing may raise
anything but a CardDataError. Skipped only when TILLGATE_NO_EXTENSIONS=1 (there is no twin then).
"""

from __future__ import annotations

import importlib
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import _carddata_py as py
from protocols.carddata_errors import CardDataError

if os.environ.get("TILLGATE_NO_EXTENSIONS") == "1":
    pytest.skip("no compiled twin with TILLGATE_NO_EXTENSIONS=1", allow_module_level=True)
c = importlib.import_module("protocols._carddata_c")

FUNCTIONS = ["decode_track1", "decode_track2", "decode_track3", "decode_swipe", "decode_barcode",
             "card_number", "luhn_valid", "luhn_check_digit", "gs1_check_digit"]
SETTINGS = settings(max_examples=250, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Characters that matter to some decoder, plus non-ASCII of every str width.
SPECIAL = "%;+?^=E\x1d\r\n/:]&#Bbcard 0123456789AZaz~\x00\x7f\u00e9\u0100\u20ac\U0001f600"


def outcome(module, name: str, text):
    try:
        return ("ok", getattr(module, name)(text))
    except CardDataError as error:
        assert 0 <= error.position <= len(text), (name, error)
        return ("refused", type(error), error.kind, error.position, error.message)


def assert_same(text: str) -> None:
    for name in FUNCTIONS:
        assert outcome(c, name, text) == outcome(py, name, text), (name, text)


# --- generators of (mostly) valid card data -------------------------------------------------------


def digits(low: int, high: int):
    return st.text(alphabet="0123456789", min_size=low, max_size=high)


def lrc_char(text: str, offset: int, bits: int) -> str:
    lrc = 0
    for ch in text:
        lrc ^= (ord(ch) - offset) & ((1 << bits) - 1)
    return chr(offset + lrc)


@st.composite
def framed(draw, body: str, start: str, offset: int, bits: int) -> str:
    """Optional sentinels, optional (right or wrong) LRC."""
    if not draw(st.booleans()):
        return body if draw(st.booleans()) else start + body
    text = start + body + "?"
    choice = draw(st.sampled_from(["none", "right", "wrong"]))
    if choice == "right":
        text += lrc_char(text, offset, bits)
    elif choice == "wrong":
        text += draw(st.characters(min_codepoint=32, max_codepoint=127))
    return text


@st.composite
def track2(draw) -> str:
    body = draw(digits(0, 21))
    if draw(st.booleans()):
        body += "=" + draw(st.sampled_from(["=", ""]) | digits(2, 4))
        body += draw(st.sampled_from(["=", ""]) | digits(3, 3)) + draw(digits(0, 20))
    return draw(framed(body, ";", 0x30, 4))


@st.composite
def track3(draw) -> str:
    body = draw(digits(0, 3)) + draw(digits(0, 20))
    if draw(st.booleans()):
        body += "=" + draw(st.sampled_from(["=", ""]) | digits(3, 3)) + draw(digits(0, 80))
    return draw(framed(body, draw(st.sampled_from(";+")), 0x30, 4))


@st.composite
def track1(draw) -> str:
    pan = draw(digits(1, 19) | st.text(alphabet="0123456789ABZ ", min_size=0, max_size=21))
    name = draw(st.text(alphabet="ABCDEFGHIJ /.", min_size=1, max_size=28))
    body = draw(st.sampled_from("BBBBA")) + pan + "^" + name + draw(st.sampled_from("^^^^-"))
    if draw(st.booleans()):
        body += draw(st.sampled_from(["^", ""]) | digits(3, 4))
        body += draw(st.sampled_from(["^", ""]) | digits(3, 3))
        body += draw(st.text(alphabet="0123456789 ABC", max_size=30))
    return draw(framed(body, "%", 0x20, 6))


@st.composite
def swipe(draw) -> str:
    prefix = draw(st.sampled_from(["", "", "!STCARD A ", "x"]))
    parts = draw(st.lists(track1() | track2() | track3()
                          | st.sampled_from(["%E?", ";E?", "+E?"]), min_size=0, max_size=3))
    text = prefix
    for part in parts:
        sentinel = "%" if "^" in part else ";"
        text += part if part[:1] in ("%", ";", "+") else sentinel + part + "?"
    return text + draw(st.sampled_from(["", "\r", "\r\n"]))


@st.composite
def retail(draw) -> str:
    body = draw(st.sampled_from([7, 11, 12]).flatmap(lambda n: digits(n, n)))
    check = py.gs1_check_digit(body) if draw(st.booleans()) else draw(digits(1, 1))
    return draw(st.sampled_from(["", "]E0"])) + body + check


@st.composite
def gs1(draw) -> str:
    ais = draw(st.lists(st.sampled_from(sorted(py.GS1_AI)), min_size=1, max_size=4))
    text = draw(st.sampled_from(["]C1", "]Q3", "]d2", "]e0", "\x1d", ""]))
    for n, ai in enumerate(ais):
        low, high, numeric, check = py.GS1_AI[ai]
        size = draw(st.integers(max(0, low - 1), high + 1))
        if numeric:
            value = draw(digits(size, size))
            if check and size == high and draw(st.booleans()):
                value = value[:-1] + py.gs1_check_digit(value[:-1])
        else:
            value = draw(st.text(alphabet=sorted(py.GS1_CSET82), min_size=size, max_size=size))
        text += ai + value
        if n < len(ais) - 1 and (low != high or draw(st.booleans())):
            text += "\x1d"
    return text


@st.composite
def qr(draw) -> str:
    number = draw(st.text(alphabet="0123456789ABCxyz-", min_size=0, max_size=22))
    form = draw(st.sampled_from(["uri", "path", "query", "bare"]))
    if form == "uri":
        return "tillgate:" + draw(st.sampled_from(["card/", "cards/", ""])) + number
    host = draw(st.sampled_from(["https://cards.example.com", "HTTPS://X.EXAMPLE", "https://"]))
    if form == "path":
        return host + draw(st.sampled_from(["/c/", "/", "//", ""])) + number + draw(
            st.sampled_from(["", "/", "#x", "?v=1"]))
    if form == "query":
        return host + "/lookup?" + draw(st.sampled_from(["", "a=1&", "&"])) + "card=" + number
    return number


card_data = track1() | track2() | track3() | swipe() | retail() | gs1() | qr()


@st.composite
def mutated(draw) -> str:
    """Valid-looking card data with a few characters inserted, replaced or deleted."""
    text = draw(card_data)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "replace", "delete"]))
        ch = draw(st.sampled_from(SPECIAL))
        if op == "insert":
            text = text[:at] + ch + text[at:]
        elif op == "replace":
            text = text[:at] + ch + text[at + 1:]
        else:
            text = text[:at] + text[at + 1:]
    return text


# --- the tests ------------------------------------------------------------------------------------


@SETTINGS
@given(card_data)
def test_twins_agree_on_generated_card_data(text):
    assert_same(text)


@SETTINGS
@given(mutated())
def test_twins_agree_on_mutated_card_data(text):
    assert_same(text)


@SETTINGS
@given(st.text(alphabet=SPECIAL, max_size=60) | st.text(max_size=60))
def test_twins_agree_on_arbitrary_text(text):
    assert_same(text)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["%", ";", "?", "1", "\x1d", "^", "=", "]C1", "https://a/"]),
       st.integers(1000, 6000))
def test_long_inputs_are_refused_not_slow(unit, repeat):
    text = unit * (repeat // len(unit))
    assert_same(text)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["track1", "track2", "track3", "swipe", "barcode", "card"]),
       st.lists(card_data | mutated(), max_size=8))
def test_decode_many_agrees(kind, items):
    expected = py.decode_many(kind, items)
    assert c.decode_many(kind, items) == expected
    for item, result in zip(items, expected):
        single = outcome(py, py.DECODERS[kind].__name__, item)
        if single[0] == "ok":
            assert result == single[1]
        else:
            assert isinstance(result, CardDataError)
            assert (type(result), result.kind, result.position, result.message) == single[1:]


def test_non_text_is_refused_alike():
    for name in FUNCTIONS:
        for value in (None, b"123", 123):
            for module in (py, c):
                with pytest.raises(TypeError):
                    getattr(module, name)(value)
    for module in (py, c):
        with pytest.raises(TypeError):
            module.decode_many("track2", [";123?", b";123?"])

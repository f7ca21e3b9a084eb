"""protocols.isocodec: the compiled twin against pyiso8583 (the reference), and the facade rules.

The twin must give the same bytes for every dict, the same dict for every message, and the same
refusal (message, field, partial dict) for every message pyiso8583 refuses. The one deliberate
difference (a tertiary bitmap, refused earlier by the twin) is refused by both facades.
"""

from __future__ import annotations

import os
import string

import iso8583
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iso8583.decoder import DecodeError
from iso8583.encoder import EncodeError

from protocols import isocodec
from protocols.isospec import NUMERIC_FIELDS, SPEC_ASCII, SPEC_BINARY_BITMAP, spec_for_bitmap

if os.environ.get("TILLGATE_NO_EXTENSIONS") == "1":
    _c = pytest.importorskip("protocols._isocodec_c")
else:
    from protocols import _isocodec_c as _c

SPECS = {"ascii": SPEC_ASCII, "binary": SPEC_BINARY_BITMAP}
COMPILED = {name: _c.compile_spec(spec) for name, spec in SPECS.items()}
FIELDS = [n for n in range(2, 129) if n != 65]
ASCII = st.characters(min_codepoint=0, max_codepoint=127)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SALE = {
    "t": "0200", "2": "6039530000000000018", "3": "006000", "4": "000000001500",
    "7": "1124030000", "11": "000123", "12": "030000", "13": "1124", "22": "021",
    "37": "123456789012", "41": "TILL0001", "42": "STORE0000000001", "49": "840",
    "52": "1234567890ABCDEF", "63": "IN006INV001PA0011", "90": "0" * 42,
}


def ref_raw(data: bytes, spec) -> tuple:
    try:
        return ("ok", iso8583.decode(data, spec)[0])
    except DecodeError as e:
        return ("error", e.msg, e.field, e.doc_dec)
    except KeyError:  # fields 129+ after a tertiary bitmap
        return ("keyerror",)


def c_raw(data: bytes, name: str) -> tuple:
    try:
        return ("ok", _c.decode(data, COMPILED[name]))
    except DecodeError as e:
        return ("error", e.msg, e.field, e.doc_dec)


def facade(decode, data: bytes, spec) -> tuple:
    try:
        return ("ok", decode(data, spec))
    except isocodec.IsoDecodeError as e:
        return ("error", e.field, e.mti, e.stan)


def assert_same_decode(data: bytes, name: str) -> None:
    spec = SPECS[name]
    mine = c_raw(data, name)
    if mine[0] == "error" and mine[1].startswith("Tertiary"):
        # Ours refuses at the bitmap; pyiso8583 fails later or returns a 32-digit field "1".
        assert facade(isocodec.decode_reference, data, spec)[0] == "error"
    else:
        assert mine == ref_raw(data, spec)
        ours = facade(lambda d, s: isocodec._decode_with(
            lambda d2, _s: _c.decode(d2, COMPILED[name]), d, s), data, spec)
        assert ours == facade(isocodec.decode_reference, data, spec)


def field_value(number: int, spec) -> st.SearchStrategy[str]:
    field = spec[str(number)]
    if field["len_type"] == 0:
        size = field["max_len"]
        return st.text(ASCII, min_size=size, max_size=size)
    return st.text(ASCII, max_size=field["max_len"])


@st.composite
def messages(draw, spec) -> dict[str, str]:
    numbers = draw(st.lists(st.sampled_from(FIELDS), max_size=20, unique=True))
    doc = {"t": draw(st.text(ASCII, min_size=4, max_size=4))}
    for number in numbers:
        doc[str(number)] = draw(field_value(number, spec))
    return doc


@pytest.mark.parametrize("name", SPECS)
def test_sale_round_trip(name):
    spec = SPECS[name]
    data = isocodec.encode(SALE, spec)
    assert data == bytes(iso8583.encode(dict(SALE), spec)[0])
    decoded = isocodec.decode(data, spec)
    assert decoded == iso8583.decode(data, spec)[0]
    assert {k: v for k, v in decoded.items() if k not in ("p", "1")} == SALE


def test_encode_does_not_mutate():
    before = dict(SALE, p="junk", **{"1": "junk", "65": "junk"})
    doc = dict(before)
    isocodec.encode(doc, SPEC_ASCII)
    isocodec.encode_reference(doc, SPEC_ASCII)
    assert doc == before


def test_implementation_is_compiled_on_cpython():
    if os.environ.get("TILLGATE_NO_EXTENSIONS") != "1":
        assert isocodec.IMPLEMENTATION == "c"


# hypothesis draws the spec itself: pytest-twisted cannot run a parametrized @given twice.
SPEC_NAMES = st.sampled_from(sorted(SPECS))


@FAST
@given(name=SPEC_NAMES, data=st.data())
def test_generated_messages_identical(name, data):
    spec = SPECS[name]
    doc = data.draw(messages(spec))
    expected = bytes(iso8583.encode(dict(doc), spec)[0])
    assert _c.encode(doc, COMPILED[name]) == expected
    assert_same_decode(expected, name)


@FAST
@given(name=SPEC_NAMES, data=st.data())
def test_mutated_messages_same_decision(name, data):
    spec = SPECS[name]
    encoded = bytearray(iso8583.encode(dict(data.draw(messages(spec))), spec)[0])
    for _ in range(data.draw(st.integers(1, 3))):
        action = data.draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        pos = data.draw(st.integers(0, len(encoded)))
        if action == "set" and pos < len(encoded):
            encoded[pos] = data.draw(st.sampled_from(
                [*b"0123456789AF +-_ \t", data.draw(st.integers(0, 255))]))
        elif action == "insert":
            encoded[pos:pos] = data.draw(st.binary(min_size=1, max_size=3))
        elif action == "delete":
            del encoded[pos:pos + data.draw(st.integers(1, 4))]
        else:
            del encoded[pos:]
    assert_same_decode(bytes(encoded), name)


@FAST
@given(name=SPEC_NAMES, data=st.binary(max_size=80))
def test_garbage_same_decision(name, data):
    assert_same_decode(data, name)
    assert_same_decode(b"0200" + data, name)


@pytest.mark.parametrize("length", ["05", " 5", "5 ", "+5", "-0", "+0", "0_5", "-5", "a5", "\xff5",
                                    "5\n", "1_", "٥5"])
def test_odd_variable_lengths_follow_int(length):
    data = b"0200" + bytes.fromhex("4000000000000000").hex().upper().encode()
    for tail in (b"12345", b"", b"1234567890"):
        assert_same_decode(data + length.encode("latin-1", "replace") + tail, "ascii")


@pytest.mark.parametrize("bitmap", [b"4000000000000000", b"4000000000000000".lower(),
                                    b"40 00000000000000", b"4000 00000000000", b"40\t0000000000000",
                                    b"40000000000000 0", b"400000000000000G", b"4" * 15 + b"\x80"])
def test_odd_ascii_bitmaps_follow_fromhex(bitmap):
    for tail in (b"06123456", b"", b"0612345"):
        assert_same_decode(b"0200" + bitmap + tail, "ascii")


def test_tertiary_bitmap_refused_by_both():
    data = isocodec.encode({"t": "0200", "70": "001"}, SPEC_ASCII)
    tertiary = data[:20] + b"C" + data[21:36] + b"0" * 16 + data[36:]
    for decode in (isocodec.decode, isocodec.decode_reference):
        with pytest.raises(isocodec.IsoDecodeError):
            decode(tertiary, SPEC_ASCII)


@pytest.mark.parametrize("doc", [
    {"3": "006000"},  # no MTI
    {"t": "020", "3": "006000"},
    {"t": "0200", "3": "00600"},  # fixed field too short
    {"t": "0200", "2": "1" * 20},  # LLVAR too long
    {"t": "0200", "2": "é"},
    {"t": "0200", "2": 1234},
    {"t": "0200", 2: "1234"},
    {"t": "0200", "02": "1234"},
    {"t": "0200", "0": "x"},
    {"t": "0200", "129": "x"},
    {"t": "0200", "200": "x"},
    {"t": 200},
])
@pytest.mark.parametrize("name", SPECS)
def test_bad_dicts_refused_by_both(doc, name):
    with pytest.raises(isocodec.IsoEncodeError):
        isocodec.encode_reference(doc, SPECS[name])
    with pytest.raises(EncodeError):
        _c.encode(doc, COMPILED[name])


def test_ignored_keys_ignored_by_both():
    doc = dict(SALE, h="x", p="x", x="y", **{"1": "x", "65": "x", "02": "x"})
    doc["2"] = SALE["2"]
    assert isocodec.encode(doc, SPEC_ASCII) == isocodec.encode_reference(doc, SPEC_ASCII)


@pytest.mark.parametrize("field", NUMERIC_FIELDS)
def test_numeric_fields_must_be_digits(field):
    doc = dict(SALE, **{"70": "001"})
    doc[field] = "X" + doc[field][1:]
    data = isocodec.encode(doc, SPEC_ASCII)
    for decode in (isocodec.decode, isocodec.decode_reference):
        with pytest.raises(isocodec.IsoDecodeError) as info:
            decode(data, SPEC_ASCII)
        assert info.value.field == field
        assert info.value.mti == "0200"
        assert info.value.stan == (None if field == "11" else "000123")


def test_track1_with_sentinels_fits_field_45():
    track1 = "%B6039530000000000018^HOLDER/CARD^29121010000000000000000000000000000000000?"
    assert len(track1) <= 79
    doc = {"t": "0200", "45": track1}
    assert isocodec.decode(isocodec.encode(doc, SPEC_ASCII), SPEC_ASCII)["45"] == track1


def test_readable_mti_and_stan_on_truncated_message():
    data = isocodec.encode(SALE, SPEC_ASCII)
    cut = data.index(b"TILL0001")  # after 11, inside 41
    with pytest.raises(isocodec.IsoDecodeError) as info:
        isocodec.decode(data[:cut + 3], SPEC_ASCII)
    assert (info.value.mti, info.value.stan, info.value.field) == ("0200", "000123", "41")
    with pytest.raises(isocodec.IsoDecodeError) as info:
        isocodec.decode(data[:30], SPEC_ASCII)
    assert (info.value.mti, info.value.stan) == ("0200", None)


def test_spec_for_bitmap():
    assert spec_for_bitmap("ascii") is SPEC_ASCII
    assert spec_for_bitmap("binary") is SPEC_BINARY_BITMAP
    with pytest.raises(ValueError):
        spec_for_bitmap("ebcdic")


def test_compile_spec_refuses_features_the_twin_lacks():
    from iso8583.specs import default

    with pytest.raises(ValueError):
        _c.compile_spec(default)  # binary and BCD fields


def test_printable_alphabet_is_ascii():
    assert set(string.printable) <= {chr(i) for i in range(128)}

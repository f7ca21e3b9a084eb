"""Fuzzing the ISO 8583 input path: bytes -> Deframer -> decode -> message_to_request.

Whatever arrives, the only exceptions are the documented ones (FramingError, IsoDecodeError,
IsoFormatError), and every answer the gateway would send encodes.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import isocodec
from protocols.framing import Deframer, FramingError, frame
from protocols.isocodec import IsoDecodeError
from protocols.isomap import (
    FINANCIAL_CODES,
    IsoFormatError,
    format_error_response,
    message_to_request,
    result_to_response,
)
from protocols.isospec import SPEC_ASCII, SPEC_BINARY_BITMAP
from protocols.model import RC, Result

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPEC = st.sampled_from([SPEC_ASCII, SPEC_BINARY_BITMAP])
KIND = st.sampled_from(["len2b", "len4a", "tpdu"])
PRINTABLE = st.characters(min_codepoint=32, max_codepoint=126)
TPDU = bytes.fromhex("6000120034")


def handle(payload: bytes, spec) -> dict | None:
    """What a listener does with one frame; returns the response dict, None = close."""
    try:
        fields = isocodec.decode(payload, spec)
        request = message_to_request(fields, source="fuzz")
    except (IsoDecodeError, IsoFormatError) as exc:
        response = format_error_response(exc.fields_to_echo, code=exc.code)
        if response is not None:
            assert exc.mti is not None and exc.stan is not None
            isocodec.encode(response, spec)
        return response
    assert request.terminal == fields.get("41", "")
    response = result_to_response(fields, Result(RC.APPROVED, amount=1, balance=2,
                                                  currency="840", points=3, auth_id="X"))
    isocodec.encode(response, spec)
    return response


@FUZZ
@given(kind=KIND, spec=SPEC, data=st.binary(max_size=300), cut=st.integers(0, 300))
def test_arbitrary_bytes(kind, spec, data, cut):
    deframer = Deframer(kind, max_frame=256)
    try:
        frames = deframer.feed(data[:cut]) + deframer.feed(data[cut:])
    except FramingError:
        frames = []
    for item in frames:
        handle(item.payload, spec)
    handle(data, spec)


def numeric(size: int) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from("0123456789"), min_size=size, max_size=size)


def fixed(size: int) -> st.SearchStrategy[str]:
    return st.one_of(numeric(size), st.text(PRINTABLE, min_size=size, max_size=size))


TAG = st.sampled_from(["IN", "OP", "PA", "RW", "UP", "SN", "BC", "ZZ", "PT"])
FIELD63 = st.lists(st.tuples(TAG, st.text(PRINTABLE, max_size=25)), max_size=4).map(
    lambda tags: "".join(f"{t}{len(v):03d}{v}" for t, v in tags)) | st.text(PRINTABLE,
                                                                          max_size=30)
FIELD_VALUES = {
    "2": numeric(19) | st.text(PRINTABLE, max_size=19),
    "3": st.sampled_from(sorted(FINANCIAL_CODES) + ["026000", "999999"]) | fixed(6),
    "4": fixed(12), "7": fixed(10), "11": fixed(6), "12": fixed(6), "13": fixed(4),
    "22": fixed(3), "35": st.text(PRINTABLE, max_size=37), "37": fixed(12), "41": fixed(8),
    "42": fixed(15), "45": st.text(PRINTABLE, max_size=79), "49": fixed(3),
    "52": st.text(st.sampled_from("0123456789ABCDEFG"), min_size=16, max_size=16),
    "63": FIELD63, "70": st.sampled_from(["001", "002", "301", "161"]) | fixed(3),
    "90": fixed(42), "103": st.text(PRINTABLE, max_size=28),
}
MTI = st.sampled_from(["0100", "0200", "0220", "0400", "0401", "0420", "0421", "0800", "0210",
                       "0300"]) | st.text(PRINTABLE, min_size=4, max_size=4)


VALID = {
    "t": "0200", "2": "6039530000000000018", "3": "006000", "4": "000000001500",
    "7": "1124030000", "11": "000123", "41": "TILL0001", "42": "STORE0000000001",
    "90": "0200000100112402595900000000000000000000000", "103": "6039530000000000026",
    "70": "001",
}


@st.composite
def plausible_messages(draw) -> dict[str, str]:
    """A valid request with a few fields dropped or replaced (mostly well-formed values)."""
    doc = dict(VALID)
    doc["90"] = doc["90"][:42]
    for key in draw(st.lists(st.sampled_from(sorted(doc)), max_size=3, unique=True)):
        del doc[key]
    doc["t"] = draw(MTI)
    for key in draw(st.lists(st.sampled_from(sorted(FIELD_VALUES)), max_size=4, unique=True)):
        doc[key] = draw(FIELD_VALUES[key])
    return doc


@FUZZ
@given(doc=plausible_messages(), spec=SPEC, kind=KIND)
def test_plausible_messages(doc, spec, kind):
    payload = isocodec.encode(doc, spec)
    (received,) = Deframer(kind).feed(frame(payload, kind, TPDU if kind == "tpdu" else None))
    handle(received.payload, spec)

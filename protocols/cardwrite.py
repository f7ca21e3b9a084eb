"""Card-data encoders: the mirror of protocols.carddata, for cards that are about to be made.

What protocols.carddata reads, this writes: magnetic-stripe track 1 (ISO/IEC 7813 format B),
track 2 and track 3 (ISO 4909), each with its sentinels and, when asked, its LRC, and the barcode
payloads (Code 128 text, the QR URI `tillgate:card/<number>`). Every string written here is read
back to the same fields by both twins of the decoders (tests/test_cardwrite.py round-trips
thousands of generated cards). docs/card-data.md, "Writing card data", documents the choices.

Writing is not a hot path (a batch is written once, a few microseconds a track), so there is no
Cython twin. A value that cannot be written is a ValueError naming the field and saying why; the
message never repeats the card number.
"""

from __future__ import annotations

from protocols._carddata_py import (
    CARD_MAX,
    CARD_MIN,
    NAME_MAX,
    NAME_MIN,
    PAN_MAX,
    TRACK1_MAX_DATA,
    TRACK2_MAX_DATA,
    TRACK3_MAX_DATA,
    URI_CARD,
    URI_PREFIX,
)

DIGITS = frozenset("0123456789")
UPPER_ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
# Track 1's 6-bit set is ASCII space to `_`; `%` `^` `?` are its sentinels and separator.
TRACK1_TEXT = frozenset(chr(c) for c in range(0x20, 0x60)) - set("%^?")
# ISO 4909 format code 01: a financial card (the decoders take any two digits).
TRACK3_FORMAT = "01"


def _digits(value: str, width: int, field: str) -> str:
    if len(value) != width or not set(value) <= DIGITS:
        raise ValueError(f"{field} must be {width} digits")
    return value


def _check_number(pan: str, charset: frozenset[str], track: str) -> None:
    if not pan:
        raise ValueError(f"{track}: no card number")
    if len(pan) > PAN_MAX:
        raise ValueError(f"{track}: a card number holds at most {PAN_MAX} characters")
    if not set(pan) <= charset:
        what = "digits" if charset is DIGITS else "digits and upper-case letters"
        raise ValueError(f"{track} holds card numbers of {what} only")


def _fields(expiry: str | None, service_code: str | None, discretionary: str, separator: str,
            track: str) -> str:
    """Expiry, service code and discretionary data after the separator. An absent expiry or
    service code is written as the separator (ISO 7813's `==` and `^^` forms) when something
    follows it, and left out at the end of the data, so that it decodes as absent."""
    tail = discretionary
    if service_code is not None:
        tail = _digits(service_code, 3, f"{track} service code") + tail
    elif tail:
        tail = separator + tail
    if expiry is not None:
        tail = _digits(expiry, 4, f"{track} expiry (YYMM)") + tail
    elif tail:
        tail = separator + tail
    return tail


def lrc(data: str, offset: int, start_code: int) -> str:
    """The LRC character of a track whose data characters are `data` (sentinels excluded):
    the XOR of the codes (ASCII minus `offset`) of the start sentinel, the data and the end
    sentinel `?`, written as the character of that code (docs/card-data.md, "LRC")."""
    code = start_code ^ (ord("?") - offset)
    for c in data:
        code ^= ord(c) - offset
    return chr(code + offset)


def _framed(start: str, data: str, with_lrc: bool, offset: int, start_code: int) -> str:
    return start + data + "?" + (lrc(data, offset, start_code) if with_lrc else "")


def encode_track1(pan: str, name: str, expiry: str | None = None, service_code: str | None = None,
                  discretionary: str = "", with_lrc: bool = False) -> str:
    """`%B` PAN `^` NAME `^` expiry service code discretionary `?` [LRC]. The card number may
    hold upper-case letters (alphanumeric loyalty numbers); the name is 2-26 characters of the
    track's set, conventionally `SURNAME/GIVEN` or a program's title."""
    _check_number(pan, UPPER_ALNUM, "track 1")
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise ValueError(f"track 1 name must be {NAME_MIN} to {NAME_MAX} characters")
    if not set(name) <= TRACK1_TEXT:
        raise ValueError("track 1 name holds upper-case letters, digits, space and "
                         "punctuation other than % ^ ? only")
    if not set(discretionary) <= TRACK1_TEXT:
        raise ValueError("track 1 discretionary data: a character outside the track's set")
    data = "B" + pan + "^" + name + "^" + _fields(expiry, service_code, discretionary, "^",
                                                  "track 1")
    if len(data) > TRACK1_MAX_DATA:
        raise ValueError(f"track 1 holds at most {TRACK1_MAX_DATA} characters")
    return _framed("%", data, with_lrc, 0x20, 0x05)


def encode_track2(pan: str, expiry: str | None = None, service_code: str | None = None,
                  discretionary: str = "", with_lrc: bool = False) -> str:
    """`;` PAN [`=` expiry service code discretionary] `?` [LRC]; digits only: a number with
    letters cannot be written to track 2."""
    _check_number(pan, DIGITS, "track 2")
    if not set(discretionary) <= DIGITS:
        raise ValueError("track 2 discretionary data must be digits")
    tail = _fields(expiry, service_code, discretionary, "=", "track 2")
    # Without any field after the number the separator is left out too: `;PAN?`.
    data = pan + ("=" + tail if tail else "")
    if len(data) > TRACK2_MAX_DATA:
        raise ValueError(f"track 2 holds at most {TRACK2_MAX_DATA} characters")
    return _framed(";", data, with_lrc, 0x30, 0x0B)


def encode_track3(pan: str, country_code: str | None = None, discretionary: str = "",
                  format_code: str = TRACK3_FORMAT, with_lrc: bool = False) -> str:
    """ISO 4909: `;` format code PAN [`=` country code further data] `?` [LRC]; digits only."""
    _digits(format_code, 2, "track 3 format code")
    _check_number(pan, DIGITS, "track 3")
    if not set(discretionary) <= DIGITS | {"="}:
        raise ValueError("track 3 further data must be digits and '='")
    tail = discretionary
    if country_code is not None:
        tail = _digits(country_code, 3, "track 3 country code") + tail
    elif tail:
        tail = "=" + tail
    data = format_code + pan + ("=" + tail if tail else "")
    if len(data) > TRACK3_MAX_DATA:
        raise ValueError(f"track 3 holds at most {TRACK3_MAX_DATA} characters")
    return _framed(";", data, with_lrc, 0x30, 0x0B)


def _check_barcode_number(number: str) -> None:
    if not CARD_MIN <= len(number) <= CARD_MAX or not set(number) <= UPPER_ALNUM | set(
            "abcdefghijklmnopqrstuvwxyz"):
        raise ValueError(f"a barcode carries a card number of {CARD_MIN} to {CARD_MAX} ASCII "
                         "letters and digits")


def code128_payload(number: str) -> str:
    """The text of the card's Code 128 barcode: the number itself (8-19 letters or digits),
    which card_number reads back as it is. A scanner that prefixes a symbology identifier
    (`]C0`) sends it through decode_barcode, which reads 8, 12 or 13 digits as an EAN or UPC
    product code: programs with numbers of those lengths rely on the QR code or on scanners
    without identifiers (docs/card-data.md, "Writing card data")."""
    _check_barcode_number(number)
    return number


def qr_payload(number: str) -> str:
    """The text of the card's QR code: `tillgate:card/<number>` (decode_barcode's `uri`)."""
    _check_barcode_number(number)
    return URI_PREFIX + URI_CARD + number

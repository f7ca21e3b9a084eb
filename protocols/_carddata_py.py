"""Card-data decoders of HOST-SPEC section 4, in pure Python: the readable specification.

protocols._carddata_c (ext/_carddata_c.pyx) is the compiled twin and must give identical results
and identical refusals (same class, kind, position and message) for every input;
tests/test_carddata_diff.py runs both on generated inputs. Import protocols.carddata, not this
module: the facade picks the twin.

Conventions shared by every decoder:
- Input is a str. Trailing CR and LF (what keyboard-wedge readers and scanners append) are ignored.
- A refusal is a carddata_errors.CardDataError subclass carrying the 0-based position of the fault
  in the text as given. Checks run in a fixed, documented order, so the first fault is well defined.
- Results are plain dicts with a fixed set of keys; absent fields are None.
docs/card-data.md describes what is accepted, with examples.
"""

from __future__ import annotations

import secrets
from typing import Protocol

from protocols.carddata_errors import (
    CardDataError,
    CharacterError,
    CheckDigitError,
    FormatError,
    LengthError,
    LRCError,
    UnreadableError,
)

# ISO/IEC 7813 / ISO 4909 limits: data characters between the sentinels.
TRACK1_MAX_DATA = 76
TRACK2_MAX_DATA = 37
TRACK3_MAX_DATA = 104
PAN_MAX = 19
NAME_MIN, NAME_MAX = 2, 26
# Card numbers carried by QR codes and Code 128 text (and generated ones).
CARD_MIN, CARD_MAX = 8, 19
# Bounds on whole inputs, checked first so that no decoder works on unbounded text.
SWIPE_MAX = 1024
BARCODE_MAX = 4096

GS = "\x1d"  # the GS1 separator (FNC1 in the middle of an element string)
SENTINELS = "%;+"  # start sentinels: track 1, tracks 2 and 3, track 3 on some readers
# Symbology identifiers (ISO/IEC 15424) that announce a GS1 element string: GS1-128, GS1 DataBar,
# GS1 DataMatrix, GS1 QR, GS1 DotCode. Other `]xy` identifiers are dropped, the rest classified.
GS1_IDENTIFIERS = frozenset({"C1", "e0", "d2", "Q3", "J1"})
URI_PREFIX = "tillgate:"
URI_CARD = "card/"
URL_PREFIX = "https://"
# GS1 AIs that may carry a card number, most specific first (docs/card-data.md, "pan of a barcode").
GS1_PAN_AIS = ("8004", "8018", "21")

# The GS1 "AI encodable character set 82" (GS1 General Specifications, figure 7.11-1).
GS1_CSET82 = frozenset(
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

# GS1 application identifiers (GS1 General Specifications, section 3.2): first and last AI of a
# run, data length min and max (equal = fixed length), "N" numeric or "X" character set 82, and
# whether the value ends with a GS1 mod-10 check digit. Compound formats (e.g. 253 = N13 + X..17)
# are checked as a whole with their loosest character set. AIs are prefix-free, so reading 2, 3,
# then 4 digits finds at most one.
GS1_AI_RUNS: tuple[tuple[str, str, int, int, str, bool], ...] = (
    ("00", "00", 18, 18, "N", True),  # SSCC
    ("01", "03", 14, 14, "N", True),  # GTIN, contained GTIN, made-to-order GTIN
    ("10", "10", 1, 20, "X", False),  # batch or lot
    ("11", "13", 6, 6, "N", False),  # production, due, packaging date
    ("15", "17", 6, 6, "N", False),  # best before, sell by, expiry date
    ("20", "20", 2, 2, "N", False),  # variant
    ("21", "22", 1, 20, "X", False),  # serial number, consumer product variant
    ("235", "235", 1, 28, "X", False),
    ("240", "241", 1, 30, "X", False),
    ("242", "242", 1, 6, "N", False),
    ("243", "243", 1, 20, "X", False),
    ("250", "251", 1, 30, "X", False),
    ("253", "253", 13, 30, "X", False),  # GDTI
    ("254", "254", 1, 20, "X", False),
    ("255", "255", 13, 25, "N", False),  # GCN, global coupon number
    ("30", "30", 1, 8, "N", False),  # count
    ("3100", "3699", 6, 6, "N", False),  # trade measures
    ("37", "37", 1, 8, "N", False),
    ("3900", "3909", 1, 15, "N", False),  # amount payable
    ("3910", "3919", 4, 18, "N", False),  # amount payable with ISO currency
    ("3920", "3929", 1, 15, "N", False),
    ("3930", "3939", 4, 18, "N", False),
    ("3940", "3943", 4, 4, "N", False),
    ("3950", "3955", 6, 6, "N", False),
    ("400", "401", 1, 30, "X", False),
    ("402", "402", 17, 17, "N", False),  # GSIN
    ("403", "403", 1, 30, "X", False),
    ("410", "417", 13, 13, "N", True),  # GLNs
    ("420", "420", 1, 20, "X", False),
    ("421", "421", 4, 12, "X", False),
    ("422", "422", 3, 3, "N", False),
    ("423", "423", 4, 15, "N", False),
    ("424", "424", 3, 3, "N", False),
    ("425", "425", 4, 15, "N", False),
    ("426", "426", 3, 3, "N", False),
    ("427", "427", 1, 3, "X", False),
    ("4300", "4301", 1, 35, "X", False),
    ("4302", "4306", 1, 70, "X", False),
    ("4307", "4307", 2, 2, "X", False),
    ("4308", "4308", 1, 30, "X", False),
    ("4309", "4309", 20, 20, "N", False),
    ("4310", "4311", 1, 35, "X", False),
    ("4312", "4316", 1, 70, "X", False),
    ("4317", "4317", 2, 2, "X", False),
    ("4318", "4318", 1, 20, "X", False),
    ("4319", "4319", 1, 30, "X", False),
    ("4320", "4320", 1, 35, "X", False),
    ("4321", "4323", 1, 1, "N", False),
    ("4324", "4325", 10, 10, "N", False),
    ("4326", "4326", 6, 6, "N", False),
    ("7001", "7001", 13, 13, "N", False),
    ("7002", "7002", 1, 30, "X", False),
    ("7003", "7003", 10, 10, "N", False),
    ("7004", "7004", 1, 4, "N", False),
    ("7005", "7005", 1, 12, "X", False),
    ("7006", "7006", 6, 6, "N", False),
    ("7007", "7007", 6, 12, "N", False),
    ("7008", "7008", 1, 3, "X", False),
    ("7009", "7009", 1, 10, "X", False),
    ("7010", "7010", 1, 2, "X", False),
    ("7020", "7022", 1, 20, "X", False),
    ("7023", "7023", 1, 30, "X", False),
    ("7030", "7039", 4, 30, "X", False),
    ("710", "716", 1, 20, "X", False),  # national healthcare reimbursement numbers
    ("7230", "7239", 3, 30, "X", False),
    ("7240", "7240", 1, 20, "X", False),
    ("8001", "8001", 14, 14, "N", False),
    ("8002", "8002", 1, 20, "X", False),
    ("8003", "8003", 15, 30, "X", False),  # GRAI
    ("8004", "8004", 1, 30, "X", False),  # GIAI
    ("8005", "8005", 6, 6, "N", False),
    ("8006", "8006", 18, 18, "N", False),
    ("8007", "8007", 1, 34, "X", False),  # IBAN
    ("8008", "8008", 8, 12, "N", False),
    ("8009", "8009", 1, 50, "X", False),
    ("8010", "8010", 1, 30, "X", False),
    ("8011", "8011", 1, 12, "N", False),
    ("8012", "8012", 1, 20, "X", False),
    ("8013", "8013", 1, 25, "X", False),
    ("8017", "8018", 18, 18, "N", True),  # GSRN provider, recipient (loyalty memberships)
    ("8019", "8019", 1, 10, "N", False),
    ("8020", "8020", 1, 25, "X", False),
    ("8026", "8026", 18, 18, "N", False),
    ("8110", "8110", 1, 70, "X", False),  # North American coupon code
    ("8111", "8111", 4, 4, "N", False),
    ("8112", "8112", 1, 70, "X", False),
    ("8200", "8200", 1, 70, "X", False),  # extended packaging URL
    ("90", "90", 1, 30, "X", False),
    ("91", "99", 1, 90, "X", False),  # company internal
)


def _expand_ai_runs() -> dict[str, tuple[int, int, bool, bool]]:
    table: dict[str, tuple[int, int, bool, bool]] = {}
    for first, last, low, high, charset, check in GS1_AI_RUNS:
        for code in range(int(first), int(last) + 1):
            table[str(code).zfill(len(first))] = (low, high, charset == "N", check)
    return table


# AI -> (min length, max length, numeric, check digit)
GS1_AI: dict[str, tuple[int, int, bool, bool]] = _expand_ai_runs()


# --- shared helpers -------------------------------------------------------------------------------


def _require_text(text: object) -> str:
    if not isinstance(text, str):
        raise TypeError(f"card data must be str, not {type(text).__name__}")
    return text


def _content_end(text: str) -> int:
    """Index after the content: trailing CR and LF from readers and scanners are not data."""
    end = len(text)
    while end and text[end - 1] in "\r\n":
        end -= 1
    return end


def _is_digit(c: str) -> bool:
    return "0" <= c <= "9"


def _mod10(text: str, start: int, end: int) -> int:
    """GS1 mod-10 check digit of text[start:end] (digits): weights 3,1,3,... from the right."""
    total = 0
    weight = 3
    for i in range(end - 1, start - 1, -1):
        total += (ord(text[i]) - 48) * weight
        weight = 4 - weight
    return (10 - total % 10) % 10


def _starts_with_ci(text: str, prefix: str, p: int, end: int) -> bool:
    """text[p:end] starts with the lower-case ASCII `prefix`, ignoring ASCII case only."""
    if end - p < len(prefix):
        return False
    for k, want in enumerate(prefix):
        c = text[p + k]
        if c != want and not ("A" <= c <= "Z" and chr(ord(c) + 32) == want):
            return False
    return True


def _is_card_token(text: str, start: int, end: int) -> bool:
    """True when text[start:end] could be a card number: 8-19 ASCII letters and digits."""
    if not CARD_MIN <= end - start <= CARD_MAX:
        return False
    return all(text[i] in ALNUM for i in range(start, end))


def _card_token(text: str, start: int, end: int) -> str:
    """text[start:end] as a card number (URI, URL): refuses what _is_card_token would not accept."""
    if start == end:
        raise FormatError(start, "no card number")
    for i in range(start, end):
        if text[i] not in ALNUM:
            raise CharacterError(i, f"character {text[i]!r} is not allowed in a card number")
    if end - start > CARD_MAX:
        raise LengthError(start + CARD_MAX, f"card number longer than {CARD_MAX} characters")
    if end - start < CARD_MIN:
        raise LengthError(end, f"card number shorter than {CARD_MIN} characters")
    return text[start:end]


# --- magnetic stripe ------------------------------------------------------------------------------


def _frame(text: str, start: int, end: int, sentinels: str) -> tuple[int, int, int]:
    """Locate a track's data between optional sentinels: (data start, data end, LRC position or -1).

    The data ends at the first `?`; at most one character (the LRC) may follow it.
    """
    data_start = start + 1 if start < end and text[start] in sentinels else start
    question = text.find("?", data_start, end)
    if question < 0:
        return data_start, end, -1
    if end - question > 2:
        raise FormatError(question + 2, "unexpected characters after the end sentinel")
    return data_start, question, question + 1 if question + 1 < end else -1


def _check_lrc(text: str, data_start: int, data_end: int, lrc_pos: int, offset: int, bits: int,
               start_code: int) -> None:
    """Verify the LRC character: XOR of the character codes (ASCII minus `offset`, `bits` wide)
    of start sentinel, data and end sentinel, written back as a character of the same set. The
    start sentinel counts even when the reader left it out; the end sentinel `?` is present here."""
    lrc = start_code ^ (ord("?") - offset)
    for i in range(data_start, data_end):
        lrc ^= ord(text[i]) - offset
    found = ord(text[lrc_pos]) - offset
    if not (0 <= found < (1 << bits)) or found != lrc:
        raise LRCError(lrc_pos, f"LRC mismatch: expected {chr(lrc + offset)!r}")


def _fixed_or_absent(text: str, i: int, end: int, width: int, marker: str,
                     field: str) -> tuple[str | None, int]:
    """A fixed-width digit field that the writer may replace by the separator `marker` (ISO 7813's
    `==` / `^^` forms) or leave out at the end of the data: (value or None, next index)."""
    if i == end:
        return None, i
    if text[i] == marker:
        return None, i + 1
    for k in range(i, i + width):
        if k == end or not _is_digit(text[k]):
            raise FormatError(k, f"{field} needs {width} digits")
    return text[i:i + width], i + width


def _check_pan_length(pan_start: int, pan_end: int) -> None:
    if pan_start == pan_end:
        raise FormatError(pan_start, "no card number")
    if pan_end - pan_start > PAN_MAX:
        raise LengthError(pan_start + PAN_MAX, f"card number longer than {PAN_MAX} characters")


def _numeric_track(text: str, start: int, end: int, sentinels: str, max_data: int,
                   track: str) -> tuple[int, int]:
    """Framing, character set, length and LRC of track 2 or 3: (data start, data end)."""
    data_start, data_end, lrc_pos = _frame(text, start, end, sentinels)
    for i in range(data_start, data_end):
        c = text[i]
        if not (_is_digit(c) or c == "="):
            raise CharacterError(i, f"character {c!r} is not allowed in {track}")
    if data_end - data_start > max_data:
        raise LengthError(data_start + max_data, f"{track} holds at most {max_data} characters")
    if lrc_pos >= 0:
        _check_lrc(text, data_start, data_end, lrc_pos, 0x30, 4, 0x0B)
    return data_start, data_end


def _track2(text: str, start: int, end: int) -> dict:
    """`;` PAN [`=` (YYMM|`=`) (service code|`=`) discretionary] `?` [LRC]; sentinels optional."""
    data_start, data_end = _numeric_track(text, start, end, ";", TRACK2_MAX_DATA, "track 2")
    separator = text.find("=", data_start, data_end)
    pan_end = data_end if separator < 0 else separator
    _check_pan_length(data_start, pan_end)
    expiry = service_code = None
    i = data_end
    if separator >= 0:
        expiry, i = _fixed_or_absent(text, separator + 1, data_end, 4, "=", "expiry")
        service_code, i = _fixed_or_absent(text, i, data_end, 3, "=", "service code")
    return {
        "pan": text[data_start:pan_end],
        "expiry": expiry,
        "service_code": service_code,
        "discretionary": text[i:data_end],
    }


def _track3(text: str, start: int, end: int) -> dict:
    """ISO 4909: `;` (or `+`) format code (2 digits) PAN [`=` country code (3 digits or `=`)
    further data] `?` [LRC]. Only the fields before the further data are split out."""
    data_start, data_end = _numeric_track(text, start, end, ";+", TRACK3_MAX_DATA, "track 3")
    for k in range(data_start, data_start + 2):
        if k == data_end or text[k] == "=":
            raise FormatError(k, "track 3 format code needs 2 digits")
    pan_start = data_start + 2
    separator = text.find("=", pan_start, data_end)
    pan_end = data_end if separator < 0 else separator
    _check_pan_length(pan_start, pan_end)
    country = None
    i = data_end
    if separator >= 0:
        country, i = _fixed_or_absent(text, separator + 1, data_end, 3, "=", "country code")
    return {
        "pan": text[pan_start:pan_end],
        "format_code": text[data_start:pan_start],
        "country_code": country,
        "discretionary": text[i:data_end],
    }


def _track1(text: str, start: int, end: int) -> dict:
    """ISO/IEC 7813 format B: `%B` PAN `^` NAME `^` (YYMM | `^`) (service code | `^`)
    discretionary `?` [LRC]; sentinels optional, the format code `B` is not."""
    data_start, data_end, lrc_pos = _frame(text, start, end, "%")
    for i in range(data_start, data_end):
        c = text[i]
        # 6-bit track 1 set: space to underscore; `%` and `?` are sentinels only.
        if not (" " <= c <= "_") or c == "%":
            raise CharacterError(i, f"character {c!r} is not allowed in track 1")
    if data_end - data_start > TRACK1_MAX_DATA:
        raise LengthError(data_start + TRACK1_MAX_DATA,
                          f"track 1 holds at most {TRACK1_MAX_DATA} characters")
    if lrc_pos >= 0:
        _check_lrc(text, data_start, data_end, lrc_pos, 0x20, 6, 0x05)
    if data_start == data_end or text[data_start] != "B":
        raise FormatError(data_start, "track 1 format code must be 'B'")
    pan_start = data_start + 1
    i = pan_start
    while i < data_end and text[i] != "^":
        # Alphanumeric card numbers exist on track 1 (loyalty programs); spaces do not belong.
        if text[i] not in ALNUM:
            raise CharacterError(i, f"character {text[i]!r} is not allowed in a card number")
        i += 1
    if i == data_end:
        raise FormatError(i, "missing '^' after the card number")
    _check_pan_length(pan_start, i)
    pan_end = i
    name_start = i + 1
    name_end = text.find("^", name_start, data_end)
    if name_end < 0:
        raise FormatError(data_end, "missing '^' after the name")
    if name_end - name_start > NAME_MAX:
        raise LengthError(name_start + NAME_MAX, f"name longer than {NAME_MAX} characters")
    if name_end - name_start < NAME_MIN:
        raise LengthError(name_start, f"name shorter than {NAME_MIN} characters")
    expiry, i = _fixed_or_absent(text, name_end + 1, data_end, 4, "^", "expiry")
    service_code, i = _fixed_or_absent(text, i, data_end, 3, "^", "service code")
    return {
        "pan": text[pan_start:pan_end],
        "name": text[name_start:name_end],
        "expiry": expiry,
        "service_code": service_code,
        "discretionary": text[i:data_end],
    }


def decode_track1(text: str) -> dict:
    """Track 1 format B with or without sentinels and LRC -> pan, name, expiry, service_code,
    discretionary."""
    text = _require_text(text)
    return _track1(text, 0, _content_end(text))


def decode_track2(text: str) -> dict:
    """Track 2 with or without sentinels and LRC -> pan, expiry, service_code, discretionary."""
    text = _require_text(text)
    return _track2(text, 0, _content_end(text))


def decode_track3(text: str) -> dict:
    """Track 3 (ISO 4909) -> pan, format_code, country_code, discretionary."""
    text = _require_text(text)
    return _track3(text, 0, _content_end(text))


_TRACK_DECODERS = {"track1": _track1, "track2": _track2, "track3": _track3}
# Each track's character range, for telling an LRC character from noise after `?` in a swipe.
_LRC_RANGE = {"track1": (" ", "_"), "track2": ("0", "?"), "track3": ("0", "?")}


def decode_swipe(text: str) -> dict:
    """A keyboard-wedge swipe: several sentinel-framed tracks, optional vendor prefix, CR.

    Each segment runs from a start sentinel to its `?` (plus one LRC character when the next
    character is in the track's set and is not a sentinel), or to the end. `%` opens track 1, `+`
    track 3, `;` track 2 the first time and track 3 after that. Characters between segments (vendor
    prefixes such as `!STCARD A `, separators) are skipped. `%E?`, `;E?`, `+E?` are the reader's
    "could not read this track" markers. The card number is the first good track's, in swipe order.
    -> {"pan", "source", "tracks": {name: decoded track, for every good track}}
    """
    text = _require_text(text)
    end = _content_end(text)
    if end > SWIPE_MAX:
        raise LengthError(SWIPE_MAX, f"a swipe holds at most {SWIPE_MAX} characters")
    tracks: dict[str, dict] = {}
    pan = source = None
    first_error: CardDataError | None = None
    seen_track2 = False
    segments = 0
    i = 0
    while i < end:
        sentinel = text[i]
        if sentinel not in SENTINELS:
            i += 1
            continue
        if sentinel == "%":
            name = "track1"
        elif sentinel == "+" or seen_track2:
            name = "track3"
        else:
            name = "track2"
            seen_track2 = True
        segments += 1
        question = text.find("?", i + 1, end)
        if question < 0:
            segment_end = end
        else:
            segment_end = question + 1
            low, high = _LRC_RANGE[name]
            if segment_end < end and low <= text[segment_end] <= high \
                    and text[segment_end] not in "%;+?":
                segment_end += 1
        is_marker = question == i + 2 and text[i + 1] == "E"
        if not is_marker:
            try:
                decoded = _TRACK_DECODERS[name](text, i, segment_end)
            except CardDataError as error:
                if first_error is None:
                    first_error = error
            else:
                if name not in tracks:
                    tracks[name] = decoded
                if pan is None:
                    pan, source = decoded["pan"], name
        i = segment_end
    if pan is None:
        if first_error is not None:
            raise first_error
        if segments:
            raise UnreadableError(0, "the reader could not read any track")
        raise FormatError(0, "no track start sentinel")
    return {"pan": pan, "source": source, "tracks": tracks}


# --- barcodes -------------------------------------------------------------------------------------


def _barcode_result(symbology: str, data: str, ai: dict | None, pan: str | None) -> dict:
    return {"symbology": symbology, "data": data, "ai": ai, "pan": pan}


def _gs1(text: str, p: int, end: int) -> dict:
    """A GS1 element string from p: AI, value, and GS after every variable-length value that is not
    last (tolerated after fixed-length ones). Checks: known AI, length, character set, check digit,
    no repeated AI."""
    if p < end and text[p] == GS:  # some scanners send the leading FNC1 as GS
        p += 1
    if p == end:
        raise FormatError(p, "empty GS1 element string")
    ai: dict[str, str] = {}
    human = []
    while p < end:
        code = spec = None
        for width in (2, 3, 4):
            if p + width <= end and text[p:p + width] in GS1_AI:
                code = text[p:p + width]
                spec = GS1_AI[code]
                break
        if code is None or spec is None:
            raise FormatError(p, "unknown GS1 application identifier")
        low, high, numeric, check = spec
        v = p + len(code)
        i = v
        while i < end and text[i] != GS and i - v < high:
            c = text[i]
            if not (_is_digit(c) if numeric else c in GS1_CSET82):
                raise CharacterError(i, f"character {c!r} is not allowed in ({code})")
            i += 1
        if i - v < low:
            raise LengthError(i, f"({code}) needs at least {low} characters")
        if low != high and i < end and text[i] != GS:
            raise LengthError(i, f"({code}) holds at most {high} characters")
        if check and _mod10(text, v, i - 1) != ord(text[i - 1]) - 48:
            raise CheckDigitError(i - 1, f"({code}) check digit does not match")
        if code in ai:
            raise FormatError(p, f"({code}) appears twice")
        ai[code] = text[v:i]
        human.append(f"({code}){ai[code]}")
        p = i + 1 if i < end and text[i] == GS else i
    pan = None
    for code in GS1_PAN_AIS:
        value = ai.get(code)
        if value is not None and _is_card_token(value, 0, len(value)):
            pan = value
            break
    return _barcode_result("gs1", "".join(human), ai, pan)


def _uri(text: str, p: int, end: int) -> dict:
    """`tillgate:card/<number>`."""
    card = p + len(URI_PREFIX)
    if not text.startswith(URI_CARD, card, end):
        raise FormatError(card, "expected tillgate:card/<number>")
    return _barcode_result("uri", text[p:end], None, _card_token(text, card + len(URI_CARD), end))


def _url(text: str, p: int, end: int) -> dict:
    """https://host/path?query#fragment: the `card` query parameter, else the last non-empty path
    segment, is the card number."""
    host = p + len(URL_PREFIX)
    i = host
    while i < end and text[i] not in "/?#":
        i += 1
    if i == host:
        raise FormatError(host, "URL without a host")
    path_start = i
    while i < end and text[i] not in "?#":
        i += 1
    path_end = i
    if i < end and text[i] == "?":
        i += 1
        while i < end and text[i] != "#":
            param = i
            while i < end and text[i] not in "&#":
                i += 1
            if text.startswith("card=", param, i):
                number = _card_token(text, param + 5, i)
                return _barcode_result("url", text[p:end], None, number)
            if i < end and text[i] == "&":
                i += 1
    # last non-empty path segment
    seg_end = path_end
    while seg_end > path_start and text[seg_end - 1] == "/":
        seg_end -= 1
    seg_start = seg_end
    while seg_start > path_start and text[seg_start - 1] != "/":
        seg_start -= 1
    if seg_start == seg_end:
        raise FormatError(path_end, "URL carries no card number")
    return _barcode_result("url", text[p:end], None, _card_token(text, seg_start, seg_end))


_RETAIL = {8: "ean-8", 12: "upc-a", 13: "ean-13"}


def decode_barcode(text: str) -> dict:
    """A scanned barcode payload -> {"symbology", "data", "ai", "pan"}.

    Classification, in order: a `]C1` `]e0` `]d2` `]Q3` `]J1` identifier or a GS anywhere -> GS1;
    `tillgate:` -> uri; `https://` (any case) -> url; 8, 12 or 13 digits -> EAN-8, UPC-A, EAN-13
    (check digit verified); anything else -> Code 128 text (ASCII). Other `]xy` identifiers are
    dropped. "pan" is the card number the barcode carries, or None (docs/card-data.md).
    """
    text = _require_text(text)
    end = _content_end(text)
    if end == 0:
        raise FormatError(0, "empty barcode")
    if end > BARCODE_MAX:
        raise LengthError(BARCODE_MAX, f"a barcode holds at most {BARCODE_MAX} characters")
    p = 0
    gs1 = False
    if text[0] == "]":
        if end < 3:
            raise FormatError(0, "incomplete symbology identifier")
        gs1 = text[1:3] in GS1_IDENTIFIERS
        p = 3
    if gs1 or text.find(GS, p, end) >= 0:
        return _gs1(text, p, end)
    if text.startswith(URI_PREFIX, p, end):
        return _uri(text, p, end)
    if _starts_with_ci(text, URL_PREFIX, p, end):
        return _url(text, p, end)
    for i in range(p, end):
        if ord(text[i]) > 127:
            raise CharacterError(i, f"character {text[i]!r} is not allowed in a barcode")
    symbology = _RETAIL.get(end - p)
    if symbology is not None and all(_is_digit(text[i]) for i in range(p, end)):
        if _mod10(text, p, end - 1) != ord(text[end - 1]) - 48:
            raise CheckDigitError(end - 1, f"{symbology} check digit does not match")
        return _barcode_result(symbology, text[p:end], None, None)
    pan = text[p:end] if _is_card_token(text, p, end) else None
    return _barcode_result("code128", text[p:end], None, pan)


# --- card number from any form --------------------------------------------------------------------


def _is_barcode_form(text: str, end: int) -> bool:
    return (text.startswith("]")
            or text.startswith(URI_PREFIX, 0, end)
            or _starts_with_ci(text, URL_PREFIX, 0, end)
            or text.find(GS, 0, end) >= 0)


def card_number(text: str) -> str:
    """The card number in any form a till sends: bare number, track 1/2/3, swipe, barcode.

    Dispatch, in order: barcode forms (`]` identifier, `tillgate:`, `https://`, GS) -> the barcode's
    pan; a start sentinel `%` `;` `+` anywhere -> swipe; `^` -> bare track 1; `=` -> bare track 2;
    ASCII letters and digits -> the number itself (at most 19); anything else -> barcode.
    """
    text = _require_text(text)
    end = _content_end(text)
    if end == 0:
        raise FormatError(0, "no card data")
    if not _is_barcode_form(text, end):
        for i in range(end):
            if text[i] in SENTINELS:
                return decode_swipe(text)["pan"]
        if text.find("^", 0, end) >= 0:
            return _track1(text, 0, end)["pan"]
        if text.find("=", 0, end) >= 0:
            return _track2(text, 0, end)["pan"]
        if all(text[i] in ALNUM for i in range(end)):
            if end > PAN_MAX:
                raise LengthError(PAN_MAX, f"card number longer than {PAN_MAX} characters")
            return text[:end]
    barcode = decode_barcode(text)
    if barcode["pan"] is None:
        raise FormatError(0, f"a {barcode['symbology']} barcode carries no card number")
    return barcode["pan"]


# --- check digits ---------------------------------------------------------------------------------


def _digits_only(text: str, what: str) -> None:
    for i, c in enumerate(text):
        if not _is_digit(c):
            raise CharacterError(i, f"character {c!r} is not allowed in {what}")


def luhn_valid(number: str) -> bool:
    """True when `number` is all digits (at least 2) and passes the Luhn (mod 10) check."""
    number = _require_text(number)
    if len(number) < 2 or not all(_is_digit(c) for c in number):
        return False
    return luhn_check_digit(number[:-1]) == number[-1]


def luhn_check_digit(partial: str) -> str:
    """The digit that, appended to `partial` (digits), makes it pass the Luhn check."""
    _digits_only(_require_text(partial), "a Luhn payload")
    total = 0
    double = True  # the digit left of the check digit is doubled
    for i in range(len(partial) - 1, -1, -1):
        d = ord(partial[i]) - 48
        if double:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        double = not double
    return str((10 - total % 10) % 10)


def gs1_check_digit(digits: str) -> str:
    """The GS1 mod-10 check digit (UPC, EAN, GTIN, SSCC, GLN) to append to `digits`."""
    _digits_only(_require_text(digits), "a GS1 key")
    return str(_mod10(digits, 0, len(digits)))


# --- generation (not a hot path: only here and in the facade) -------------------------------------

_DIGITS = "0123456789"
_ALNUM_UPPER = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_GENERATE_TRIES = 10_000


class Draws(Protocol):
    """Where random choices come from: the `secrets` module, or any object with its two
    functions (gateway/issuance/derived.py draws them from a keyed stream, to issue again what a
    lost answer had issued)."""

    def choice(self, seq: str, /) -> str: ...

    def randbelow(self, exclusive_upper_bound: int, /) -> int: ...


def _random_number(prefix: str, length: int, luhn: bool, alphabet: str, draw: Draws) -> str:
    body = prefix + "".join(draw.choice(alphabet) for _ in range(length - len(prefix) - luhn))
    return body + luhn_check_digit(body) if luhn else body


def generate_card_number(prefix: str, length: int, luhn: bool, range_low: str | None = None,
                         range_high: str | None = None, alphanumeric: bool = False,
                         draw: Draws = secrets) -> str:
    """A new card number for a program: uniformly random (secrets) among the numbers of `length`
    that start with `prefix`, lie in [range_low, range_high] when given, and pass Luhn when `luhn`.

    Never sequential: each number is an independent draw, so a seen number says nothing about the
    next. Uniqueness against issued cards is the store's job.
    """
    if not CARD_MIN <= length <= CARD_MAX:
        raise ValueError(f"card number length must be {CARD_MIN} to {CARD_MAX}")
    alphabet = _ALNUM_UPPER if alphanumeric else _DIGITS
    if alphanumeric and (luhn or range_low is not None or range_high is not None):
        raise ValueError("alphanumeric card numbers take neither Luhn nor a numeric range")
    if any(c not in alphabet for c in prefix) or len(prefix) + luhn >= length:
        raise ValueError("prefix must be shorter than the number and use its characters")
    if (range_low is None) != (range_high is None):
        raise ValueError("range_low and range_high go together")
    if range_low is None or range_high is None:
        return _random_number(prefix, length, luhn, alphabet, draw)
    if not (len(range_low) == len(range_high) == length and range_low.isdigit()
            and range_high.isdigit() and range_low <= range_high):
        raise ValueError(f"range bounds must be {length}-digit numbers, low <= high")
    # Draw uniformly in the range (over the number without its check digit when Luhn), reject what
    # misses the prefix: uniform over the accepted set. A range that barely meets the prefix fails.
    low, high = int(range_low), int(range_high)
    if luhn:
        low, high = low // 10, high // 10
    width = length - luhn
    for _ in range(_GENERATE_TRIES):
        body = str(low + draw.randbelow(high - low + 1)).zfill(width)
        number = body + luhn_check_digit(body) if luhn else body
        if number.startswith(prefix) and range_low <= number <= range_high:
            return number
    raise ValueError("range and prefix leave (almost) no numbers to draw from")


def generate_pin(length: int, draw: Draws = secrets) -> str:
    """A PIN of `length` (4-12) random digits."""
    if not 4 <= length <= 12:
        raise ValueError("PIN length must be 4 to 12")
    return "".join(draw.choice(_DIGITS) for _ in range(length))


# --- bulk -----------------------------------------------------------------------------------------

DECODERS = {
    "track1": decode_track1,
    "track2": decode_track2,
    "track3": decode_track3,
    "swipe": decode_swipe,
    "barcode": decode_barcode,
    "card": card_number,
}


def decode_many(kind: str, items: list[str]) -> list:
    """Decode every item with the decoder named `kind` (track1, track2, track3, swipe, barcode,
    card): a list of results where a refused item holds its CardDataError instead of raising."""
    decoder = DECODERS.get(kind)
    if decoder is None:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(DECODERS)}")
    results: list = []
    for item in items:
        try:
            results.append(decoder(item))
        except CardDataError as error:
            results.append(error)
    return results

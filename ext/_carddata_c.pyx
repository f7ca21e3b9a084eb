# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Card-data decoders, compiled twin of protocols/_carddata_py.py (the specification).

Same functions, same results, same refusals (class, kind, position, message): read the pure module
for what each rule means; this file only says how it is made fast. Characters are read in place
from the str's own buffer (PyUnicode_READ, any kind) in typed loops, fields are cut with
PyUnicode_Substring, and Python objects are made only for the results and for refusals. The GS1 AI
table is the pure module's, loaded once into C arrays. Built by setup.py into protocols._carddata_c.
"""

from cpython.list cimport PyList_New, PyList_SET_ITEM
from libc.string cimport memchr
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.unicode cimport (
    PyUnicode_DATA,
    PyUnicode_GET_LENGTH,
    PyUnicode_KIND,
    PyUnicode_READ,
    PyUnicode_Substring,
)

from protocols import _carddata_py as _spec
from protocols.carddata_errors import (
    CardDataError,
    CharacterError,
    CheckDigitError,
    FormatError,
    LengthError,
    LRCError,
    UnreadableError,
)

cdef enum:
    TRACK1_MAX_DATA = 76
    TRACK2_MAX_DATA = 37
    TRACK3_MAX_DATA = 104
    PAN_MAX = 19
    NAME_MIN = 2
    NAME_MAX = 26
    CARD_MIN = 8
    CARD_MAX = 19
    SWIPE_MAX = 1024
    BARCODE_MAX = 4096
    GS = 0x1D

assert _spec.GS1_PAN_AIS == ("8004", "8018", "21"), "GS1 pan choice differs from the specification"
assert (TRACK1_MAX_DATA, TRACK2_MAX_DATA, TRACK3_MAX_DATA, PAN_MAX, NAME_MIN, NAME_MAX, CARD_MIN,
        CARD_MAX, SWIPE_MAX, BARCODE_MAX) == (
    _spec.TRACK1_MAX_DATA, _spec.TRACK2_MAX_DATA, _spec.TRACK3_MAX_DATA, _spec.PAN_MAX,
    _spec.NAME_MIN, _spec.NAME_MAX, _spec.CARD_MIN, _spec.CARD_MAX, _spec.SWIPE_MAX,
    _spec.BARCODE_MAX), "limits differ from the specification module"

cdef extern from "Python.h":
    int PyGC_Enable()  # each returns whether the collector was enabled before the call
    int PyGC_Disable()

# --- the GS1 AI table, indexed by width * 10000 + the AI's digits ---------------------------------

cdef enum:
    AI_KNOWN = 1
    AI_NUMERIC = 2
    AI_CHECK = 4

cdef unsigned char ai_min[50000]
cdef unsigned char ai_max[50000]
cdef unsigned char ai_flags[50000]
cdef unsigned char cset82[128]
# Each AI's own str, made once: shared keys whose hash is already computed.
cdef PyObject *ai_codes[50000]
cdef enum:
    AI_8004 = 48004
    AI_8018 = 48018
    AI_21 = 20021


def _load_tables():
    for code, (low, high, numeric, check) in _spec.GS1_AI.items():
        index = len(code) * 10000 + int(code)
        Py_INCREF(code)  # held for the module's lifetime
        ai_codes[index] = <PyObject *>code
        ai_min[index] = low
        ai_max[index] = high
        ai_flags[index] = AI_KNOWN | (AI_NUMERIC if numeric else 0) | (AI_CHECK if check else 0)
    for c in _spec.GS1_CSET82:
        cset82[ord(c)] = 1


_load_tables()

# --- reading a str in place -----------------------------------------------------------------------

cdef struct Buf:
    int kind
    void *data


cdef inline Buf buf_of(str text):
    cdef Buf b
    b.kind = PyUnicode_KIND(text)
    b.data = PyUnicode_DATA(text)
    return b


cdef inline Py_UCS4 at(Buf b, Py_ssize_t i) noexcept:
    return PyUnicode_READ(b.kind, b.data, i)


cdef inline bint is_digit(Py_UCS4 c) noexcept:
    return 48 <= c <= 57


cdef inline bint is_alnum(Py_UCS4 c) noexcept:
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122)


cdef inline Py_ssize_t find(Buf b, Py_UCS4 c, Py_ssize_t start, Py_ssize_t end) noexcept:
    cdef Py_ssize_t i
    cdef const char *hit
    if start >= end:
        return -1
    if b.kind == 1:  # one byte per character, the usual case: libc's vectorised memchr
        hit = <const char *>memchr(<const char *>b.data + start, <int>c, end - start)
        return -1 if hit is NULL else hit - <const char *>b.data
    for i in range(start, end):
        if at(b, i) == c:
            return i
    return -1


# Short digit fields (format code, expiry, service code, country code) repeat across a bulk file;
# each distinct one is made once and shared, like CPython's own small-int cache. Index: width * 10000
# + value; the entries live as long as the module.
cdef PyObject *short_digits[50000]


cdef object digit_field(str text, Buf b, Py_ssize_t i, Py_ssize_t width):
    """text[i:i + width], known to be 2 to 4 ASCII digits."""
    cdef Py_ssize_t k, index = 0
    cdef object value
    for k in range(i, i + width):
        index = index * 10 + (<int>at(b, k) - 48)
    index += width * 10000
    if short_digits[index] is NULL:
        value = PyUnicode_Substring(text, i, i + width)
        Py_INCREF(value)
        short_digits[index] = <PyObject *>value
    return <object>short_digits[index]


cdef inline str shown(Py_UCS4 c):
    cdef str one = c  # a Py_UCS4 becomes a one-character str
    return repr(one)


cdef str require_text(object text):
    if type(text) is not str and not isinstance(text, str):
        raise TypeError(f"card data must be str, not {type(text).__name__}")
    return <str>text


cdef inline Py_ssize_t content_end(str text, Buf b) noexcept:
    cdef Py_ssize_t end = PyUnicode_GET_LENGTH(text)
    while end > 0 and (at(b, end - 1) == 13 or at(b, end - 1) == 10):
        end -= 1
    return end


cdef int mod10(Buf b, Py_ssize_t start, Py_ssize_t end) noexcept:
    cdef long total = 0
    cdef int weight = 3
    cdef Py_ssize_t i = end - 1
    while i >= start:
        total += (<int>at(b, i) - 48) * weight
        weight = 4 - weight
        i -= 1
    return (10 - total % 10) % 10


cdef bint starts_with(Buf b, Py_ssize_t p, Py_ssize_t end, const char *prefix, Py_ssize_t n,
                      bint ascii_case) noexcept:
    cdef Py_ssize_t k
    cdef Py_UCS4 c, want
    if end - p < n:
        return False
    for k in range(n):
        c = at(b, p + k)
        want = <unsigned char>prefix[k]
        if c != want and not (ascii_case and 65 <= c <= 90 and <long>c + 32 == <long>want):
            return False
    return True


cdef bint is_card_token(Buf b, Py_ssize_t start, Py_ssize_t end) noexcept:
    cdef Py_ssize_t i
    if not (CARD_MIN <= end - start <= CARD_MAX):
        return False
    for i in range(start, end):
        if not is_alnum(at(b, i)):
            return False
    return True


cdef str card_token(str text, Buf b, Py_ssize_t start, Py_ssize_t end):
    cdef Py_ssize_t i
    if start == end:
        raise FormatError(start, "no card number")
    for i in range(start, end):
        if not is_alnum(at(b, i)):
            raise CharacterError(i, f"character {shown(at(b, i))} is not allowed in a card number")
    if end - start > CARD_MAX:
        raise LengthError(start + CARD_MAX, f"card number longer than {CARD_MAX} characters")
    if end - start < CARD_MIN:
        raise LengthError(end, f"card number shorter than {CARD_MIN} characters")
    return PyUnicode_Substring(text, start, end)


# --- magnetic stripe ------------------------------------------------------------------------------

cdef struct Frame:
    Py_ssize_t data_start
    Py_ssize_t data_end
    Py_ssize_t lrc_pos
    Py_ssize_t bad  # first character outside the track's set, or -1
    Py_ssize_t separator  # first field separator (`^` track 1, `=` tracks 2 and 3), or -1


cdef inline bint track_char(Py_UCS4 c, bint track1) noexcept:
    if track1:
        return 32 <= c <= 95 and c != 37  # space to '_', but not the start sentinel '%'
    return 48 <= c <= 57 or c == 61  # digits and '='


cdef int frame(Buf b, Py_ssize_t start, Py_ssize_t end, Py_UCS4 s1, Py_UCS4 s2, bint track1,
               Frame *f) except -1:
    """The pure module's _frame, with its character-set pass and separator search fused into the
    one scan for `?`; the caller raises the character error after the framing checks, as there."""
    cdef Py_ssize_t i, bad = -1, first_separator = -1  # locals, not f.*: they stay in registers
    cdef Py_ssize_t question, limit
    cdef const unsigned char *bytes1
    cdef Py_UCS4 c
    cdef Py_UCS4 separator = 94 if track1 else 61
    f.data_start = start
    if start < end:
        c = at(b, start)
        if c == s1 or c == s2:
            f.data_start = start + 1
    i = f.data_start
    if b.kind == 1:  # the usual case: memchr finds '?', then a plain byte loop checks the data
        question = find(b, 63, i, end)
        limit = end if question < 0 else question
        bytes1 = <const unsigned char *>b.data
        while i < limit:
            c = bytes1[i]
            if bad < 0 and not track_char(c, track1):
                bad = i
            if c == separator and first_separator < 0:
                first_separator = i
            i += 1
    else:
        while i < end:
            c = at(b, i)
            if c == 63:  # '?'
                break
            if bad < 0 and not track_char(c, track1):
                bad = i
            if c == separator and first_separator < 0:
                first_separator = i
            i += 1
    f.bad = bad
    f.separator = first_separator
    if i == end:
        f.data_end = end
        f.lrc_pos = -1
        return 0
    if end - i > 2:
        raise FormatError(i + 2, "unexpected characters after the end sentinel")
    f.data_end = i
    f.lrc_pos = i + 1 if i + 1 < end else -1
    return 0


cdef int check_lrc(Buf b, Frame *f, int offset, int bits, int start_code) except -1:
    cdef int lrc = start_code ^ (63 - offset)
    cdef long found
    cdef Py_ssize_t i
    for i in range(f.data_start, f.data_end):
        lrc ^= <int>at(b, i) - offset
    found = <long>at(b, f.lrc_pos) - offset
    if not (0 <= found < (1 << bits)) or found != lrc:
        raise LRCError(f.lrc_pos, f"LRC mismatch: expected {shown(lrc + offset)}")
    return 0


cdef object fixed_or_absent(str text, Buf b, Py_ssize_t i, Py_ssize_t end, int width,
                            Py_UCS4 marker, str field, Py_ssize_t *next_i):
    cdef Py_ssize_t k
    if i == end:
        next_i[0] = i
        return None
    if at(b, i) == marker:
        next_i[0] = i + 1
        return None
    for k in range(i, i + width):
        if k == end or not is_digit(at(b, k)):
            raise FormatError(k, f"{field} needs {width} digits")
    next_i[0] = i + width
    return digit_field(text, b, i, width)


cdef int check_pan_length(Py_ssize_t pan_start, Py_ssize_t pan_end) except -1:
    if pan_start == pan_end:
        raise FormatError(pan_start, "no card number")
    if pan_end - pan_start > PAN_MAX:
        raise LengthError(pan_start + PAN_MAX, f"card number longer than {PAN_MAX} characters")
    return 0


cdef int numeric_track(Buf b, Py_ssize_t start, Py_ssize_t end, Py_UCS4 s1, Py_UCS4 s2,
                       Py_ssize_t max_data, str track, Frame *f) except -1:
    cdef Py_ssize_t i
    cdef Py_UCS4 c
    frame(b, start, end, s1, s2, False, f)
    if f.bad >= 0:
        raise CharacterError(f.bad, f"character {shown(at(b, f.bad))} is not allowed in {track}")
    if f.data_end - f.data_start > max_data:
        raise LengthError(f.data_start + max_data, f"{track} holds at most {max_data} characters")
    if f.lrc_pos >= 0:
        check_lrc(b, f, 0x30, 4, 0x0B)
    return 0


cdef dict track2(str text, Buf b, Py_ssize_t start, Py_ssize_t end):
    cdef Frame f
    cdef Py_ssize_t separator, pan_end, i
    numeric_track(b, start, end, 59, 59, TRACK2_MAX_DATA, "track 2", &f)  # ';'
    separator = f.separator
    pan_end = f.data_end if separator < 0 else separator
    check_pan_length(f.data_start, pan_end)
    expiry = service_code = None
    i = f.data_end
    if separator >= 0:
        expiry = fixed_or_absent(text, b, separator + 1, f.data_end, 4, 61, "expiry", &i)
        service_code = fixed_or_absent(text, b, i, f.data_end, 3, 61, "service code", &i)
    return {
        "pan": PyUnicode_Substring(text, f.data_start, pan_end),
        "expiry": expiry,
        "service_code": service_code,
        "discretionary": PyUnicode_Substring(text, i, f.data_end),
    }


cdef dict track3(str text, Buf b, Py_ssize_t start, Py_ssize_t end):
    cdef Frame f
    cdef Py_ssize_t separator, pan_start, pan_end, i, k
    numeric_track(b, start, end, 59, 43, TRACK3_MAX_DATA, "track 3", &f)  # ';' '+'
    for k in range(f.data_start, f.data_start + 2):
        if k == f.data_end or at(b, k) == 61:
            raise FormatError(k, "track 3 format code needs 2 digits")
    pan_start = f.data_start + 2
    separator = f.separator  # the format code holds no '=': it is the first one after it
    pan_end = f.data_end if separator < 0 else separator
    check_pan_length(pan_start, pan_end)
    country = None
    i = f.data_end
    if separator >= 0:
        country = fixed_or_absent(text, b, separator + 1, f.data_end, 3, 61, "country code", &i)
    return {
        "pan": PyUnicode_Substring(text, pan_start, pan_end),
        "format_code": digit_field(text, b, f.data_start, 2),
        "country_code": country,
        "discretionary": PyUnicode_Substring(text, i, f.data_end),
    }


cdef dict track1(str text, Buf b, Py_ssize_t start, Py_ssize_t end):
    cdef Frame f
    cdef Py_ssize_t i, pan_start, pan_end, name_start, name_end
    cdef Py_UCS4 c
    frame(b, start, end, 37, 37, True, &f)  # '%'
    if f.bad >= 0:
        raise CharacterError(f.bad, f"character {shown(at(b, f.bad))} is not allowed in track 1")
    if f.data_end - f.data_start > TRACK1_MAX_DATA:
        raise LengthError(f.data_start + TRACK1_MAX_DATA,
                          f"track 1 holds at most {TRACK1_MAX_DATA} characters")
    if f.lrc_pos >= 0:
        check_lrc(b, &f, 0x20, 6, 0x05)
    if f.data_start == f.data_end or at(b, f.data_start) != 66:  # 'B'
        raise FormatError(f.data_start, "track 1 format code must be 'B'")
    pan_start = f.data_start + 1
    i = pan_start
    while i < f.data_end:
        c = at(b, i)
        if c == 94:  # '^'
            break
        if not is_alnum(c):
            raise CharacterError(i, f"character {shown(c)} is not allowed in a card number")
        i += 1
    if i == f.data_end:
        raise FormatError(i, "missing '^' after the card number")
    check_pan_length(pan_start, i)
    pan_end = i
    name_start = i + 1
    name_end = find(b, 94, name_start, f.data_end)
    if name_end < 0:
        raise FormatError(f.data_end, "missing '^' after the name")
    if name_end - name_start > NAME_MAX:
        raise LengthError(name_start + NAME_MAX, f"name longer than {NAME_MAX} characters")
    if name_end - name_start < NAME_MIN:
        raise LengthError(name_start, f"name shorter than {NAME_MIN} characters")
    expiry = fixed_or_absent(text, b, name_end + 1, f.data_end, 4, 94, "expiry", &i)
    service_code = fixed_or_absent(text, b, i, f.data_end, 3, 94, "service code", &i)
    return {
        "pan": PyUnicode_Substring(text, pan_start, pan_end),
        "name": PyUnicode_Substring(text, name_start, name_end),
        "expiry": expiry,
        "service_code": service_code,
        "discretionary": PyUnicode_Substring(text, i, f.data_end),
    }


cdef dict c_track1(str text):
    cdef Buf b = buf_of(text)
    return track1(text, b, 0, content_end(text, b))


cdef dict c_track2(str text):
    cdef Buf b = buf_of(text)
    return track2(text, b, 0, content_end(text, b))


cdef dict c_track3(str text):
    cdef Buf b = buf_of(text)
    return track3(text, b, 0, content_end(text, b))


def decode_track1(text):
    return c_track1(require_text(text))


def decode_track2(text):
    return c_track2(require_text(text))


def decode_track3(text):
    return c_track3(require_text(text))


cdef enum:  # bits, so that a set of tracks is an int
    T1 = 1
    T2 = 2
    T3 = 4


cdef inline bint is_sentinel(Py_UCS4 c) noexcept:
    return c == 37 or c == 59 or c == 43  # % ; +


cdef dict c_swipe(str text):
    cdef Buf b = buf_of(text)
    cdef Py_ssize_t end = content_end(text, b)
    cdef Py_ssize_t i = 0, question, segment_end
    cdef Py_UCS4 sentinel, c
    cdef int name, have = 0
    cdef bint seen_track2 = False, in_set
    cdef Py_ssize_t segments = 0
    cdef dict tracks = {}
    cdef dict decoded
    cdef object pan = None, source = None, first_error = None
    if end > SWIPE_MAX:
        raise LengthError(SWIPE_MAX, f"a swipe holds at most {SWIPE_MAX} characters")
    while i < end:
        sentinel = at(b, i)
        if not is_sentinel(sentinel):
            i += 1
            continue
        if sentinel == 37:
            name = T1
        elif sentinel == 43 or seen_track2:
            name = T3
        else:
            name = T2
            seen_track2 = True
        segments += 1
        question = find(b, 63, i + 1, end)
        if question < 0:
            segment_end = end
        else:
            segment_end = question + 1
            if segment_end < end:
                c = at(b, segment_end)
                if name == T1:
                    in_set = 32 <= c <= 95
                else:
                    in_set = 48 <= c <= 63
                if in_set and not is_sentinel(c) and c != 63:
                    segment_end += 1
        if not (question == i + 2 and at(b, i + 1) == 69):  # the reader's `E` marker
            try:
                if name == T1:
                    decoded = track1(text, b, i, segment_end)
                elif name == T2:
                    decoded = track2(text, b, i, segment_end)
                else:
                    decoded = track3(text, b, i, segment_end)
            except CardDataError as error:
                if first_error is None:
                    first_error = error
            else:
                if not (have & name):  # a repeated track (a swipe sent twice) keeps the first
                    have |= name
                    key = "track1" if name == T1 else ("track2" if name == T2 else "track3")
                    tracks[key] = decoded
                    if pan is None:
                        pan = decoded["pan"]
                        source = key
        i = segment_end
    if pan is None:
        if first_error is not None:
            raise first_error
        if segments:
            raise UnreadableError(0, "the reader could not read any track")
        raise FormatError(0, "no track start sentinel")
    return {"pan": pan, "source": source, "tracks": tracks}


def decode_swipe(text):
    return c_swipe(require_text(text))


# --- barcodes -------------------------------------------------------------------------------------

cdef inline dict barcode_result(str symbology, str data, object ai, object pan):
    return {"symbology": symbology, "data": data, "ai": ai, "pan": pan}


cdef inline bint carries_card(object value):
    return value is not None and is_card_token(buf_of(<str>value), 0,
                                               PyUnicode_GET_LENGTH(value))


cdef dict gs1(str text, Buf b, Py_ssize_t p, Py_ssize_t end):
    cdef Py_ssize_t width, index, v, i, k, digits
    cdef int low, high, flags
    cdef bint allowed
    cdef Py_UCS4 c
    cdef dict ai = {}
    cdef object giai = None, gsrn = None, serial = None  # the AIs that may carry a card number
    # The human-readable "(AI)value..." form is written here: every accepted character is ASCII,
    # and it is at most twice the input (two parentheses per element of at least 3 characters).
    cdef char human[2 * BARCODE_MAX + 8]
    cdef Py_ssize_t n = 0
    if p < end and at(b, p) == GS:
        p += 1
    if p == end:
        raise FormatError(p, "empty GS1 element string")
    while p < end:
        index = -1
        digits = 0
        for width in range(1, 5):
            if p + width > end or not is_digit(at(b, p + width - 1)):
                break
            digits = digits * 10 + (<int>at(b, p + width - 1) - 48)
            if width >= 2 and ai_flags[width * 10000 + digits] & AI_KNOWN:
                index = width * 10000 + digits
                break
        if index < 0:
            raise FormatError(p, "unknown GS1 application identifier")
        code = <object>ai_codes[index]
        low = ai_min[index]
        high = ai_max[index]
        flags = ai_flags[index]
        v = p + width
        i = v
        while i < end and i - v < high:
            c = at(b, i)
            if c == GS:
                break
            if flags & AI_NUMERIC:
                allowed = is_digit(c)
            else:
                allowed = c < 128 and cset82[c] != 0
            if not allowed:
                raise CharacterError(i, f"character {shown(c)} is not allowed in ({code})")
            i += 1
        if i - v < low:
            raise LengthError(i, f"({code}) needs at least {low} characters")
        if low != high and i < end and at(b, i) != GS:
            raise LengthError(i, f"({code}) holds at most {high} characters")
        if flags & AI_CHECK and mod10(b, v, i - 1) != <int>at(b, i - 1) - 48:
            raise CheckDigitError(i - 1, f"({code}) check digit does not match")
        if code in ai:
            raise FormatError(p, f"({code}) appears twice")
        value = PyUnicode_Substring(text, v, i)
        ai[code] = value
        if index == AI_8004:
            giai = value
        elif index == AI_8018:
            gsrn = value
        elif index == AI_21:
            serial = value
        human[n] = 40  # '('
        n += 1
        for k in range(p, v):
            human[n] = <char>at(b, k)
            n += 1
        human[n] = 41  # ')'
        n += 1
        for k in range(v, i):
            human[n] = <char>at(b, k)
            n += 1
        p = i + 1 if i < end and at(b, i) == GS else i
    if carries_card(giai):
        pan = giai
    elif carries_card(gsrn):
        pan = gsrn
    elif carries_card(serial):
        pan = serial
    else:
        pan = None
    return barcode_result("gs1", human[:n].decode("ascii"), ai, pan)


cdef dict uri(str text, Buf b, Py_ssize_t p, Py_ssize_t end):
    cdef Py_ssize_t card = p + 9  # len("tillgate:")
    if not starts_with(b, card, end, b"card/", 5, False):
        raise FormatError(card, "expected tillgate:card/<number>")
    return barcode_result("uri", PyUnicode_Substring(text, p, end), None,
                          card_token(text, b, card + 5, end))


cdef dict url(str text, Buf b, Py_ssize_t p, Py_ssize_t end):
    cdef Py_ssize_t host = p + 8  # len("https://")
    cdef Py_ssize_t i = host, path_start, path_end, param, seg_start, seg_end
    cdef Py_UCS4 c
    while i < end:
        c = at(b, i)
        if c == 47 or c == 63 or c == 35:  # / ? #
            break
        i += 1
    if i == host:
        raise FormatError(host, "URL without a host")
    path_start = i
    while i < end:
        c = at(b, i)
        if c == 63 or c == 35:
            break
        i += 1
    path_end = i
    if i < end and at(b, i) == 63:
        i += 1
        while i < end and at(b, i) != 35:
            param = i
            while i < end:
                c = at(b, i)
                if c == 38 or c == 35:  # & #
                    break
                i += 1
            if starts_with(b, param, i, b"card=", 5, False):
                return barcode_result("url", PyUnicode_Substring(text, p, end), None,
                                      card_token(text, b, param + 5, i))
            if i < end and at(b, i) == 38:
                i += 1
    seg_end = path_end
    while seg_end > path_start and at(b, seg_end - 1) == 47:
        seg_end -= 1
    seg_start = seg_end
    while seg_start > path_start and at(b, seg_start - 1) != 47:
        seg_start -= 1
    if seg_start == seg_end:
        raise FormatError(path_end, "URL carries no card number")
    return barcode_result("url", PyUnicode_Substring(text, p, end), None,
                          card_token(text, b, seg_start, seg_end))


cdef dict c_barcode(str text):
    cdef Buf b = buf_of(text)
    cdef Py_ssize_t end = content_end(text, b)
    cdef Py_ssize_t p = 0, i, n
    cdef bint is_gs1 = False, digits
    cdef Py_UCS4 c, c1, c2
    cdef str symbology
    if end == 0:
        raise FormatError(0, "empty barcode")
    if end > BARCODE_MAX:
        raise LengthError(BARCODE_MAX, f"a barcode holds at most {BARCODE_MAX} characters")
    if at(b, 0) == 93:  # ']'
        if end < 3:
            raise FormatError(0, "incomplete symbology identifier")
        c1 = at(b, 1)
        c2 = at(b, 2)
        is_gs1 = ((c1 == 67 and c2 == 49) or (c1 == 101 and c2 == 48) or (c1 == 100 and c2 == 50)
                  or (c1 == 81 and c2 == 51) or (c1 == 74 and c2 == 49))  # C1 e0 d2 Q3 J1
        p = 3
    if is_gs1 or find(b, GS, p, end) >= 0:
        return gs1(text, b, p, end)
    if starts_with(b, p, end, b"tillgate:", 9, False):
        return uri(text, b, p, end)
    if starts_with(b, p, end, b"https://", 8, True):
        return url(text, b, p, end)
    digits = True
    for i in range(p, end):
        c = at(b, i)
        if c > 127:
            raise CharacterError(i, f"character {shown(c)} is not allowed in a barcode")
        if not is_digit(c):
            digits = False
    n = end - p
    if digits and (n == 8 or n == 12 or n == 13):
        symbology = "ean-8" if n == 8 else ("upc-a" if n == 12 else "ean-13")
        if mod10(b, p, end - 1) != <int>at(b, end - 1) - 48:
            raise CheckDigitError(end - 1, f"{symbology} check digit does not match")
        return barcode_result(symbology, PyUnicode_Substring(text, p, end), None, None)
    data = PyUnicode_Substring(text, p, end)
    return barcode_result("code128", data, None, data if is_card_token(b, p, end) else None)


def decode_barcode(text):
    return c_barcode(require_text(text))


# --- card number from any form --------------------------------------------------------------------

cdef str c_card_number(str text):
    cdef Buf b = buf_of(text)
    cdef Py_ssize_t end = content_end(text, b)
    cdef Py_ssize_t i
    cdef bint alnum = True
    cdef Py_UCS4 c
    if end == 0:
        raise FormatError(0, "no card data")
    if not (at(b, 0) == 93 or starts_with(b, 0, end, b"tillgate:", 9, False)
            or starts_with(b, 0, end, b"https://", 8, True) or find(b, GS, 0, end) >= 0):
        for i in range(end):
            c = at(b, i)
            if is_sentinel(c):
                return c_swipe(text)["pan"]
            if not is_alnum(c):
                alnum = False
        if find(b, 94, 0, end) >= 0:
            return track1(text, b, 0, end)["pan"]
        if find(b, 61, 0, end) >= 0:
            return track2(text, b, 0, end)["pan"]
        if alnum:
            if end > PAN_MAX:
                raise LengthError(PAN_MAX, f"card number longer than {PAN_MAX} characters")
            return PyUnicode_Substring(text, 0, end)
    barcode = c_barcode(text)
    if barcode["pan"] is None:
        raise FormatError(0, f"a {barcode['symbology']} barcode carries no card number")
    return barcode["pan"]


def card_number(text):
    return c_card_number(require_text(text))


# --- check digits ---------------------------------------------------------------------------------

cdef int digits_only(str text, Buf b, str what) except -1:
    cdef Py_ssize_t i
    for i in range(PyUnicode_GET_LENGTH(text)):
        if not is_digit(at(b, i)):
            raise CharacterError(i, f"character {shown(at(b, i))} is not allowed in {what}")
    return 0


cdef int luhn_digit(Buf b, Py_ssize_t n) noexcept:
    cdef long total = 0
    cdef int d
    cdef bint double = True
    cdef Py_ssize_t i = n - 1
    while i >= 0:
        d = <int>at(b, i) - 48
        if double:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        double = not double
        i -= 1
    return (10 - total % 10) % 10


def luhn_valid(number):
    cdef str text = require_text(number)
    cdef Buf b = buf_of(text)
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text), i
    if n < 2:
        return False
    for i in range(n):
        if not is_digit(at(b, i)):
            return False
    return luhn_digit(b, n - 1) == <int>at(b, n - 1) - 48


def luhn_check_digit(partial):
    cdef str text = require_text(partial)
    cdef Buf b = buf_of(text)
    digits_only(text, b, "a Luhn payload")
    return chr(48 + luhn_digit(b, PyUnicode_GET_LENGTH(text)))


def gs1_check_digit(digits):
    cdef str text = require_text(digits)
    cdef Buf b = buf_of(text)
    digits_only(text, b, "a GS1 key")
    return chr(48 + mod10(b, 0, PyUnicode_GET_LENGTH(text)))


# Generation is not a hot path: the specification's own functions.
generate_card_number = _spec.generate_card_number
generate_pin = _spec.generate_pin

# --- bulk -----------------------------------------------------------------------------------------

cdef enum:
    K_TRACK1 = 1
    K_TRACK2 = 2
    K_TRACK3 = 3
    K_SWIPE = 4
    K_BARCODE = 5
    K_CARD = 6

_KINDS = {"track1": K_TRACK1, "track2": K_TRACK2, "track3": K_TRACK3, "swipe": K_SWIPE,
          "barcode": K_BARCODE, "card": K_CARD}


cdef object decode_one(int k, str text):
    if k == K_TRACK2:
        return c_track2(text)
    if k == K_TRACK1:
        return c_track1(text)
    if k == K_SWIPE:
        return c_swipe(text)
    if k == K_BARCODE:
        return c_barcode(text)
    if k == K_TRACK3:
        return c_track3(text)
    return c_card_number(text)


def decode_many(kind, items):
    """Decode every item with the decoder named `kind`; a refused item holds its CardDataError."""
    cdef int k
    cdef Py_ssize_t i = 0, n
    cdef list todo, results
    cdef object result
    code = _KINDS.get(kind)
    if code is None:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(_KINDS)}")
    k = code
    todo = list(items)  # a private copy: nothing can resize it under the unchecked indexing
    n = len(todo)
    results = PyList_New(n)
    # The results are acyclic, yet swipe and GS1 results are GC-tracked containers: without this
    # the collector would sweep the young generation every 700 of them (15% of a swipe batch).
    cdef int collecting = PyGC_Disable()
    try:
        # One try block per refusal, not per item: the good path pays no exception setup.
        while i < n:
            try:
                while i < n:
                    result = decode_one(k, require_text(todo[i]))
                    Py_INCREF(result)  # PyList_SET_ITEM steals a reference
                    PyList_SET_ITEM(results, i, result)
                    i += 1
            except CardDataError as error:
                Py_INCREF(error)
                PyList_SET_ITEM(results, i, error)
                i += 1
    finally:
        if collecting:
            PyGC_Enable()
    return results

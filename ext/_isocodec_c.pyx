# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of pyiso8583's decode/encode for the tillgate specs (protocols.isospec).

pyiso8583 is the specification: for every message our specs accept this module returns the same
dict, for every dict the same bytes, and it rejects what pyiso8583 rejects, raising pyiso8583's
own DecodeError/EncodeError (with the same message, field and partial dict on decode).
tests/test_isocodec.py proves it with hypothesis differential tests.

It supports exactly the spec features our specs use: no header, an ASCII MTI, ASCII or binary
primary/secondary bitmaps, and ASCII fields that are fixed or LLVAR/LLLVAR with ASCII lengths.
`compile_spec` refuses any other spec. One deliberate difference: a secondary bitmap with bit 65
set (a tertiary bitmap, fields 129-192) is refused here at the bitmap, where pyiso8583 would go on
and fail later (our specs define no field above 128); protocols.isocodec refuses it either way.

The rare odd inputs pyiso8583 accepts through Python's own parsers (a length such as " 7" or
"+7" that int() takes, a bitmap with whitespace that bytes.fromhex() skips) are handed to those
same parsers, so the twin cannot drift from them; the common case never leaves C.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.ref cimport PyObject
from libc.string cimport memcpy

from iso8583.decoder import DecodeError
from iso8583.encoder import EncodeError


cdef extern from "Python.h":
    object PyUnicode_DecodeASCII(const char *s, Py_ssize_t size, const char *errors)
    int PyUnicode_IS_ASCII(object o)
    void *PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)


cdef enum:
    MAX_FIELD = 128

cdef tuple KEYS = tuple(str(i) for i in range(MAX_FIELD + 1))
cdef bytes HEX_UPPER = b"0123456789ABCDEF"


cdef class CompiledSpec:
    """A spec dict reduced to the C arrays the loops read. Build with `compile_spec`."""

    cdef readonly object spec
    cdef bint primary_binary
    cdef bint secondary_binary
    cdef int len_type[MAX_FIELD + 1]
    cdef int max_len[MAX_FIELD + 1]


def compile_spec(spec):
    """Check that `spec` uses only what the twin implements and return its compiled form."""
    cdef CompiledSpec out = CompiledSpec()
    cdef int i
    out.spec = spec
    if spec["h"]["max_len"] > 0:
        raise ValueError("the compiled ISO 8583 codec supports no message header")
    if spec["t"]["data_enc"] != "ascii":
        raise ValueError("the compiled ISO 8583 codec supports an ASCII MTI only")
    out.primary_binary = _bitmap_is_binary(spec, "p")
    out.secondary_binary = _bitmap_is_binary(spec, "1")
    for i in range(2, MAX_FIELD + 1):
        if i == 65:  # the tertiary bitmap's bit, never a field of ours
            continue
        field = spec[KEYS[i]]
        if field["data_enc"] != "ascii" or field.get("len_count", "bytes") != "bytes":
            raise ValueError(f"field {i}: only ASCII data counted in bytes is supported")
        if field["len_type"] not in (0, 2, 3):
            raise ValueError(f"field {i}: only fixed, LLVAR and LLLVAR lengths are supported")
        if field["len_type"] and field["len_enc"] != "ascii":
            raise ValueError(f"field {i}: only ASCII length prefixes are supported")
        if not 0 <= field["max_len"] <= 999:
            raise ValueError(f"field {i}: max_len must be 0..999")
        out.len_type[i] = field["len_type"]
        out.max_len[i] = field["max_len"]
    return out


cdef bint _bitmap_is_binary(spec, str key) except -1:
    enc = spec[key]["data_enc"]
    if enc == "b":
        return True
    if enc == "ascii":
        return False
    raise ValueError(f"bitmap {key}: only ASCII or binary bitmaps are supported")


cdef inline bint _all_ascii(const unsigned char *p, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    for i in range(n):
        if p[i] >= 0x80:
            return False
    return True


cdef inline int _hex_value(unsigned char c) noexcept:
    if 48 <= c <= 57:
        return c - 48
    if 65 <= c <= 70:
        return c - 55
    if 97 <= c <= 102:
        return c - 87
    return -1


cdef inline str _ascii(const unsigned char *p, Py_ssize_t n):
    return PyUnicode_DecodeASCII(<const char *>p, n, NULL)


cdef str _hex_upper(const unsigned char *p, Py_ssize_t n):
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n * 2)
    cdef unsigned char *o = <unsigned char *>PyBytes_AS_STRING(out)
    cdef const unsigned char *digits = <const unsigned char *>PyBytes_AS_STRING(HEX_UPPER)
    cdef Py_ssize_t i
    for i in range(n):
        o[2 * i] = digits[p[i] >> 4]
        o[2 * i + 1] = digits[p[i] & 15]
    return _ascii(<const unsigned char *>o, n * 2)


cdef _fail(str msg, bytes s, dict doc, Py_ssize_t pos, str field):
    raise DecodeError(msg, s, doc, {}, pos, field)


cdef Py_ssize_t _decode_bitmap(bytes s, const unsigned char *p, Py_ssize_t n, dict doc,
                               Py_ssize_t idx, str key, bint binary, int offset,
                               unsigned char *present) except -1:
    """pyiso8583 _decode_bitmap (not extended): sets doc[key], marks the fields, returns idx."""
    cdef Py_ssize_t width = 8 if binary else 16
    cdef Py_ssize_t avail = n - idx if n - idx < width else width
    cdef unsigned char raw[8]
    cdef Py_ssize_t nbytes = 8
    cdef Py_ssize_t i
    cdef int hi, lo, bit
    doc[key] = ""
    if avail < width:
        _fail(f"Field data is {avail if avail > 0 else 0} bytes, expecting {width}",
              s, doc, idx, key)
    if binary:
        memcpy(raw, p + idx, 8)
        doc[key] = _hex_upper(p + idx, 8)
    else:
        if not _all_ascii(p + idx, 16):
            _fail("Failed to decode field, invalid data", s, doc, idx, key)
        text = _ascii(p + idx, 16)
        doc[key] = text
        for i in range(8):
            hi = _hex_value(p[idx + 2 * i])
            lo = _hex_value(p[idx + 2 * i + 1])
            if hi < 0 or lo < 0:
                break
            raw[i] = <unsigned char>((hi << 4) | lo)
        else:
            i = 8
        if i < 8:
            # Not 16 hex digits: let bytes.fromhex decide, as pyiso8583 does (it skips
            # whitespace, so a bitmap such as "7234 54..." decodes to fewer than 8 bytes).
            try:
                parsed = bytes.fromhex(text)
            except Exception:
                _fail("Failed to decode field, non-hex data", s, doc, idx, key)
            nbytes = PyBytes_GET_SIZE(parsed)
            memcpy(raw, PyBytes_AS_STRING(parsed), nbytes)
    for i in range(nbytes):
        for bit in range(8):
            if raw[i] & (0x80 >> bit):
                present[offset + i * 8 + bit + 1] = 1
    return idx + width


cdef Py_ssize_t _decode_field(bytes s, const unsigned char *p, Py_ssize_t n, dict doc,
                              Py_ssize_t idx, int field, CompiledSpec spec) except -1:
    """pyiso8583 _decode_field for ASCII data with a fixed or ASCII-digit length."""
    cdef str key = KEYS[field]
    cdef int len_type = spec.len_type[field]
    cdef int max_len = spec.max_len[field]
    cdef Py_ssize_t flen = 0
    cdef Py_ssize_t avail, i
    cdef bint digits
    PyDict_SetItem(doc, key, "")
    if len_type == 0:
        flen = max_len
    else:
        avail = n - idx
        if avail < len_type:
            _fail(f"Field length is {avail if avail > 0 else 0} bytes wide, expecting {len_type}",
                  s, doc, idx, key)
        digits = True
        for i in range(len_type):
            if 48 <= p[idx + i] <= 57:
                flen = flen * 10 + (p[idx + i] - 48)
            else:
                digits = False
                break
        if not digits:
            if not _all_ascii(p + idx, len_type):
                _fail("Failed to decode field length, invalid data", s, doc, idx, key)
            try:
                # int() takes " 7", "+7", "-0", "0_7": pyiso8583 does too.
                flen = int(_ascii(p + idx, len_type))
            except Exception:
                _fail("Failed to decode field length, non-numeric data", s, doc, idx, key)
        if flen > max_len:
            _fail(f"Field data is {flen} bytes, larger than maximum {max_len}", s, doc, idx, key)
    idx += len_type
    if flen == 0:
        return idx
    if flen < 0 or idx + flen > n:
        # Python slice semantics give the length pyiso8583 reports.
        _fail(f"Field data is {len(s[idx:idx + flen])} bytes, expecting {flen}",
              s, doc, idx, key)
    if not _all_ascii(p + idx, flen):
        _fail("Failed to decode field, invalid data", s, doc, idx, key)
    PyDict_SetItem(doc, key, _ascii(p + idx, flen))
    return idx + flen


def decode(bytes s not None, CompiledSpec spec not None):
    """Decode one message; the dict pyiso8583's `decode(s, spec)[0]` returns."""
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(s)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(s)
    cdef Py_ssize_t idx = 0
    cdef unsigned char present[MAX_FIELD + 1]
    cdef int i
    cdef str last = "p"
    cdef dict doc = {}
    for i in range(MAX_FIELD + 1):
        present[i] = 0
    doc["t"] = ""
    if n < 4:
        _fail(f"Field data is {n} bytes, expecting 4", s, doc, 0, "t")
    if not _all_ascii(p, 4):
        _fail("Failed to decode field, invalid data", s, doc, 0, "t")
    doc["t"] = _ascii(p, 4)
    idx = _decode_bitmap(s, p, n, doc, 4, "p", spec.primary_binary, 0, present)
    if present[1]:
        last = "1"
        idx = _decode_bitmap(s, p, n, doc, idx, "1", spec.secondary_binary, 64, present)
        if present[65]:
            _fail("Tertiary bitmap (field 65) is not supported by this spec", s, doc, idx, "1")
    for i in range(2, MAX_FIELD + 1):
        if present[i]:
            last = KEYS[i]
            idx = _decode_field(s, p, n, doc, idx, i, spec)
    if idx != n:
        _fail("Extra data after last field", s, doc, idx, last)
    return doc


cdef int _field_number(key) except -2:
    """pyiso8583's view of a dict key: the field number, or -1 for a key it ignores."""
    cdef const unsigned char *c
    cdef Py_ssize_t n, i
    cdef int number = 0
    if type(key) is str and PyUnicode_IS_ASCII(key):
        # Fast path for the keys we write ("t", "2" .. "128"): no Python calls.
        n = PyUnicode_GET_LENGTH(key)
        c = <const unsigned char *>PyUnicode_DATA(key)
        if 1 <= n <= 3 and c[0] != 48:
            for i in range(n):
                if not 48 <= c[i] <= 57:
                    break
                number = number * 10 + c[i] - 48
            else:
                if number <= MAX_FIELD:
                    return number
        elif n == 1 and not 48 <= c[0] <= 57:
            return -1
    return _field_number_slow(key)


cdef int _field_number_slow(key) except -2:
    if not isinstance(key, str):
        raise EncodeError("Dictionary contains invalid fields", {}, {}, "p")
    if not key.isnumeric():
        return -1
    try:
        number = int(key)
    except ValueError:
        raise EncodeError(f"Field key {key!r} is not a number", {}, {}, "p") from None
    if not 1 <= number <= 192:
        raise EncodeError("Dictionary contains fields outside of 1-192 range", {}, {}, "p")
    if number > MAX_FIELD:
        raise EncodeError("Tertiary bitmap fields are not supported by this spec", {}, {}, "p")
    return number


cdef inline void _put_bitmap(unsigned char *o, const unsigned char *bits, bint binary) noexcept:
    cdef int i
    cdef const char *digits = "0123456789ABCDEF"
    if binary:
        memcpy(o, bits, 8)
        return
    for i in range(8):
        o[2 * i] = digits[bits[i] >> 4]
        o[2 * i + 1] = digits[bits[i] & 15]


def encode(dict doc not None, CompiledSpec spec not None):
    """Encode a field dict; the bytes pyiso8583's `encode(dict(doc), spec)[0]` returns."""
    cdef unsigned char present[MAX_FIELD + 1]
    cdef const char *data[MAX_FIELD + 1]
    cdef Py_ssize_t size[MAX_FIELD + 1]
    cdef unsigned char primary[8]
    cdef unsigned char secondary[8]
    cdef PyObject *item
    cdef int i, number, len_type
    cdef Py_ssize_t total, length
    cdef bint has_secondary = False
    cdef unsigned char *o
    for i in range(MAX_FIELD + 1):
        present[i] = 0
    for i in range(8):
        primary[i] = 0
        secondary[i] = 0

    mti = doc.get("t")
    if mti is None:
        raise EncodeError("Field data is required", doc, {}, "t")
    if type(mti) is not str or not PyUnicode_IS_ASCII(mti) or PyUnicode_GET_LENGTH(mti) != 4:
        raise EncodeError("Field data must be 4 ASCII characters", doc, {}, "t")

    for key in doc:
        number = _field_number(key)
        if number > 1 and number != 65:  # "1" and "65" are bitmaps, recomputed
            present[number] = 1

    total = 4
    for i in range(2, MAX_FIELD + 1):
        if not present[i]:
            continue
        item = PyDict_GetItem(doc, KEYS[i])
        if item == NULL:  # a key such as "02": pyiso8583 looks up "2"
            raise EncodeError("Field data is required", doc, {}, KEYS[i])
        value = <object>item
        if not isinstance(value, str) or not PyUnicode_IS_ASCII(value):
            raise EncodeError("Failed to encode field, invalid data", doc, {}, KEYS[i])
        length = PyUnicode_GET_LENGTH(value)
        len_type = spec.len_type[i]
        if len_type == 0:
            if length != spec.max_len[i]:
                raise EncodeError(f"Field data is {length} bytes, expecting {spec.max_len[i]}",
                                  doc, {}, KEYS[i])
        elif length > spec.max_len[i] or length >= (100 if len_type == 2 else 1000):
            raise EncodeError(f"Field data is {length} bytes, larger than maximum "
                              f"{spec.max_len[i]}", doc, {}, KEYS[i])
        data[i] = <const char *>PyUnicode_DATA(value)
        size[i] = length
        total += len_type + length
        if i <= 64:
            primary[(i - 1) >> 3] |= 0x80 >> ((i - 1) & 7)
        else:
            has_secondary = True
            secondary[(i - 65) >> 3] |= 0x80 >> ((i - 65) & 7)

    if has_secondary:
        primary[0] |= 0x80
        total += 8 if spec.secondary_binary else 16
    total += 8 if spec.primary_binary else 16

    out = PyBytes_FromStringAndSize(NULL, total)
    o = <unsigned char *>PyBytes_AS_STRING(out)
    memcpy(o, PyUnicode_DATA(mti), 4)
    o += 4
    _put_bitmap(o, primary, spec.primary_binary)
    o += 8 if spec.primary_binary else 16
    if has_secondary:
        _put_bitmap(o, secondary, spec.secondary_binary)
        o += 8 if spec.secondary_binary else 16
    for i in range(2, MAX_FIELD + 1):
        if not present[i]:
            continue
        len_type = spec.len_type[i]
        length = size[i]
        if len_type == 3:
            o[0] = 48 + length // 100
            o[1] = 48 + (length // 10) % 10
            o[2] = 48 + length % 10
        elif len_type == 2:
            o[0] = 48 + length // 10
            o[1] = 48 + length % 10
        o += len_type
        memcpy(o, data[i], length)
        o += length
    return out

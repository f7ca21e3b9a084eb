"""ISO 8583 bytes <-> field dicts, on the tillgate specs (protocols.isospec).

`decode(data, spec)` and `encode(fields, spec)` are the only entry points the gateway calls. They
run the compiled twin `protocols._isocodec_c` (ext/_isocodec_c.pyx), which gives the same bytes
and the same dicts as pyiso8583 (the reference, proven by the differential tests in
tests/test_isocodec.py) at a fraction of the cost. pyiso8583 itself is used only when
TILLGATE_NO_EXTENSIONS=1 or the interpreter is not CPython; a CPython without the build is an
ImportError here, never a silent slowdown (DESIGN.md, Cython packaging).

On top of pyiso8583's rules, `decode` enforces two HOST-SPEC rules pyiso8583 does not know:
numeric fields (isospec.NUMERIC_FIELDS) hold digits only, and there is no tertiary bitmap (field
65 is not a field in our specs; pyiso8583 would read a third bitmap and then fail on a KeyError).

Field dicts are pyiso8583's: `"t"` is the MTI, `"p"`/`"1"` the bitmaps as hex text, and `"2"` ..
`"128"` the fields as str. `encode` never mutates its input (pyiso8583's `encode` does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import iso8583
from iso8583.decoder import DecodeError
from iso8583.encoder import EncodeError

from protocols.isospec import NUMERIC_FIELDS, SpecDict
from protocols.twins import load_compiled, use_extensions

__all__ = [
    "IMPLEMENTATION",
    "IsoDecodeError",
    "IsoEncodeError",
    "decode",
    "decode_reference",
    "encode",
    "encode_reference",
    "readable_mti",
    "readable_stan",
]


class IsoDecodeError(ValueError):
    """A message that cannot be decoded; the till gets a `30` when `mti` and `stan` are readable.

    `fields_to_echo` holds what was decoded before the error (pyiso8583's partial dict), so the
    error response can echo it; `field` names the field at fault, `reason` says what was wrong.
    """

    code = "30"

    def __init__(self, reason: str, *, field: str | None, fields: dict[str, str]):
        super().__init__(f"{reason} (field {field})")
        self.reason = reason
        self.field = field
        self.fields_to_echo = fields
        self.mti = readable_mti(fields)
        self.stan = readable_stan(fields)


class IsoEncodeError(ValueError):
    """A field dict that cannot be encoded on the spec (a bug in the caller, never bad input)."""


def readable_mti(fields: Mapping[str, str]) -> str | None:
    """The MTI when it is one we can answer (4 digits, a request or an advice), else None."""
    mti = fields.get("t")
    if (isinstance(mti, str) and len(mti) == 4 and mti.isascii() and mti.isdigit()
            and mti[2] in "02"):
        return mti
    return None


def readable_stan(fields: Mapping[str, str]) -> str | None:
    """Field 11 when it is 6 digits, else None."""
    stan = fields.get("11")
    if isinstance(stan, str) and len(stan) == 6 and stan.isascii() and stan.isdigit():
        return stan
    return None


def _check_decoded(doc: dict[str, str]) -> dict[str, str]:
    """The HOST-SPEC rules pyiso8583 leaves to us; both implementations share them."""
    secondary = doc.get("1")
    if secondary is not None and len(secondary) > 16:
        raise IsoDecodeError("tertiary bitmap (field 65) is not part of the spec",
                             field="1", fields=doc)
    get = doc.get
    for key in NUMERIC_FIELDS:
        value = get(key)
        if value is not None and not value.isdigit():  # ASCII already: isdigit means 0-9
            raise IsoDecodeError("numeric field holds a non-digit", field=key, fields=doc)
    return doc


def _reference_raw_decode(data: bytes, spec: SpecDict) -> dict[str, str]:
    try:
        return iso8583.decode(data, spec)[0]
    except KeyError as exc:
        # A tertiary bitmap names fields 129-192, which our specs do not define.
        raise IsoDecodeError("field outside the spec", field=str(exc.args[0]), fields={}) from None


def _reference_raw_encode(fields: dict[str, str], spec: SpecDict) -> bytes:
    try:
        return bytes(iso8583.encode(dict(fields), spec)[0])
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        # EncodeError is a ValueError; KeyError/AttributeError/TypeError are pyiso8583's answer
        # to a key outside the spec or a value that is not a str.
        raise IsoEncodeError(str(exc)) from None


def _decode_with(raw: Callable[[bytes, Any], dict[str, str]], data: bytes, spec: Any) -> dict:
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"ISO 8583 data must be bytes, not {type(data).__name__}")
    try:
        doc = raw(data, spec)
    except DecodeError as exc:
        raise IsoDecodeError(exc.msg, field=exc.field, fields=exc.doc_dec) from None
    return _check_decoded(doc)


def decode_reference(data: bytes, spec: SpecDict) -> dict[str, str]:
    """`decode` on pyiso8583 alone: the specification the compiled twin is tested against."""
    return _decode_with(_reference_raw_decode, data, spec)


def encode_reference(fields: dict[str, str], spec: SpecDict) -> bytes:
    """`encode` on pyiso8583 alone (on a copy: pyiso8583 mutates the dict it is given)."""
    return _reference_raw_encode(fields, spec)


if use_extensions():
    _isocodec_c = load_compiled("protocols._isocodec_c", "pyiso8583 alone, over 10x slower")

    IMPLEMENTATION = "c"
    _compiled_specs: dict[int, tuple[SpecDict, Any]] = {}

    def _compiled(spec: SpecDict) -> Any:
        # Specs are module-level constants, so id() is stable; keeping the dict in the entry
        # keeps it alive and lets us notice a different dict that reused an id.
        entry = _compiled_specs.get(id(spec))
        if entry is None or entry[0] is not spec:
            entry = (spec, _isocodec_c.compile_spec(spec))
            _compiled_specs[id(spec)] = entry
        return entry[1]

    _c_decode = _isocodec_c.decode

    def decode(data: bytes, spec: SpecDict) -> dict[str, str]:
        """Decode one ISO 8583 message; raises IsoDecodeError for anything malformed."""
        # _decode_with inlined: this is the listener's per-message hot path.
        if type(data) is not bytes:
            if not isinstance(data, bytearray):
                raise TypeError(f"ISO 8583 data must be bytes, not {type(data).__name__}")
            data = bytes(data)
        try:
            doc = _c_decode(data, _compiled(spec))
        except DecodeError as exc:
            raise IsoDecodeError(exc.msg, field=exc.field, fields=exc.doc_dec) from None
        return _check_decoded(doc)

    def encode(fields: dict[str, str], spec: SpecDict) -> bytes:
        """Encode a field dict (`"t"` and numbered fields; bitmaps are computed)."""
        try:
            return _isocodec_c.encode(fields, _compiled(spec))
        except EncodeError as exc:
            raise IsoEncodeError(str(exc)) from None

else:
    IMPLEMENTATION = "python"
    decode = decode_reference
    encode = encode_reference

"""Card-data decoders (HOST-SPEC 4): the import facade every caller uses.

Picks the compiled twin protocols._carddata_c; the pure-Python protocols._carddata_py (the
specification) is used only when TILLGATE_NO_EXTENSIONS=1 or the interpreter is not CPython. A
missing build on CPython is an ImportError, never a silent slowdown (DESIGN.md, Cython packaging).
IMPLEMENTATION says which one is loaded: "c" or "python". docs/card-data.md documents the API.
"""

from __future__ import annotations

from typing import Any

from protocols import _carddata_py
from protocols.carddata_errors import (
    ERROR_CLASSES,
    CardDataError,
    CharacterError,
    CheckDigitError,
    FormatError,
    LengthError,
    LRCError,
    UnreadableError,
)
from protocols.twins import load_compiled, use_extensions

_impl: Any
if use_extensions():
    _impl = load_compiled("protocols._carddata_c", "the pure-Python decoders")
    IMPLEMENTATION = "c"
else:
    _impl = _carddata_py
    IMPLEMENTATION = "python"

decode_track1 = _impl.decode_track1
decode_track2 = _impl.decode_track2
decode_track3 = _impl.decode_track3
decode_swipe = _impl.decode_swipe
decode_barcode = _impl.decode_barcode
card_number = _impl.card_number
luhn_valid = _impl.luhn_valid
luhn_check_digit = _impl.luhn_check_digit
gs1_check_digit = _impl.gs1_check_digit
decode_many = _impl.decode_many
# Issuing numbers is not a hot path: the specification's generator serves both builds.
generate_card_number = _carddata_py.generate_card_number
generate_pin = _carddata_py.generate_pin

__all__ = [
    "CardDataError",
    "CharacterError",
    "CheckDigitError",
    "ERROR_CLASSES",
    "FormatError",
    "IMPLEMENTATION",
    "LRCError",
    "LengthError",
    "UnreadableError",
    "card_number",
    "decode_barcode",
    "decode_many",
    "decode_swipe",
    "decode_track1",
    "decode_track2",
    "decode_track3",
    "generate_card_number",
    "generate_pin",
    "gs1_check_digit",
    "luhn_check_digit",
    "luhn_valid",
]

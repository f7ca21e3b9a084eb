"""The tillgate ISO 8583 field definitions (HOST-SPEC 2), in pyiso8583's spec-dict format.

Both specs are pyiso8583's `default_ascii` with the HOST-SPEC changes applied, so pyiso8583 (the
reference codec) and the compiled twin in ext/_isocodec_c.pyx read the very same dicts:

- field 45 (track 1) may be 79 characters instead of 76: ISO/IEC 7813 track 1 holds 76 data
  characters plus the start sentinel, end sentinel and LRC, and HOST-SPEC 4 accepts tracks "with
  or without sentinels", so a till that forwards the raw track with its sentinels is not a format
  error.
- `SPEC_BINARY_BITMAP` carries the primary and secondary bitmaps as 8 raw bytes each (a listener's
  `bitmap = "binary"`); every other field is as in `SPEC_ASCII`.

pyiso8583 only checks lengths and ASCII, not that a numeric field holds digits: `NUMERIC_FIELDS`
lists the fields that HOST-SPEC makes numeric, and protocols.isocodec.decode checks them.
"""

from __future__ import annotations

import copy
from types import MappingProxyType
from typing import Any

from iso8583.specs import default_ascii

SpecDict = dict[str, dict[str, Any]]

# Fixed-length fields that must hold ASCII digits only (processing code, amount, transmission
# date/time, STAN, local time, local date, currency, network management code).
NUMERIC_FIELDS: tuple[str, ...] = ("3", "4", "7", "11", "12", "13", "49", "70")

TRACK1_MAX_LEN = 79


def _tillgate_spec(binary_bitmap: bool) -> SpecDict:
    spec: SpecDict = copy.deepcopy(default_ascii)
    spec["45"]["max_len"] = TRACK1_MAX_LEN
    spec["45"]["desc"] = "Track 1 Data (with or without sentinels)"
    if binary_bitmap:
        for key in ("p", "1"):
            spec[key]["data_enc"] = "b"
            spec[key]["max_len"] = 8
    return spec


SPEC_ASCII: SpecDict = _tillgate_spec(binary_bitmap=False)
SPEC_BINARY_BITMAP: SpecDict = _tillgate_spec(binary_bitmap=True)

SPECS: MappingProxyType[str, SpecDict] = MappingProxyType(
    {"ascii": SPEC_ASCII, "binary": SPEC_BINARY_BITMAP}
)


def spec_for_bitmap(bitmap: str) -> SpecDict:
    """The spec for a listener's `bitmap` setting (`ascii` or `binary`)."""
    try:
        return SPECS[bitmap]
    except KeyError:
        raise ValueError(f"bitmap must be 'ascii' or 'binary', not {bitmap!r}") from None

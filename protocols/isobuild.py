"""The till's side of HOST-SPEC 2: build ISO 8583 request field dicts for each operation.

The simulator, the load generator, the pytest plugin's `till` and the project's tests build
their messages here, so they all speak the same dialect the gateway reads (protocols.isomap is
the host's side; the processing-code table is its, inverted, never written twice).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping

from protocols import field63
from protocols.isomap import (
    AUTHORISATION_CODES,
    FINANCIAL_CODES,
    NETWORK_CODES,
    format0_pan_field,
)
from protocols.model import Op

# op -> processing code for 0200 (gift account forms; loyalty activation is 900090).
_FINANCIAL = {op: code for code, op in FINANCIAL_CODES.items() if code != "900090"}
_AUTHORISATION = {op: code for code, op in AUTHORISATION_CODES.items()}
_NETWORK = {op: code for code, op in NETWORK_CODES.items()}
LOYALTY_ACTIVATION_CODE = "900090"


class StanCounter:
    """STANs 000001..999999, wrapping, as a till numbers its messages."""

    def __init__(self, start: int = 1):
        self._counter = itertools.count(start)

    def next(self) -> str:
        return f"{(next(self._counter) - 1) % 999999 + 1:06d}"


def transmission_time(now: dt.datetime | None = None) -> str:
    """Field 7, MMDDhhmmss in UTC."""
    return (now or dt.datetime.now(dt.UTC)).strftime("%m%d%H%M%S")


def pin_block(pin: str, pan: str) -> str:
    """A clear ISO 9564 format 0 PIN block.

    (0, PIN length, PIN, F padding) XOR (0000, the 12 PAN digits left of the check digit).
    """
    if not (pin.isdigit() and 4 <= len(pin) <= 12):
        raise ValueError("a PIN is 4 to 12 digits")
    pin_field = int(f"0{len(pin):X}{pin}".ljust(16, "F"), 16)
    return f"{pin_field ^ format0_pan_field(pan):016X}"


def request_fields(op: Op, *, terminal: str, merchant: str, stan: str, card: str | None = None,
                   amount: int | None = None, mti: str | None = None, loyalty: bool = False,
                   transmitted: str | None = None, currency: str | None = None,
                   pin: str | None = None, invoice: str | None = None,
                   operator: str | None = None, partial: bool = False, reward: str | None = None,
                   target: str | None = None, rrn: str | None = None, upc: str | None = None,
                   serial: str | None = None, barcode: str | None = None,
                   track2: str | None = None, track1: str | None = None,
                   original: Mapping[str, str] | None = None,
                   extra_tags: Mapping[str, str] | None = None) -> dict[str, str]:
    """The fields of one request. `original` (the original request's fields) makes a void."""
    now = transmitted or transmission_time()
    if op.is_network:
        return {"t": "0800", "7": now, "11": stan, "41": terminal, "42": merchant,
                "70": _NETWORK[op]}
    if op is Op.VOID:
        if original is None:
            raise ValueError("a void needs the original's fields")
        code, mti = "02" + original["3"][2:], mti or "0200"
    elif op is Op.ACTIVATE and loyalty:
        code, mti = LOYALTY_ACTIVATION_CODE, mti or "0200"
    elif mti == "0100" or (mti is None and op is Op.PREVALIDATE):
        code, mti = _AUTHORISATION[op], "0100"
    else:
        code, mti = _FINANCIAL[op], mti or "0200"
    fields = {"t": mti, "3": code, "7": now, "11": stan, "41": terminal, "42": merchant,
              "12": now[4:], "13": now[:4]}
    if card is not None:
        fields["2"] = card
    if track2 is not None:
        fields["35"] = track2
    if track1 is not None:
        fields["45"] = track1
    if amount is not None:
        fields["4"] = f"{amount:012d}"
    if currency is not None:
        fields["49"] = currency
    if rrn is not None:
        fields["37"] = rrn
    if pin is not None:
        if card is None:
            raise ValueError("a PIN block is built from the card number (field 2)")
        fields["52"] = pin_block(pin, card)
    if target is not None:
        fields["103"] = target
    if original is not None:
        fields["90"] = original_data(original)
    given = {"IN": invoice, "OP": operator, "PA": "1" if partial else None, "RW": reward,
             "UP": upc, "SN": serial, "BC": barcode, **(extra_tags or {})}
    tags = {k: v for k, v in given.items() if v is not None}
    if tags:
        fields["63"] = field63.format(tags)
    return fields


def original_data(original: Mapping[str, str]) -> str:
    """Field 90 naming `original`: MTI + STAN + transmission time + two zero-filled ids."""
    return original["t"] + original["11"] + original["7"] + "0" * 22


def reversal_fields(original: Mapping[str, str], *, advice: bool = False, repeat: bool = False,
                    transmitted: str | None = None, stan: str | None = None) -> dict[str, str]:
    """A 0400 (or 0420, 0401, 0421) reversing `original`, carrying its card and amount."""
    mti = "042" if advice else "040"
    fields = {k: v for k, v in original.items() if k in ("2", "3", "4", "35", "45", "41", "42",
                                                         "49", "37")}
    now = transmitted or transmission_time()
    fields.update({"t": mti + ("1" if repeat else "0"), "7": now, "11": stan or original["11"],
                   "90": original_data(original)})
    return fields

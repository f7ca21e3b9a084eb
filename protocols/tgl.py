"""TGL/1 payloads (HOST-SPEC 3): parse a till's request into a `Request`, format a `Result` back.

Payload: fields separated by FS (0x1C); `TGL1`, then `Q` (request) or `R` (response), then
`key=value` fields in any order. Keys are lower-case, values printable ASCII without FS.

Choices this module makes where HOST-SPEC 3 leaves room (docs/till-integration.md repeats them):

- `op` values are exactly `protocols.model.Op` values and map one-to-one onto table 2.3.
  `activate` covers the three activation rows: the card's program decides. A loyalty program's
  card gets a loyalty activation (`amt` 0 or absent); a program with face values (pre-valued
  cards) gets `Op.ACTIVATE_PREVALUED`, `amt` being the face value, when the caller passes
  `prevalued(card) -> bool` (the line layer asks the config); otherwise `Op.ACTIVATE`.
- `amt` is an integer in minor units (points for points operations): 1 to 12 ASCII digits, no
  sign, no decimal point. It is required by reload, redeem, refund, earn, padd and return, by
  `predeem` unless `reward` is given; `activate` without it loads 0.
- `id` is 1 to 12 digits and is required: without it nothing can be matched or made idempotent.
- `term` (1-8) and `merch` (1-15 printable characters) are required by every op, `signon` and
  `echo` included, since they are part of the request key.
- The card comes from `card`, else `track`, else `swipe`, else `barcode` (first present wins);
  the last three are decoded by protocols.carddata. Every op but `signon` and `echo` needs one;
  `transfer` also needs `target`, `void` and `reverse` need `orig`.
- Values are printable ASCII, except that `swipe` may end in the CR (or CR LF) a keyboard-wedge
  reader types after the tracks (HOST-SPEC 4 accepts such swipes).
- A key given twice, a value that is not printable ASCII, a malformed value or a missing
  required key is a format error (`TglFormatError`, answered `rc=30`, echoing `id` when it could
  be read). Unknown keys are ignored (listed in `Request.extras["tgl_unknown"]` for the log).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from protocols.carddata import card_number
from protocols.carddata_errors import CardDataError
from protocols.model import Op, Request, Result, line_request_key

FS = b"\x1c"
MAGIC = b"TGL1"
REQUEST = b"Q"
RESPONSE = b"R"

_SEQ = re.compile(r"\d{1,12}")
_AMOUNT = re.compile(r"\d{1,12}")
_TERM = re.compile(r"[ -~]{1,8}")
_MERCH = re.compile(r"[ -~]{1,15}")
_CARD = re.compile(r"[0-9A-Za-z]{6,19}")
_PIN = re.compile(r"\d{4,12}")
_TEXT20 = re.compile(r"[ -~]{1,20}")
_PRINTABLE = re.compile(rb"[ -~]*")
_FLAG = re.compile(r"[01]")
_OP_NAME = re.compile(r"[a-z_]{1,20}")
# A keyboard-wedge swipe ends with the reader's CR (HOST-SPEC 4), which `swipe` may keep.
_SWIPE = re.compile(rb"[ -~]*[\r\n]*")

CARD_SOURCES = ("card", "track", "swipe", "barcode")
KNOWN_KEYS = frozenset({"id", "op", "term", "merch", *CARD_SOURCES, "amt", "pin", "inv", "opid",
                        "reward", "target", "orig", "partial"})
# ISO 8583 field 22 (POS entry mode) equivalents, recorded with the request.
_ENTRY_MODE = {"card": "010", "track": "020", "swipe": "020", "barcode": "030"}

TGL_OPS = {op.value: op for op in Op if op not in (Op.SIGNOFF, Op.ACTIVATE_PREVALUED)}
_NO_CARD = frozenset({Op.SIGNON, Op.ECHO})
_AMOUNT_REQUIRED = frozenset({Op.RELOAD, Op.REDEEM, Op.REFUND, Op.EARN, Op.ADD_POINTS, Op.RETURN})
_NEEDS_ORIGINAL = frozenset({Op.VOID, Op.REVERSAL})

MSG_MAX = 40  # HOST-SPEC 2.4 `MS`: at most 40 characters on a receipt


class TglFormatError(ValueError):
    """A payload that is not a valid TGL/1 request. `seq_id` is its `id` when it could be read."""

    def __init__(self, reason: str, seq_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.seq_id = seq_id


def split_fields(payload: bytes, kind: bytes) -> dict[str, str]:
    """`TGL1 FS kind FS k=v ...` -> {k: v}. Raises TglFormatError (without an id)."""
    parts = payload.split(FS)
    if len(parts) < 2 or parts[0] != MAGIC:
        raise TglFormatError("not a TGL1 payload")
    if parts[1] != kind:
        raise TglFormatError(f"expected {kind.decode()!r} as the message kind")
    fields: dict[str, str] = {}
    problems: list[str] = []
    for raw in parts[2:]:
        key, eq, value = raw.partition(b"=")
        if not eq or not key:
            problems.append("a field without key=value")
            continue
        if not _PRINTABLE.fullmatch(raw) and not (key == b"swipe" and _SWIPE.fullmatch(value)):
            problems.append(f"{_safe_key(key)}: not printable ASCII")
            continue
        name = key.decode("ascii")
        if name in fields:
            problems.append(f"{name}: given twice")
            continue
        fields[name] = value.decode("ascii")
    if problems:
        seq = fields.get("id")
        raise TglFormatError("; ".join(problems), seq if seq and _SEQ.fullmatch(seq) else None)
    return fields


def _safe_key(key: bytes) -> str:
    return key.decode("ascii", "replace") if _PRINTABLE.fullmatch(key) else "key"


def parse_request(payload: bytes, *, today: str,
                  prevalued: Callable[[str], bool] | None = None) -> Request:
    """Decode one TGL/1 request. `today` is the UTC day (YYYYMMDD) that goes into the key."""
    fields = split_fields(payload, REQUEST)
    seq = fields.get("id")
    if seq is None or not _SEQ.fullmatch(seq):
        raise TglFormatError("id: required, 1 to 12 digits")
    return _Parser(fields, seq).request(today, prevalued)


class _Parser:
    """Reads the fields of one request, raising TglFormatError (with the id) at the first fault."""

    def __init__(self, fields: dict[str, str], seq: str):
        self.fields = fields
        self.seq = seq

    def fail(self, reason: str) -> TglFormatError:
        return TglFormatError(reason, self.seq)

    def get(self, key: str, pattern: re.Pattern[str], what: str, required: bool = False
            ) -> str | None:
        value = self.fields.get(key)
        if value is None:
            if required:
                raise self.fail(f"{key}: required")
            return None
        if not pattern.fullmatch(value):
            raise self.fail(f"{key}: must be {what}")
        return value

    def request(self, today: str, prevalued: Callable[[str], bool] | None) -> Request:
        name = self.fields.get("op")
        if name is None:
            raise self.fail("op: required")
        found = TGL_OPS.get(name)
        if found is None:
            # echoed (to the log) only when it looks like an op name: a garbled separator can
            # merge the next field, a PIN included, into the value
            shown = repr(name) if _OP_NAME.fullmatch(name) else "(not shown: not an op name)"
            raise self.fail(f"op: unknown operation {shown}")
        op: Op = found
        term = self.get("term", _TERM, "1 to 8 printable characters", required=True)
        merch = self.get("merch", _MERCH, "1 to 15 printable characters", required=True)
        assert term is not None and merch is not None

        card, entry_mode = self.card(required=op not in _NO_CARD)
        amt = self.get("amt", _AMOUNT, "1 to 12 digits (minor units)",
                       required=op in _AMOUNT_REQUIRED)
        reward = self.get("reward", _TEXT20, "1 to 20 printable characters")
        if op is Op.REDEEM_POINTS and amt is None and reward is None:
            raise self.fail("predeem: amt or reward required")
        target = self.get("target", _CARD, "6 to 19 letters or digits", required=op is Op.TRANSFER)
        orig = self.get("orig", _SEQ, "1 to 12 digits", required=op in _NEEDS_ORIGINAL)
        partial = self.get("partial", _FLAG, "0 or 1")

        if op is Op.ACTIVATE and card is not None and prevalued is not None and prevalued(card):
            op = Op.ACTIVATE_PREVALUED
        unknown = sorted(k for k in self.fields if k not in KNOWN_KEYS)
        return Request(
            op=op, terminal=term, merchant=merch,
            key=line_request_key(term, merch, self.seq, today),
            card=card,
            amount=int(amt) if amt is not None else 0,
            pin=self.get("pin", _PIN, "4 to 12 digits"),
            invoice=self.get("inv", _TEXT20, "1 to 20 printable characters"),
            operator=self.get("opid", _TEXT20, "1 to 20 printable characters"),
            partial_ok=partial == "1",
            reward=reward,
            target_card=target,
            original_key=line_request_key(term, merch, orig, today) if orig else None,
            entry_mode=entry_mode,
            channel="tgl",
            extras={"tgl_id": self.seq, **({"tgl_unknown": ",".join(unknown)} if unknown else {})},
        )

    def card(self, *, required: bool) -> tuple[str | None, str | None]:
        for source in CARD_SOURCES:
            text = self.fields.get(source)
            if text is None:
                continue
            if source == "card":
                number = self.get("card", _CARD, "6 to 19 letters or digits")
            else:
                number = self._decode(source, text)
            return number, _ENTRY_MODE[source]
        if required:
            raise self.fail("card, track, swipe or barcode: required")
        return None, None

    def _decode(self, source: str, text: str) -> str:
        try:
            return card_number(text)
        except CardDataError as e:
            # The reason is the decoder's, which never holds a whole card number.
            raise self.fail(f"{source}: {e}") from None


def format_response(seq_id: str | None, result: Result) -> bytes:
    """`TGL1 FS R FS id=.. FS rc=..` then `auth amt bal pts tier msg` when the result has them."""
    fields: list[tuple[str, object]] = []
    if seq_id is not None:
        fields.append(("id", seq_id))
    fields.append(("rc", result.code))
    for key, value in (("auth", result.auth_id), ("amt", result.amount),
                       ("bal", result.balance), ("pts", result.points),
                       ("tier", result.tier), ("msg", result.message)):
        if value is not None:
            fields.append((key, value))
    return FS.join([MAGIC, RESPONSE, *(f"{k}={_clean(v)}".encode("ascii") for k, v in fields)])


def _clean(value: object) -> str:
    """A value as printable ASCII without FS; receipt text is cut to MSG_MAX characters."""
    text = str(value)
    if text.isascii() and text.isprintable():
        return text[:MSG_MAX]
    return "".join(c if " " <= c <= "~" else "?" for c in text)[:MSG_MAX]


def parse_response(payload: bytes) -> dict[str, str]:
    """A response's fields, for tills written in Python, the simulator and tests."""
    return split_fields(payload, RESPONSE)

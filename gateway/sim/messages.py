"""One operation as a till asks for it (`Call`), and what came back (`Reply`), for both protocols.

`IsoDialect` builds ISO 8583 fields with protocols.isobuild (the one till-side builder) and
reads field 39, 4, 38, 54 and 63 of a response; `TglDialect` writes TGL/1 `key=value` payloads
(HOST-SPEC 3) and reads `rc`, `amt`, `bal`, `pts`, ... The rest of the simulator (CLI, scenarios,
the load generator, the pytest plugin's `till`) sees only `Call`, `Reply` and `Exchange`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.config.model import Config, Program
from protocols import field63, isocodec, tgl
from protocols.isobuild import request_fields, reversal_fields, transmission_time
from protocols.isomap import POINTS_ACCOUNT, POINTS_CURRENCY
from protocols.isospec import spec_for_bitmap
from protocols.model import Op, mask_card

# Operations whose amount is points, not money (HOST-SPEC 2.3).
POINTS_AMOUNT_OPS = frozenset({Op.ADD_POINTS, Op.REDEEM_POINTS})
# Operations carrying a money amount, which get the program's currency in field 49.
MONEY_AMOUNT_OPS = frozenset({Op.ACTIVATE, Op.ACTIVATE_PREVALUED, Op.RELOAD, Op.REDEEM,
                              Op.REFUND, Op.EARN, Op.RETURN})
NO_CARD_OPS = frozenset({Op.SIGNON, Op.SIGNOFF, Op.ECHO})


@dataclass
class Call:
    """What the till asks for. Amounts are minor units (points for padd and predeem)."""

    op: Op
    card: str | None = None
    amount: int | None = None
    # Card data instead of (or, for ISO barcodes, beside) the number, as a reader gives it.
    track2: str | None = None  # ISO field 35; TGL/1 `track`
    track1: str | None = None  # ISO field 45; TGL/1 `track`
    swipe: str | None = None  # TGL/1 only: a whole keyboard-wedge swipe
    barcode: str | None = None  # ISO field 63 tag BC; TGL/1 `barcode`
    pin: str | None = None
    invoice: str | None = None
    operator: str | None = None
    partial: bool = False
    reward: str | None = None
    target: str | None = None  # transfer: the card value moves to
    currency: str | None = None
    mti: str | None = None  # ISO only: "0100" balance inquiry, "0220" advice, ...
    original: Exchange | None = None  # void and reverse: the exchange they undo
    advice: bool = False  # reversal advice (0420)
    repeat: bool = False  # repeated reversal (0401/0421)


@dataclass
class Reply:
    """A response, whatever protocol carried it. Money in minor units."""

    rc: str | None
    amount: int | None = None  # approved amount
    balance: int | None = None
    points: int | None = None
    auth: str | None = None
    tier: str | None = None
    message: str | None = None
    expiry: str | None = None
    card: str | None = None  # as echoed: masked
    fields: dict[str, str] = field(default_factory=dict)  # everything as received

    @property
    def approved(self) -> bool:
        return self.rc in ("00", "10")

    def as_dict(self) -> dict[str, Any]:
        return {"rc": self.rc, "approved": self.approved, "amount": self.amount,
                "balance": self.balance, "points": self.points, "auth": self.auth,
                "tier": self.tier, "message": self.message, "expiry": self.expiry,
                "card": self.card}


@dataclass
class Exchange:
    """One request and its reply (None when it was dropped or never came)."""

    call: Call
    seq: str  # STAN (ISO) or id (TGL/1)
    request: dict[str, str]  # fields as sent; PIN blocks and PINs included, never printed
    reply: Reply | None = None
    seconds: float = 0.0

    def value(self, name: str) -> str | None:
        """A captured value by name: `stan`/`id`/`seq`, a reply attribute, or a raw field."""
        if name in ("stan", "id", "seq"):
            return self.seq
        if name == "card":
            return self.call.card
        if self.reply is not None:
            if name in ("rc", "amount", "balance", "points", "auth", "tier", "message", "expiry"):
                got = getattr(self.reply, name)
                return None if got is None else str(got)
            if name in self.reply.fields:
                return self.reply.fields[name]
        return self.request.get(name)


def program_of(config: Config | None, card: str | None) -> Program | None:
    if config is None or card is None:
        return None
    return config.program_of_card(card)


class IsoDialect:
    """ISO 8583 (HOST-SPEC 2) through protocols.isobuild and protocols.isocodec."""

    name = "iso"

    def __init__(self, bitmap: str = "ascii", config: Config | None = None):
        self.spec = spec_for_bitmap(bitmap)
        self.config = config

    def build(self, call: Call, *, terminal: str, merchant: str, seq: str,
              transmitted: str | None = None) -> dict[str, str]:
        """`transmitted` (field 7) defaults to now; the load generator passes a cached one."""
        if call.op is Op.REVERSAL:
            if call.original is None:
                raise ValueError("a reversal needs the original exchange")
            return reversal_fields(call.original.request, advice=call.advice, repeat=call.repeat,
                                   stan=seq, transmitted=transmitted)
        program = program_of(self.config, call.card)
        op, currency = call.op, call.currency
        if op is Op.ACTIVATE and program is not None and program.face_values:
            op = Op.ACTIVATE_PREVALUED
        if currency is None and program is not None and op in MONEY_AMOUNT_OPS:
            currency = program.currency
        if call.swipe is not None:
            raise ValueError("ISO 8583 carries tracks (fields 35 and 45), not a whole swipe; "
                             "use TGL/1 or give the track")
        return request_fields(
            op, terminal=terminal, merchant=merchant, stan=seq, card=call.card,
            track2=call.track2, track1=call.track1, barcode=call.barcode,
            amount=call.amount, mti=call.mti, loyalty=program is not None and program.is_loyalty,
            transmitted=transmitted,
            currency=currency, pin=call.pin, invoice=call.invoice, operator=call.operator,
            partial=call.partial, reward=call.reward, target=call.target,
            original=call.original.request if call.original is not None else None,
        )

    def encode(self, fields: dict[str, str]) -> bytes:
        return isocodec.encode(dict(fields), self.spec)  # encode() mutates its argument

    def decode(self, payload: bytes) -> dict[str, str]:
        return isocodec.decode(payload, self.spec)

    def match(self, request: dict[str, str], response: dict[str, str]) -> bool:
        """HOST-SPEC 1: responses are matched on (MTI class, field 11, field 41)."""
        return (response.get("t", "")[1:2] == request["t"][1:2]
                and response.get("11") == request.get("11")
                and response.get("41", request.get("41")) == request.get("41"))

    def reply(self, fields: dict[str, str]) -> Reply:
        tags: dict[str, str] = {}
        if "63" in fields:
            try:
                tags = field63.parse(fields["63"])[0]
            except field63.Field63Error:
                tags = {}
        balance, points = _balances(fields.get("54", ""))
        if points is None and tags.get("PT", "").lstrip("-").isdigit():
            points = int(tags["PT"])
        amount = fields.get("4")
        return Reply(rc=fields.get("39"), amount=int(amount) if amount and amount.isdigit()
                     else None, balance=balance, points=points, auth=fields.get("38"),
                     tier=tags.get("TR"), message=tags.get("MS"), expiry=tags.get("EX"),
                     card=fields.get("2"), fields=fields)


def _balances(text: str) -> tuple[int | None, int | None]:
    """Field 54 entries (20 characters each) -> (money balance, points balance)."""
    money = points = None
    for i in range(0, len(text) - 19, 20):
        entry = text[i:i + 20]
        account, currency, sign, digits = entry[:2], entry[4:7], entry[7], entry[8:]
        if not digits.isdigit():
            continue
        value = int(digits) * (-1 if sign == "D" else 1)
        if account == POINTS_ACCOUNT or currency == POINTS_CURRENCY:
            points = value
        else:
            money = value
    return money, points


class TglDialect:
    """TGL/1 (HOST-SPEC 3): `TGL1 FS Q FS key=value ...`."""

    name = "tgl"

    def __init__(self, config: Config | None = None):
        self.config = config

    def build(self, call: Call, *, terminal: str, merchant: str, seq: str,
              transmitted: str | None = None) -> dict[str, str]:
        fields = {"id": seq, "op": call.op.value, "term": terminal, "merch": merchant}
        if call.op in (Op.VOID, Op.REVERSAL):
            if call.original is None:
                raise ValueError(f"{call.op.value} needs the original exchange")
            fields["orig"] = call.original.seq
        optional = {"card": call.card, "track": call.track2 or call.track1, "swipe": call.swipe,
                    "barcode": call.barcode,
                    "amt": None if call.amount is None else str(call.amount),
                    "pin": call.pin, "inv": call.invoice, "opid": call.operator,
                    "reward": call.reward, "target": call.target,
                    "partial": "1" if call.partial else None}
        fields.update({k: v for k, v in optional.items() if v is not None})
        if call.op is Op.ACTIVATE_PREVALUED:
            fields["op"] = Op.ACTIVATE.value  # TGL/1 has one `activate`; the program decides
        return fields

    def encode(self, fields: dict[str, str]) -> bytes:
        return tgl.FS.join([tgl.MAGIC, tgl.REQUEST,
                            *(f"{k}={v}".encode("ascii") for k, v in fields.items())])

    def decode(self, payload: bytes) -> dict[str, str]:
        return tgl.parse_response(payload)

    def match(self, request: dict[str, str], response: dict[str, str]) -> bool:
        return response.get("id") == request["id"]

    def reply(self, fields: dict[str, str]) -> Reply:
        def number(key: str) -> int | None:
            value = fields.get(key, "")
            return int(value) if value.lstrip("-").isdigit() else None

        return Reply(rc=fields.get("rc"), amount=number("amt"), balance=number("bal"),
                     points=number("pts"), auth=fields.get("auth"), tier=fields.get("tier"),
                     message=fields.get("msg"), fields=fields)


Dialect = IsoDialect | TglDialect


def dialect_for(protocol: str, *, bitmap: str = "ascii", config: Config | None = None) -> Dialect:
    if protocol == "iso":
        return IsoDialect(bitmap, config)
    if protocol == "tgl":
        return TglDialect(config)
    raise ValueError(f"protocol must be iso or tgl, not {protocol!r}")


def original_exchange(protocol: str, *, seq: str, terminal: str, merchant: str,
                      card: str | None = None, amount: int | None = None,
                      op: Op = Op.REDEEM, mti: str = "0200",
                      transmitted: str | None = None) -> Exchange:
    """The exchange a void or reversal names, rebuilt from what a till wrote down about it:
    its STAN and field 7 (ISO) or its id (TGL/1). Raises ValueError with a reason."""
    call = Call(op=op, card=card, amount=amount)
    if protocol == "tgl":
        if not (seq.isdigit() and 1 <= len(seq) <= 12):
            raise ValueError("the original's id is 1 to 12 digits")
        return Exchange(call=call, seq=seq, request={"id": seq})
    if not (seq.isdigit() and len(seq) == 6):
        raise ValueError("the original's STAN is 6 digits")
    if not (transmitted and transmitted.isdigit() and len(transmitted) == 10):
        raise ValueError("an ISO original needs its field 7 (MMDDhhmmss)")
    fields = request_fields(op, terminal=terminal, merchant=merchant, stan=seq, card=card,
                            amount=amount, mti=mti, transmitted=transmitted)
    return Exchange(call=call, seq=seq, request=fields)


def _hide_barcode(text: str) -> str:
    """Field 63 with the value of tag BC (a scanned payload holding the card) left out."""
    try:
        known, unknown = field63.parse(text)
    except field63.Field63Error:
        return "<unreadable>"
    known["BC"] = "<card data>"
    return field63.format({**known, **unknown})


def safe_request(fields: dict[str, str]) -> dict[str, str]:
    """A request's fields fit to print: card numbers masked, PIN and PIN block left out."""
    shown = {}
    for key, value in fields.items():
        if key in ("52", "pin"):
            continue
        if key in ("2", "103", "card", "target"):
            value = mask_card(value)
        elif key in ("35", "45", "track", "swipe", "barcode"):
            value = "<card data>"
        elif key == "63" and "BC" in value:
            value = _hide_barcode(value)
        shown[key] = value
    return shown


__all__ = ["Call", "Dialect", "Exchange", "IsoDialect", "Reply", "TglDialect", "dialect_for",
           "original_exchange", "safe_request", "transmission_time"]

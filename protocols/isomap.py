"""ISO 8583 field dicts <-> the gateway's one `Request`/`Result` (HOST-SPEC 2).

`message_to_request` reads a decoded message (protocols.isocodec.decode) and returns a `Request`,
or raises `IsoFormatError` with the response code to answer (`30` for a missing or malformed
field or tag, `12` for a processing code or network code HOST-SPEC does not define).
`result_to_response` turns the handler's `Result` into the response dict to encode;
`format_error_response` builds the answer to a message that could not be read at all (a
`IsoDecodeError` or `IsoFormatError`), or returns None when it cannot be answered (no readable
MTI and STAN: the caller closes the connection).

Field 2 in responses: echoed masked (first 6, `*`, last 4, same length; `*` is ASCII and field 2
is ASCII LLVAR in our specs) when `mask_pan` is true, left out when it is false. Never echoed whole.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from protocols import carddata, field63
from protocols.carddata_errors import CardDataError
from protocols.isocodec import readable_mti, readable_stan
from protocols.isospec import NUMERIC_FIELDS, SPEC_ASCII
from protocols.model import Op, Request, Result, iso_request_key, mask_card

__all__ = [
    "AUTHORISATION_CODES",
    "FINANCIAL_CODES",
    "NETWORK_CODES",
    "REQUEST_MTIS",
    "IsoFormatError",
    "clear_pin",
    "format0_pan_field",
    "format_error_response",
    "message_to_request",
    "response_mti",
    "result_to_response",
]

# HOST-SPEC 2.1: the MTIs a till may send (0401/0421 are repeats).
REQUEST_MTIS = frozenset({"0100", "0200", "0220", "0400", "0401", "0420", "0421", "0800"})

# HOST-SPEC 2.3, field 3 -> operation, by message class. `02xxxx` (void) is matched by prefix.
FINANCIAL_CODES: Mapping[str, Op] = {
    "900060": Op.ACTIVATE,
    "930060": Op.ACTIVATE_PREVALUED,
    "900090": Op.ACTIVATE,  # loyalty card: the program decides the kind
    "210060": Op.RELOAD,
    "006000": Op.REDEEM,
    "200060": Op.REFUND,
    "616000": Op.CASHOUT,
    "316000": Op.BALANCE,
    "319000": Op.POINTS_BALANCE,
    "486060": Op.TRANSFER,
    "000090": Op.EARN,
    "210090": Op.ADD_POINTS,
    "200090": Op.RETURN,
    "009000": Op.REDEEM_POINTS,
}
AUTHORISATION_CODES: Mapping[str, Op] = {
    "900060": Op.PREVALIDATE,
    "316000": Op.BALANCE,
    "319000": Op.POINTS_BALANCE,
}
VOID_PREFIX = "02"
NETWORK_CODES: Mapping[str, Op] = {"001": Op.SIGNON, "002": Op.SIGNOFF, "301": Op.ECHO}

# Operations whose field 4 is mandatory (HOST-SPEC 2.3 gives it a meaning for each of them).
AMOUNT_REQUIRED = frozenset({
    Op.ACTIVATE, Op.ACTIVATE_PREVALUED, Op.RELOAD, Op.REDEEM, Op.REFUND, Op.EARN,
    Op.ADD_POINTS, Op.RETURN,
})
ORIGINAL_REQUIRED = frozenset({Op.VOID, Op.REVERSAL})

# Fields every non-network message must carry: the request key, the operation, the terminal.
FINANCIAL_MANDATORY = ("3", "7", "11", "41", "42")
NETWORK_MANDATORY = ("11", "70")

# Echoed in every response when the request had them (HOST-SPEC: what a till matches on).
ECHO_FIELDS = ("3", "4", "7", "11", "12", "13", "37", "41", "42", "49")
NETWORK_ECHO_FIELDS = ("7", "11", "41", "42", "70")

POINTS_CURRENCY = "999"
AVAILABLE_BALANCE = "02"
MONEY_ACCOUNT = "60"
POINTS_ACCOUNT = "90"
RECEIPT_MESSAGE_MAX = 40
PAN_MIN, PAN_MAX = 6, 19
AMOUNT_LIMIT = 10**12  # field 4 is 12 digits

TAG_FIELDS = {"IN": "invoice", "OP": "operator", "RW": "reward", "UP": "upc", "SN": "serial"}
EXTRA_TAG_PREFIX = "63."
HEX16 = re.compile("[0-9A-Fa-f]{16}")


class IsoFormatError(ValueError):
    """A message that decoded but cannot become a Request; answer it with `code`.

    `fields_to_echo` is the decoded message (format_error_response picks what it may echo),
    `field` the field at fault (or `63.XX` for a tag), `reason` what was wrong.
    """

    def __init__(self, reason: str, *, field: str | None, fields: Mapping[str, str],
                 code: str = "30"):
        super().__init__(f"{reason} (field {field})")
        self.reason = reason
        self.field = field
        self.code = code
        self.fields_to_echo = dict(fields)
        self.mti = readable_mti(self.fields_to_echo)
        self.stan = readable_stan(self.fields_to_echo)


def response_mti(mti: str) -> str:
    """0200 -> 0210, 0220 -> 0230, 0401 -> 0410, 0421 -> 0430, 0800 -> 0810."""
    known = _RESPONSE_MTIS.get(mti)
    if known is not None:
        return known
    if len(mti) != 4 or not (mti.isascii() and mti.isdigit()) or mti[2] not in "02":
        raise ValueError(f"MTI {mti!r} is not a request or an advice")
    return f"{mti[:2]}{int(mti[2]) + 1}0"


_RESPONSE_MTIS: dict[str, str] = {}  # every request MTI's answer, worked out once
_RESPONSE_MTIS.update((mti, response_mti(mti)) for mti in REQUEST_MTIS)


# --- request ----------------------------------------------------------------------------------


def message_to_request(fields: Mapping[str, str], *, source: str | None = None,
                       clear_pin_blocks: bool = True, decoded: bool = False) -> Request:
    """The `Request` a decoded message asks for.

    `clear_pin_blocks`: field 52 is a clear ISO 9564 format 0 block (no PIN key configured for
    the terminal), so decode the PIN into `request.pin`; `pin_block` is always kept.
    `decoded`: `fields` comes straight from isocodec.decode, which has already checked that the
    numeric fields hold digits; a dict from anywhere else is checked here.
    """
    mti = fields.get("t", "")
    if mti not in REQUEST_MTIS:
        raise IsoFormatError(f"MTI {mti!r} is not one HOST-SPEC 2.1 accepts", field="t",
                             fields=fields)
    if not decoded:
        for key in NUMERIC_FIELDS:
            value = fields.get(key)
            if value is not None and not (value.isascii() and value.isdigit()):
                raise IsoFormatError("numeric field holds a non-digit", field=key,
                                     fields=fields)
    if mti == "0800":
        return _network_request(fields, source)
    return _financial_request(mti, fields, source, clear_pin_blocks)


def _require(fields: Mapping[str, str], keys: tuple[str, ...]) -> None:
    for key in keys:
        if not fields.get(key):
            raise IsoFormatError("mandatory field missing", field=key, fields=fields)


def _network_request(fields: Mapping[str, str], source: str | None) -> Request:
    _require(fields, NETWORK_MANDATORY)
    op = NETWORK_CODES.get(fields["70"])
    if op is None:
        raise IsoFormatError(f"network management code {fields['70']} not supported",
                             field="70", fields=fields, code="12")
    terminal, merchant = fields.get("41", ""), fields.get("42", "")
    key = iso_request_key("0800", terminal, merchant, fields["11"], fields.get("7", ""))
    return Request(op=op, terminal=terminal, merchant=merchant, key=key, source=source)


def _operation(mti: str, code: str, fields: Mapping[str, str]) -> tuple[Op, Op | None]:
    """(operation, original operation) for field 3 in this MTI."""
    if mti[1] == "4":
        original_mti = fields.get("90", "")[:4]
        return Op.REVERSAL, _processing_op(original_mti or "0200", code, fields)
    return _processing_op(mti, code, fields), None


def _processing_op(mti: str, code: str, fields: Mapping[str, str]) -> Op:
    if mti[1] == "1":
        op = AUTHORISATION_CODES.get(code)
    elif code.startswith(VOID_PREFIX):
        op = Op.VOID
    else:
        op = FINANCIAL_CODES.get(code)
    if op is None:
        raise IsoFormatError(f"processing code {code} not defined for MTI {mti}", field="3",
                             fields=fields, code="12")
    return op


def _financial_request(mti: str, fields: Mapping[str, str], source: str | None,
                       clear_pin_blocks: bool) -> Request:
    _require(fields, FINANCIAL_MANDATORY)
    op, original_op = _operation(mti, fields["3"], fields)
    terminal, merchant, stan, transmitted = fields["41"], fields["42"], fields["11"], fields["7"]
    known, unknown = _tags(fields)
    card = _card(fields, known)

    amount = 0
    if "4" in fields:
        amount = int(fields["4"])
    elif op in AMOUNT_REQUIRED or (op is Op.REDEEM_POINTS and "RW" not in known):
        raise IsoFormatError(f"field 4 is mandatory for {op.value}", field="4", fields=fields)

    request = Request(
        op=op, terminal=terminal, merchant=merchant,
        key=iso_request_key(mti, terminal, merchant, stan, transmitted),
        card=card, amount=amount, currency=fields.get("49"), source=source,
        rrn=fields.get("37"), entry_mode=fields.get("22"), original_op=original_op,
        advice=mti[2] == "2", repeat=mti[3] == "1",
        partial_ok=_partial_ok(known, fields) if known else False,
        extras={EXTRA_TAG_PREFIX + tag: value for tag, value in unknown.items()} if unknown
        else {},
    )
    if known:
        for tag, attribute in TAG_FIELDS.items():
            if tag in known:
                setattr(request, attribute, known[tag])
    if request.invoice is not None and not 1 <= len(request.invoice) <= 20:
        raise IsoFormatError("invoice number must be 1 to 20 characters", field="63.IN",
                             fields=fields)
    # the staff id is stored on the journal entry (opid) and in the back office (20 characters),
    # as TGL's `opid` is limited to
    if request.operator is not None and not (1 <= len(request.operator) <= 20
                                             and request.operator.isprintable()):
        raise IsoFormatError("operator id must be 1 to 20 printable characters", field="63.OP",
                             fields=fields)
    if op in ORIGINAL_REQUIRED:
        request.original_key = _original_key(fields, terminal, merchant)
    if op is Op.TRANSFER:
        request.target_card = _pan(fields, "103")
    if "52" in fields:
        request.pin_block = fields["52"]
        pin = _pin_from_block(fields, card)
        request.pin = pin if clear_pin_blocks else None
    return request


def _tags(fields: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    if "63" not in fields:
        return {}, {}
    try:
        return field63.parse(fields.get("63", ""))
    except field63.Field63Error as exc:
        raise IsoFormatError(exc.reason, field="63", fields=fields) from None


def _partial_ok(known: Mapping[str, str], fields: Mapping[str, str]) -> bool:
    flag = known.get("PA", "0")
    if flag not in ("0", "1"):
        raise IsoFormatError("tag PA must be 0 or 1", field="63.PA", fields=fields)
    return flag == "1"


def _pan(fields: Mapping[str, str], key: str) -> str:
    value = fields.get(key, "")
    if not (PAN_MIN <= len(value) <= PAN_MAX and value.isascii() and value.isdigit()):
        raise IsoFormatError(f"field {key} must be {PAN_MIN} to {PAN_MAX} digits", field=key,
                             fields=fields)
    return value


def _card(fields: Mapping[str, str], known: Mapping[str, str]) -> str:
    """Field 2, else track 2 (35), else track 1 (45), else the barcode in tag BC."""
    if "2" in fields:
        return _pan(fields, "2")
    for key, text in (("35", fields.get("35")), ("45", fields.get("45")),
                      ("63.BC", known.get("BC"))):
        if text is None:
            continue
        try:
            return carddata.card_number(text)
        except CardDataError as exc:
            raise IsoFormatError(f"card data unreadable: {exc.kind}", field=key,
                                 fields=fields) from None
    raise IsoFormatError("no card: field 2, 35, 45 or tag BC is mandatory", field="2",
                         fields=fields)


def _original_key(fields: Mapping[str, str], terminal: str, merchant: str) -> str:
    """Field 90: original MTI (4) + STAN (6) + transmission date/time (10) + two ids (11 + 11)."""
    original = fields.get("90")
    if original is None:
        raise IsoFormatError("field 90 (original data elements) is mandatory", field="90",
                             fields=fields)
    if not (original.isascii() and original.isdigit()):
        raise IsoFormatError("field 90 must be 42 digits", field="90", fields=fields)
    return iso_request_key(original[0:4], terminal, merchant, original[4:10], original[10:20])


def _pin_from_block(fields: Mapping[str, str], card: str) -> str | None:
    block = fields["52"]
    try:
        return clear_pin(block, card)
    except ValueError:
        raise IsoFormatError("field 52 must be 16 hexadecimal characters", field="52",
                             fields=fields) from None


def format0_pan_field(pan: str) -> int:
    """ISO 9564 format 0 PAN field: 0000 and the 12 PAN digits left of the check digit."""
    return int("0000" + pan[:-1][-12:].rjust(12, "0"), 16)


def clear_pin(block: str, pan: str) -> str | None:
    """The PIN in a clear ISO 9564 format 0 block (PIN field XOR PAN field), or None.

    None means the block is well-formed hex but is not a format 0 block for this card (wrong
    card, or encrypted under a key we were not told about): the handler treats it as a wrong
    PIN, as HOST-SPEC treats a missing one. Raises ValueError when `block` is not 16 hex digits.
    """
    if HEX16.fullmatch(block) is None:
        raise ValueError("PIN block is not 16 hexadecimal characters")
    value = int(block, 16)
    if not (pan.isascii() and pan.isdigit()):
        return None
    clear = f"{value ^ format0_pan_field(pan):016X}"
    length = int(clear[1], 16)
    if clear[0] != "0" or not 4 <= length <= 12:
        return None
    pin, padding = clear[2:2 + length], clear[2 + length:]
    if not pin.isdigit() or padding != "F" * len(padding):
        return None
    return pin


# --- responses --------------------------------------------------------------------------------


def _printable(text: str, limit: int) -> str:
    """Receipt text as printable ASCII (the spec is ASCII), at most `limit` characters."""
    return "".join(c if " " <= c <= "~" else "?" for c in text[:limit])


# A tier is one of a few names (the programs' tiers), answered on every loyalty approval of a
# program with tiers: made printable once per name, not per answer.
_printable_tier = functools.lru_cache(maxsize=256)(lambda tier: _printable(tier, 40))


def _masked_pan(value: str) -> str | None:
    if PAN_MIN <= len(value) <= PAN_MAX and value.isascii() and value.isdigit():
        return mask_card(value)
    return None


def _balance_entries(request_fields: Mapping[str, str], result: Result) -> str:
    """Field 54: account type + `02` + currency + C/D + 12 digits, money first, then points."""
    code = request_fields.get("3", "")
    # the first account of field 3 (from, then to) that is named and not the points account
    money_account = MONEY_ACCOUNT
    for account in (code[2:4], code[4:6]):
        if account not in _NOT_MONEY_ACCOUNTS:
            money_account = account
            break
    currency = result.currency or request_fields.get("49")
    entries = []
    if result.balance is not None and currency is not None:
        entries.append(_amount_entry(money_account, currency, result.balance))
    if result.points is not None:
        entries.append(_amount_entry(POINTS_ACCOUNT, POINTS_CURRENCY, result.points))
    return "".join(entries)


_NOT_MONEY_ACCOUNTS = frozenset({"", "00", POINTS_ACCOUNT})


def _amount_entry(account: str, currency: str, value: int) -> str:
    if abs(value) >= AMOUNT_LIMIT:
        raise ValueError("balance does not fit field 54's 12 digits")
    return f"{account}{AVAILABLE_BALANCE}{currency}{'C' if value >= 0 else 'D'}{abs(value):012d}"


def _response_tags(result: Result) -> str:
    if result.points is None and not (result.tier or result.expiry or result.message):
        return ""  # most answers: nothing for field 63
    tags: dict[str, str] = {}
    if result.points is not None:
        tags["PT"] = str(result.points)
    if result.tier:
        tags["TR"] = _printable_tier(result.tier)
    if result.expiry:
        tags["EX"] = result.expiry
    if result.message:
        tags["MS"] = _printable(result.message, RECEIPT_MESSAGE_MAX)
    return field63.format(tags)


def _auth_id(result: Result, request_fields: Mapping[str, str]) -> str:
    """Field 38 (6 characters): the handler's id, left-padded with zeros; the STAN if none."""
    auth = result.auth_id or request_fields.get("11", "")
    if not 1 <= len(auth) <= 6 or not auth.isascii() or not auth.isprintable():
        raise ValueError("auth_id must be 1 to 6 printable ASCII characters")
    return auth.rjust(6, "0")


def result_to_response(request_fields: Mapping[str, str], result: Result, *,
                       mask_pan: bool = True) -> dict[str, str]:
    """The response to a decoded request: MTI + 10, the echoed fields, 38, 39, 54 and 63."""
    mti = request_fields["t"]
    response: dict[str, str] = {"t": response_mti(mti)}
    if mti[1] == "8":
        for key in NETWORK_ECHO_FIELDS:
            if key in request_fields:
                response[key] = request_fields[key]
        response["39"] = result.code
        return response

    if mask_pan and "2" in request_fields:
        masked = _masked_pan(request_fields["2"])
        if masked is not None:
            response["2"] = masked
    for key in ECHO_FIELDS:
        if key in request_fields:
            response[key] = request_fields[key]
    if result.amount is not None:
        if not 0 <= result.amount < AMOUNT_LIMIT:
            raise ValueError("approved amount does not fit field 4's 12 digits")
        response["4"] = f"{result.amount:012d}"
    if result.approved:
        response["38"] = _auth_id(result, request_fields)
    response["39"] = result.code
    balances = _balance_entries(request_fields, result)
    if balances:
        response["54"] = balances
    tags = _response_tags(result)
    if tags:
        response["63"] = tags
    return response


def _echoable(key: str, value: object) -> bool:
    """A field from a (possibly half-decoded) message that can go back in a response as is."""
    if not isinstance(value, str) or not value.isascii():
        return False
    spec = SPEC_ASCII[key]
    if spec["len_type"] == 0 and len(value) != spec["max_len"]:
        return False
    return not (key in NUMERIC_FIELDS and not value.isdigit())


def format_error_response(fields: Mapping[str, str], *, code: str = "30",
                          mask_pan: bool = True) -> dict[str, str] | None:
    """The `30` (or `code`) answer to a message that could not be mapped, or None.

    None when the MTI (4 digits, a request or advice) or the STAN (6 digits) cannot be read:
    such a message cannot be matched by the till, so the caller closes the connection.
    Echoes every field of ECHO_FIELDS (and 70 for 0800) that is well-formed.
    """
    mti, stan = readable_mti(fields), readable_stan(fields)
    if mti is None or stan is None or mti[2] not in "02":
        return None
    response: dict[str, str] = {"t": response_mti(mti)}
    echo = NETWORK_ECHO_FIELDS if mti[1] == "8" else ECHO_FIELDS
    if mask_pan and mti[1] != "8":
        masked = _masked_pan(str(fields.get("2", "")))
        if masked is not None:
            response["2"] = masked
    for key in echo:
        if key in fields and _echoable(key, fields[key]):
            response[key] = fields[key]
    response["39"] = code
    return response

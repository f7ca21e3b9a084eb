"""The one request and result type every transport maps onto (DESIGN.md: data flows one way).

ISO 8583 over TCP or serial, TGL/1, the HTTP API and the simulator all turn their bytes into a
`Request` and turn a `Result` back into bytes, so the rules of an operation live in one place
(the handler and its store script), never in a codec.

Money and points are integers in minor units; nothing here is ever a float.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field


class Op(enum.Enum):
    """Operations of HOST-SPEC table 2.3 plus network management. Values are TGL/1 `op` names."""

    # Members are compared by identity; hash them by identity too, in C. Enum's own __hash__
    # is Python code (hash of the name), and an Op is hashed a dozen times per request (sets
    # like PIN_OPS, tables like SCRIPT_OF): 65 -> 18 ns a lookup. String hashes differ from
    # one process to the next anyway, so no iteration order changes that could have been relied on.
    __hash__ = object.__hash__

    SIGNON = "signon"
    SIGNOFF = "signoff"
    ECHO = "echo"
    ACTIVATE = "activate"  # variable amount gift, or loyalty (kind decided by the program)
    ACTIVATE_PREVALUED = "activate_prevalued"
    PREVALIDATE = "prevalidate"
    RELOAD = "reload"
    REDEEM = "redeem"
    REFUND = "refund"
    CASHOUT = "cashout"
    BALANCE = "balance"
    POINTS_BALANCE = "pbalance"
    VOID = "void"
    REVERSAL = "reverse"
    TRANSFER = "transfer"
    EARN = "earn"
    ADD_POINTS = "padd"
    RETURN = "return"
    REDEEM_POINTS = "predeem"

    @property
    def is_network(self) -> bool:
        return self in _NETWORK_OPS


# Looked up once: `Op.SIGNON` goes through the enum's class attribute machinery each time.
_NETWORK_OPS = frozenset({Op.SIGNON, Op.SIGNOFF, Op.ECHO})


class RC:
    """Response codes of HOST-SPEC 2.5 (field 39, TGL/1 `rc`)."""

    APPROVED = "00"
    PARTIAL = "10"
    DO_NOT_HONOUR = "05"
    INVALID_TRANSACTION = "12"
    INVALID_AMOUNT = "13"
    UNKNOWN_CARD = "14"
    ORIGINAL_NOT_FOUND = "25"
    FORMAT_ERROR = "30"
    LOST_CARD = "41"
    INSUFFICIENT_FUNDS = "51"
    EXPIRED = "54"
    INCORRECT_PIN = "55"
    TERMINAL_NOT_PERMITTED = "58"
    LIMIT_EXCEEDED = "61"
    SUSPENDED = "62"
    VELOCITY = "65"
    PIN_TRIES_EXCEEDED = "75"
    NOT_ACTIVE = "78"
    OVERLOADED = "91"
    DUPLICATE = "94"
    SYSTEM_ERROR = "96"

    ALL = frozenset(
        {"00", "10", "05", "12", "13", "14", "25", "30", "41", "51", "54", "55", "58", "61",
         "62", "65", "75", "78", "91", "94", "96"}
    )
    APPROVALS = frozenset({"00", "10"})


@dataclass(slots=True)
class Request:
    """One operation asked for by a till, a reseller, an operator or the HTTP API.

    `key` is the request key of HOST-SPEC 2.2 (ISO) or section 3 (TGL/1), already rendered as a
    string by the codec; `original_key` names the original for a void or a reversal, in the same
    form. `fingerprint()` is what decides "same key, same content" (a retransmission) from "same
    key, other content" (94).
    """

    op: Op
    terminal: str
    merchant: str
    key: str
    card: str | None = None
    amount: int = 0
    currency: str | None = None  # ISO 4217 numeric, or None when the channel has none
    pin: str | None = field(default=None, repr=False)  # clear PIN digits: memory only, no repr
    pin_block: str | None = field(default=None, repr=False)  # field 52 as received
    invoice: str | None = None
    operator: str | None = None
    partial_ok: bool = False
    reward: str | None = None
    target_card: str | None = None
    upc: str | None = None
    serial: str | None = None
    rrn: str | None = None
    original_key: str | None = None
    original_op: Op | None = None  # for reversals: what the original was, when the codec knows
    advice: bool = False  # 0220/0420: completed offline, posted, never declined for funds
    repeat: bool = False  # 0401/0421
    entry_mode: str | None = None
    channel: str = "iso"
    source: str | None = None  # peer address, for per-source rate limits
    extras: dict[str, str] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """A short digest of the content that must match on a retransmission of the same key.

        The PIN is deliberately not part of it: a till that re-keys a PIN on a retry is still
        retransmitting. Only the card's hash-free digest goes in, never the number itself.
        """
        parts = (
            self.op.value, self.card or "", str(self.amount), self.currency or "",
            self.invoice or "", self.reward or "", self.target_card or "", self.upc or "",
            self.serial or "", self.original_key or "",
        )
        return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).hexdigest()


@dataclass(slots=True)
class Result:
    """What the host answers. Balances are the card's after the operation, when known."""

    code: str
    amount: int | None = None  # approved amount (differs from the request on partial approval)
    balance: int | None = None  # money, minor units
    points: int | None = None
    currency: str | None = None
    auth_id: str | None = None
    tier: str | None = None
    expiry: str | None = None  # YYYYMMDD
    message: str | None = None

    @property
    def approved(self) -> bool:
        return self.code in RC.APPROVALS


def mask_card(card: str | None) -> str:
    """First 6 and last 4, the most of a card number that may appear in logs, metrics or errors."""
    if not card:
        return ""
    if len(card) <= 4:  # too short to show any of it without showing all of it
        return "*" * len(card)
    if len(card) <= 10:
        return card[:2] + "*" * (len(card) - 4) + card[-2:]
    return card[:6] + "*" * (len(card) - 10) + card[-4:]


def iso_request_key(mti: str, terminal: str, merchant: str, stan: str, transmitted: str) -> str:
    """HOST-SPEC 2.2: (MTI class, field 41, field 42, field 11, field 7).

    The class is the MTI's second digit (1 authorisation, 2 financial, 4 reversal, 8 network),
    so a 0220 advice and its 0200 share a key, and a 0401 repeat is its 0400's key.
    """
    return f"I{mti[1:2]}:{terminal}:{merchant}:{stan}:{transmitted}"


def line_request_key(terminal: str, merchant: str, seq: str, day: str) -> str:
    """HOST-SPEC 3: (`term`, `merch`, `id`, the day as YYYYMMDD, UTC)."""
    return f"L:{terminal}:{merchant}:{seq}:{day}"

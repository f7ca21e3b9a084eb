"""A portal transaction is a till's transaction: a form becomes the `protocols.model.Request` a
till would send, and the live Processor (the one the tills' listeners submit to) decides it with
the same program checks, velocity rules, journal, alerts and invoice de-duplication.

Who and where:

- terminal and merchant: the merchant's `portal_terminal` (config `merchants.<id>`), a terminal
  id of its own, so the terminal's velocity rules, `tillgate terminals disable` and the reports
  see the portal as one more terminal of the merchant. A merchant without one has no portal
  transactions. Staff and managers act for their own merchant; head office picks one.
- operator: `ui:<operator id>`, the request's operator field: the journal entry's `opid`, which
  "recent interactions" and the per-staff reports read (gateway/backoffice/staff.py).
- request key: `P:<terminal>:<merchant>:<opid>:<nonce>`, the nonce drawn when the form was
  rendered. Sending the same form twice (a double click, a reload) is a retransmission, answered
  as the first was without a second change; a new form is a new transaction (and with a used
  invoice number, the tills' 94).

The answer is shown as a till would see it: the response code and its meaning, the balance or
points after, the tier, and the points this transaction moved (from its own journal entry).
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass

from gateway.backoffice.operators import Operator
from gateway.config.model import Config, Program
from gateway.ledger.amounts import parse_amount
from gateway.ledger.cards import card_id, journal_key
from gateway.ledger.checks import PORTAL_CHANNEL
from gateway.ledger.journal import latest
from gateway.sim.render import RC_MEANINGS
from gateway.web.portal.cardlookup import MAX_INPUT, may_see
from protocols.carddata import CardDataError, card_number
from protocols.model import RC, Op, Request, Result, mask_card

log = logging.getLogger(__name__)

OPID_PREFIX = "ui:"
CHANNEL = PORTAL_CHANNEL  # the only channel its merchant's portal terminal is taken from
NONCE = re.compile(r"^[0-9a-f]{16}$")
INVOICE = re.compile(r"^[ -~]{1,20}$")  # as TGL's `inv` and field 63 `IN` take it
PIN = re.compile(r"^[0-9]{4,12}$")
MAX_POINTS = 10**9
OWN_ENTRIES = 5  # journal entries read back to find this request's own (earn, tier, convert)

# What a person asks for, by the kind of the card's program: the operation a till would send.
OPERATIONS: dict[str, dict[str, Op]] = {
    "gift": {"purchase": Op.REDEEM, "load": Op.RELOAD, "return": Op.REFUND},
    "loyalty": {"purchase": Op.EARN, "return": Op.RETURN},
}
KIND_NAMES = {"purchase": "Purchase", "load": "Load", "return": "Return / refund"}


class Refused(Exception):
    """The form cannot become a request; the message is for the page."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def opid(operator: Operator) -> str:
    return f"{OPID_PREFIX}{operator.id}"


def new_nonce() -> str:
    return secrets.token_hex(8)


def terminal_for(config: Config, merchant_id: str | None) -> str:
    """The portal terminal of a merchant; Refused where it has none."""
    merchant = config.merchants.get(merchant_id or "")
    if merchant is None:
        raise Refused("Choose a merchant to act for.")
    if not merchant.portal_terminal:
        raise Refused(f"Merchant {merchant.id} has no portal terminal, so transactions cannot "
                      f"be sent from the portal (config: merchants.{merchant.id}."
                      f"portal_terminal).", 409)
    return merchant.portal_terminal


def operation(kind: str, program: Program) -> Op:
    found = OPERATIONS["loyalty" if program.is_loyalty else "gift"].get(kind)
    if found is None:
        raise Refused(f"A {program.kind} card has no {KIND_NAMES.get(kind, kind).lower()}.")
    return found


def read_card(config: Config, operator: Operator, text: str) -> tuple[str, Program]:
    """A typed number, a scanned barcode or a QR payload (protocols.carddata, as for a till) and
    its program, which must be open to the operator's merchant (else 58, as a till of theirs
    would be answered; from the config alone, so it says nothing of whether the card exists)."""
    text = text.strip()
    if not text or len(text) > MAX_INPUT:
        raise Refused("Enter, scan or paste a card number, barcode or QR code.")
    try:
        number = card_number(text)
    except CardDataError as e:  # the kind and position only: the message may quote the data
        raise Refused(f"That is not a card we can read ({e.kind} error at position "
                      f"{e.position}).") from None
    program = config.program_of_card(number)
    if program is None:
        raise Refused("No program has card numbers like this one.", 404)
    if not may_see(operator, program):
        log.warning("portal: operator %d (%s of %s) refused card %s of program %s (%s)",
                    operator.id, operator.role, operator.merchant, mask_card(number),
                    program.id, RC.TERMINAL_NOT_PERMITTED)
        raise Refused(f"This card's program is not open to your merchant "
                      f"({RC.TERMINAL_NOT_PERMITTED}, as a till of your merchant would be "
                      f"answered).", 403)
    return number, program


def money(text: str, what: str = "Amount") -> int:
    """An amount typed by a person, in minor units (Decimal, never a float)."""
    try:
        value = parse_amount(text)
    except ValueError:
        raise Refused(f"{what}: a number such as 12.50.") from None
    if value <= 0:
        raise Refused(f"{what}: more than 0.")
    return value


def points(text: str) -> int:
    text = text.strip()
    if not text.isdigit() or not 0 < int(text) <= MAX_POINTS:
        raise Refused("Points: a whole number more than 0.")
    return int(text)


def invoice(text: str, program: Program) -> str | None:
    """The invoice number, required where the program requires one (as from a till)."""
    text = text.strip()
    if not text:
        if program.invoice_required:
            raise Refused(f"Program {program.id} needs an invoice number.")
        return None
    if not INVOICE.match(text):
        raise Refused("Invoice number: 1 to 20 letters, digits or signs.")
    return text


def pin(text: str) -> str | None:
    if not text:
        return None
    if not PIN.match(text):
        raise Refused("PIN: 4 to 12 digits.")
    return text


def request(config: Config, operator: Operator, merchant: str, op: Op, card: str, amount: int,
            nonce: str, *, invoice: str | None = None, reward: str | None = None,
            pin: str | None = None, source: str | None = None) -> Request:
    """The till's Request for this form."""
    if not NONCE.match(nonce):
        raise Refused("This form is out of date. Open the card again.")
    terminal = terminal_for(config, merchant)
    who = opid(operator)
    return Request(op=op, terminal=terminal, merchant=merchant,
                   key=f"P:{terminal}:{merchant}:{who}:{nonce}", card=card, amount=amount,
                   pin=pin or None, invoice=invoice or None, operator=who, reward=reward,
                   channel=CHANNEL, source=source)


@dataclass(frozen=True)
class Answer:
    """A Result as the page shows it."""

    code: str
    meaning: str
    approved: bool
    loyalty: bool
    amount: int | None
    balance: int | None
    points: int | None
    tier: str | None
    moved: int | None  # points this request added (+) or took (-), from its journal entry
    message: str | None


def meaning(code: str) -> str:
    return RC_MEANINGS.get(code, "unknown code")


async def send(portal, req: Request, program: Program) -> Answer:
    """Submit to the live Processor and read back what the transaction did."""
    processor = portal.processor_source()
    if processor is None:
        raise Refused("The gateway is starting; try again in a moment.", 503)
    result: Result = await processor.process(req)
    moved = None
    if result.approved and program.is_loyalty and req.card:
        entries = await latest(portal.store(), journal_key(card_id(req.card)), OWN_ENTRIES)
        own = [e for e in entries if e.key == req.key]
        moved = own[0].dp if own else None  # the first: a tier or conversion entry follows it
    log.info("portal: operator %s %s %s card %s at %s/%s: %s", req.operator, req.op.value,
             req.amount, mask_card(req.card), req.terminal, req.merchant, result.code)
    return Answer(code=result.code, meaning=meaning(result.code), approved=result.approved,
                  loyalty=program.is_loyalty, amount=result.amount, balance=result.balance,
                  points=result.points, tier=result.tier, moved=moved,
                  message=None if result.code == RC.APPROVED else result.message)

"""Ordering an e-card: a virtual gift card issued for a recipient and sent by e-mail
(docs/ecards.md). The admin API (`POST /v1/ecards`), the portal's e-card page and
`tillgate ecards order` all come here.

An order is idempotent as `POST /v1/cards/issue` is (gateway/issuance/realtime.py), and by the
same machinery: the client and its key name the order (`tag`); the order's fingerprint is
claimed under that tag; its one card is drawn from `DerivedDraws(secret, tag)` and activated
with the request key `API:<tag>:0`, so asking again finds the same card and replays its
activation. Then the order's row goes into the back office (`ecards`, keyed by the tag: asking
again finds it), which is the delivery queue (gateway/issuance/ecardqueue.py). A call cut short
anywhere is finished, not repeated, by asking again.

Value: per program `ecard_load`, "order" activates the card now (journalled with the ordering
client as operator and the order's tag in the request key); "first_use" issues it pre-valued
(face value = the amount), for the first till to activate.

The number and the PIN go into the row sealed (the portal's Fernet key,
gateway/security/secretbox.py); the PIN is dropped once delivered. A resend draws the PIN again
from the order's derivation (no store call), which gives the one the card was issued with.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.backoffice import ecards as rows
from gateway.backoffice.ecards import EcardRow
from gateway.config.model import Config, Program
from gateway.config.urls import base_url
from gateway.issuance.derived import DerivedDraws
from gateway.issuance.realtime import Order, claim_fingerprint, issue_order, order_tag
from gateway.ledger.cards import DRAWS, card_id, draw_card, operator_activation
from gateway.ledger.checks import amount_refusal
from gateway.ledger.processor import Processor
from gateway.ledger.store import Store
from gateway.metrics import families as metrics
from gateway.security.secretbox import SecretBox, key_path
from protocols.model import RC, Result, mask_card

FIELDS = frozenset({"program", "amount", "recipient_name", "recipient_email", "sender_name",
                    "message", "deliver_at"})
MAX_MESSAGE = 1000
_EMAIL = re.compile(r"[^@\s<>\",;]+@[^@\s<>\",;]+\.[^@\s<>\",;]+")
MAX_DELIVER_AHEAD = 400 * 86400  # a birthday next year, not a date in another decade


class EcardRefused(ValueError):
    """The order is refused: `status` is the HTTP status that says so (400, 409, 422, 503)."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class EcardOrder:
    program: Program
    amount: int  # minor units (points for loyalty)
    recipient_name: str
    recipient_email: str
    sender_name: str
    message: str
    deliver_t: int | None  # epoch seconds as asked (a time past is now); None: now

    def fingerprint(self, placed_t: int | None = None) -> str:
        """What asking again must repeat exactly (the key stays bound to one order). Against
        an order placed at `placed_t`, a delivery time not after it meant "now"."""
        deliver = self.deliver_t
        if deliver is not None and placed_t is not None and deliver <= placed_t:
            deliver = None
        return "ecard|" + json.dumps([self.program.id, self.amount, self.recipient_name,
                                      self.recipient_email, self.sender_name, self.message,
                                      deliver])

    def card_order(self) -> Order:
        if self.program.ecard_load == "first_use":
            return Order(self.program, 1, None, self.amount)
        return Order(self.program, 1, self.amount, 0)


def fingerprint_of(row: EcardRow, program: Program) -> str:
    """The fingerprint of the order a row holds, as EcardOrder.fingerprint(row.created_t)."""
    return EcardOrder(program, row.amount, row.recipient_name, row.recipient_email,
                      row.sender_name, row.message, row.deliver_t).fingerprint(row.created_t)


def parse_order(config: Config, body: dict[str, Any], now: float) -> EcardOrder:
    """The order a JSON body (or a form, or the command line, made into one) asks for; raises
    EcardRefused(400) naming the first field that is wrong."""
    def bad(message: str) -> EcardRefused:
        return EcardRefused(400, message)

    unknown = sorted(set(body) - FIELDS)
    if unknown:  # a misspelt field must not order a card without it
        raise bad(f"unknown field {unknown[0]!r} (known: {', '.join(sorted(FIELDS))})")
    name = body.get("program")
    program = config.programs.get(name) if isinstance(name, str) else None
    if program is None:
        raise bad(f"program: one of {', '.join(config.programs)}")
    if not program.numbers_can_be_drawn:
        raise bad(f"program {program.id}: its numbers cannot be drawn")
    amount = body.get("amount")
    if not (isinstance(amount, int) and not isinstance(amount, bool) and amount > 0):
        raise bad("amount: a whole number of minor units (points for loyalty) above 0")
    texts = {}
    for field, longest in (("recipient_name", 200), ("sender_name", 200)):
        value = body.get(field)
        if not isinstance(value, str) or not value.strip() or len(value) > longest \
                or not value.isprintable():
            raise bad(f"{field}: one line of 1 to {longest} characters")
        texts[field] = value.strip()
    email = body.get("recipient_email")
    if not isinstance(email, str) or len(email) > 254 or not _EMAIL.fullmatch(email.strip()):
        raise bad("recipient_email: an e-mail address")
    message = body.get("message", "")
    if not isinstance(message, str) or len(message) > MAX_MESSAGE or any(
            not (c.isprintable() or c in "\r\n") for c in message):
        raise bad(f"message: text of at most {MAX_MESSAGE} characters")
    deliver = body.get("deliver_at")
    deliver_t = None
    if deliver is not None:
        if not (isinstance(deliver, int) and not isinstance(deliver, bool)):
            raise bad("deliver_at: epoch seconds (a whole number), or absent for now")
        if deliver > now + MAX_DELIVER_AHEAD:
            raise bad("deliver_at: at most 400 days ahead")
        deliver_t = deliver  # a time past is now (_place), and asking again repeats it as is
    return EcardOrder(program, amount, texts["recipient_name"], email.strip(),
                      texts["sender_name"], message.replace("\r\n", "\n").strip(), deliver_t)


def member_url(config: Config) -> str:
    return config.ecards.member_url or f"{base_url(config)}/m/"


def draw_secret(config: Config) -> bytes:
    """What an order's card is drawn from: `security.issue_secret` where set (the same as
    /v1/cards/issue); else a secret derived from the portal key (created at first use), so
    e-cards work in the embedded default too."""
    if config.security.issue_secret is not None:
        return config.security.issue_secret.value
    SecretBox.for_config(config)  # makes the key file if it is not there yet
    return hashlib.sha256(b"tillgate e-card draws\0" + key_path(config).read_bytes().strip()
                          ).digest()


def ecard_tag(client: str, key: str) -> str:
    """Apart from /v1/cards/issue's tags: one key may name an order of each kind."""
    return order_tag(f"ecard\0{client}", key)


async def place_order(config: Config, store: Store, processor: Processor, engine: AsyncEngine,
                      order: EcardOrder, client: str, key: str,
                      now: float) -> tuple[EcardRow, bool]:
    """The order's row, placed now (True) or found from an earlier call (False); raises
    EcardRefused (409 another order under this key, 422 the activation refused)."""
    card_order = order.card_order()
    if card_order.activate is not None:  # refused whatever the card: say so before issuing
        refused = amount_refusal(operator_activation(
            None, order.amount, 0, client, "check", "ecard"), order.program)
        if refused is None and 0 < order.program.max_balance < order.amount:
            refused = Result(RC.LIMIT_EXCEEDED)
        if refused is not None:
            raise EcardRefused(422, f"amount: refused with {refused.code}", refused.code)
    tag = ecard_tag(client, key)
    # A placed order's row binds its key for good (the claim below lives only as long as
    # request records): it answers first, and a claim is never taken over it.
    existing = await rows.get(engine, tag)
    if existing is None and await claim_fingerprint(store, tag, order.fingerprint(),
                                                    processor.record_ttl):
        return await _place(config, store, processor, engine, order, client, tag, now)
    if existing is None:  # claimed for another order that is being placed (or failed)
        raise EcardRefused(409, "this Idempotency-Key was used for another order")
    if order.fingerprint(existing.created_t) != fingerprint_of(existing, order.program):
        raise EcardRefused(409, "this Idempotency-Key was used for another order")
    return existing, False


async def _place(config: Config, store: Store, processor: Processor, engine: AsyncEngine,
                 order: EcardOrder, client: str, tag: str, now: float) -> tuple[EcardRow, bool]:
    """The claimed order's card (issued now, or found again) and its row."""
    card_order = order.card_order()
    secret = draw_secret(config)
    cards, refusal = await issue_order(store, processor, card_order, secret, tag, client)
    if refusal is not None:
        raise EcardRefused(422, f"activation refused with {refusal.code}", refusal.code)
    issued = cards[0]
    box = SecretBox.for_config(config)
    at = int(now)
    deliver_t = max(order.deliver_t or at, at)
    row, created = await rows.add(engine, {
        "id": tag, "client": client[:64], "program": order.program.id, "amount": order.amount,
        "load": order.program.ecard_load, "card_id": card_id(issued.card),
        "card_mask": mask_card(issued.card), "card_sealed": box.seal(issued.card),
        "pin_sealed": box.seal(issued.pin) if issued.pin else None,
        "recipient_name": order.recipient_name, "recipient_email": order.recipient_email,
        "sender_name": order.sender_name, "message": order.message, "deliver_t": deliver_t,
        "due_t": deliver_t,
        "state": "queued", "next_t": deliver_t, "attempts": 0, "sends": 0, "created_t": at})
    if created:
        metrics.ECARDS_ORDERED.labels(order.program.id).inc()
    return row, created


def card_and_pin(config: Config, row: EcardRow) -> tuple[str, str]:
    """The e-card's number and PIN for its e-mail: the PIN from the row while it is held
    (sealed), else drawn again from the order's derivation (a resend)."""
    box = SecretBox.for_config(config)
    card = box.open(row.card_sealed)
    if row.pin_sealed is not None:
        return card, box.open(row.pin_sealed)
    program = config.programs.get(row.program)
    if program is None or not program.pin_required:
        return card, ""
    return card, redraw_pin(config, program, row.id, card)


def redraw_pin(config: Config, program: Program, tag: str, card: str) -> str:
    """The PIN the order's card was issued with: the order's draws made again (no store call:
    a draw that found its number taken was drawn again, so the card's draw is the first one
    that gives its number)."""
    secret = draw_secret(config)
    for attempt in range(DRAWS):
        number, pin = draw_card(program, DerivedDraws(secret, f"{tag}:0:{attempt}"))
        if number == card:
            return pin
    raise RuntimeError(f"e-card {tag}: its PIN cannot be drawn again (the secret changed?)")


async def resend(engine: AsyncEngine, order_id: str, now: float) -> EcardRow:
    """Queue a sent or failed e-card's e-mail again, due now; raises EcardRefused (404 unknown,
    409 while it is still queued or being sent)."""
    if not await rows.resend(engine, order_id, int(now)):
        found = await rows.get(engine, order_id)
        if found is None:
            raise EcardRefused(404, "no such e-card order")
        raise EcardRefused(409, f"the e-card is {found.state} already: nothing to resend")
    row = await rows.get(engine, order_id)
    assert row is not None
    return row

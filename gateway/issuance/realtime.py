"""Issuing cards in real time: what `POST /v1/cards/issue` does (docs/security.md).

A web shop that sells e-gift cards asks for cards as orders are paid. When an answer is lost (a
timeout, a restart on either side) it must be able to ask again without getting a second set of
cards, least of all a second set loaded with value. So every call names its order with an
idempotency key, and:

- the order (program, count, activation, face value) is claimed under the client's key for as
  long as request records live: the same key with another order is refused;
- card i of the order is drawn with `DerivedDraws(secret, "<tag>:<i>:<attempt>")`
  (gateway/issuance/derived.py), so asking again draws the same number and PIN. A number that
  another
  card already has is drawn again (the next attempt); one that carries this order's batch
  (`api:<tag>`) is this order's card, issued by an earlier call;
- card i's activation carries the request key `API:<tag>:<i>`, so asking again replays its
  answer instead of loading the card a second time.

Nothing is stored for an order but its fingerprint: no number and no PIN. An interrupted order
is finished, not repeated, by asking again, as a stopped `cards import` is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from gateway.config.model import Program
from gateway.issuance.derived import DerivedDraws
from gateway.ledger.cards import issue_new_card, operator_activation
from gateway.ledger.checks import amount_refusal
from gateway.ledger.processor import Processor
from gateway.ledger.store import Store
from protocols.model import RC, Result

MAX_CARDS = 100  # per call: an order of more is a batch (`cards import`)


@dataclass(frozen=True, slots=True)
class Order:
    program: Program
    count: int
    activate: int | None  # minor units (points for loyalty); None: the cards stay issued
    face: int  # face value of pre-valued cards, minor units

    def fingerprint(self) -> str:
        activate = "" if self.activate is None else str(self.activate)
        return f"{self.program.id}|{self.count}|{activate}|{self.face}"


@dataclass(slots=True)
class IssuedCard:
    card: str
    pin: str
    status: str = "issued"
    balance: int = 0
    points: int = 0
    new: bool = True  # False: issued by an earlier call for the same order

    def as_dict(self) -> dict[str, object]:
        return {"card": self.card, "pin": self.pin, "status": self.status,
                "balance": self.balance, "points": self.points}


def order_tag(client: str, idempotency_key: str) -> str:
    """One order per client and key: two clients may use the same key for different orders."""
    return hashlib.sha256(f"{client}\0{idempotency_key}".encode()).hexdigest()[:32]


def order_key(tag: str) -> str:
    return f"{{o:{tag}}}:order"


def activation_refusal(order: Order, operator: str) -> Result | None:
    """What the program refuses of the order's activation whatever the card: asked before
    anything is issued (the admin API and the portal's card creation)."""
    if order.activate is None:
        return None
    refused = amount_refusal(operator_activation(None, order.activate, order.face, operator,
                                                 "check", "http"), order.program)
    if refused is None and 0 < order.program.max_balance < order.activate:
        refused = Result(RC.LIMIT_EXCEEDED)  # as the activation script would answer
    return refused


async def claim_order(store: Store, tag: str, order: Order, ttl: int) -> bool:
    """True when the key is new or holds this same order; False when it holds another."""
    return await claim_fingerprint(store, tag, order.fingerprint(), ttl)


async def claim_fingerprint(store: Store, tag: str, fingerprint: str, ttl: int) -> bool:
    """claim_order for any order that has a fingerprint (an e-card's names its recipient too)."""
    for _ in range(2):  # the second pass covers a claim that expired between SET and GET
        if await store.command("SET", order_key(tag), fingerprint, "NX", "EX", str(ttl)):
            return True
        held = await store.command("GET", order_key(tag))
        if held is not None:
            return bool(held.decode() == fingerprint)
    return False


async def issue_order(store: Store, processor: Processor, order: Order, secret: bytes, tag: str,
                      operator: str) -> tuple[list[IssuedCard], Result | None]:
    """The order's cards, issued now or found again, activated when asked. A refused activation
    ends the order there: the cards so far and the refusal come back (asking again replays the
    same refusal; a new key with a fixed order is the way on)."""
    cards: list[IssuedCard] = []
    for index in range(order.count):
        def draws(attempt: int, index: int = index) -> DerivedDraws:
            return DerivedDraws(secret, f"{tag}:{index}:{attempt}")

        card, pin, new = await issue_new_card(store, order.program, order.face, draws=draws,
                                              batch=f"api:{tag}", avoid={c.card for c in cards})
        issued = IssuedCard(card, pin, new=new)
        cards.append(issued)
        if order.activate is None:
            continue
        result = await processor.operator_apply(operator_activation(
            card, order.activate, order.face, operator, f"API:{tag}:{index}", "http"))
        if not result.approved:
            return cards, result
        issued.status, issued.balance, issued.points = ("active", result.balance or 0,
                                                        result.points or 0)
    return cards, None

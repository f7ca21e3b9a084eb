"""Admin HTTP: one card, for a back office or a customer-service tool (docs/security.md).

  POST /v1/cards/show    {"card": "<number>"}                               scope cards:read
  POST /v1/cards/history {"card": "<number>", "last": 20}                   scope cards:read
  POST /v1/cards/status  {"card": "<number>", "to": "suspended" | "reinstate" | "lost" |
                          "closed", "confirm": true}                        scope cards:write
  POST /v1/cards/issue   {"program": "gift", "count": 1, "activate": 2500}  scope cards:issue
                         with an Idempotency-Key header (gateway/issuance/realtime.py)
  POST /v1/cards/activate  a batch of issued cards (gateway/admin/activate.py)  scope cards:issue

The number travels in the body, never in the URL, because paths reach access logs and proxies;
answers show it masked. `lost` and `closed` are final, so they need `"confirm": true`, as the
command line needs --yes. Each status change is journaled with the token's id as its terminal
(`token:<id>`) and logged, masked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from twisted.web import resource

from gateway.admin.activate import ActivateCards
from gateway.admin.jsonio import (
    NOT_AN_OBJECT,
    Answer,
    StoreResource,
    answer_later,
    json_bytes,
    json_object,
)
from gateway.admin.jsonio import whole as _whole
from gateway.config.model import Config
from gateway.issuance.realtime import (
    MAX_CARDS,
    Order,
    activation_refusal,
    claim_order,
    issue_order,
    order_tag,
)
from gateway.ledger.cards import (
    STATUS_CHANGES,
    card_id,
    journal_key,
    set_card_status,
    show_card,
)
from gateway.ledger.journal import latest
from gateway.ledger.processor import Processor
from gateway.ledger.store import Store
from gateway.metrics import families as metrics
from gateway.security.tokens import Refusal, TokenAuth
from protocols.model import mask_card

log = logging.getLogger(__name__)
FINAL = frozenset({"lost", "closed"})
ORDER_FIELDS = frozenset({"program", "count", "activate", "face"})  # POST /v1/cards/issue


class Cards(StoreResource):
    def __init__(self, config: Config, store_source: Callable[[], Store | None], auth: TokenAuth,
                 processor_source: Callable[[], Processor | None]):
        super().__init__(config, store_source, auth)
        self.processor_source = processor_source

    def getChild(self, path: bytes, request):
        actions = {b"show": ("cards:read", self._show), b"history": ("cards:read", self._history),
                   b"status": ("cards:write", self._status)}
        if path not in actions and path not in (b"issue", b"activate"):
            return Refusal(404, "no such action (show, history, status, issue, activate)")
        scope = "cards:issue" if path in (b"issue", b"activate") else actions[path][0]
        refused = self.auth.check(request, scope)
        if refused is not None:
            return Refusal(*refused)
        token = self.auth.token_of(request)
        who = token.id if token else "loopback"
        if path == b"issue":
            return IssueCards(self, who)
        if path == b"activate":  # gateway/admin/activate.py
            return ActivateCards(self, who)
        return CardAction(self, actions[path][1], who)

    async def _show(self, store: Store, card: str, body: dict, who: str) -> Answer:
        view = await show_card(store, card, self.config.program_of_card(card))
        if view is None:
            return 404, {"error": "unknown card", "card": mask_card(card)}
        return 200, view.as_dict()

    async def _history(self, store: Store, card: str, body: dict, who: str) -> Answer:
        last = body.get("last", 20)
        if not _whole(last) or not 1 <= last <= 1000:
            return 400, {"error": "last: a whole number from 1 to 1000"}
        if await show_card(store, card) is None:
            return 404, {"error": "unknown card", "card": mask_card(card)}
        found = await latest(store, journal_key(card_id(card)), last)
        return 200, {"card": mask_card(card), "entries": [e.as_dict() for e in found]}

    async def _status(self, store: Store, card: str, body: dict, who: str) -> Answer:
        to = body.get("to")
        if to not in STATUS_CHANGES:
            return 400, {"error": f"to must be one of {', '.join(STATUS_CHANGES)}"}
        if to in FINAL and body.get("confirm") is not True:
            return 400, {"error": f"{to} is final: add \"confirm\": true"}
        res = await set_card_status(store, card, to, operator=f"token:{who}")
        if res["rc"] == "14":
            return 404, {"error": "unknown card", "card": mask_card(card)}
        if res["rc"] != "00":
            return 409, {"error": f"not changed: {res.get('msg')}", "card": mask_card(card)}
        log.warning("token %s: card %s %s", who, mask_card(card), res.get("msg"))
        return 200, {"card": mask_card(card), "change": res.get("msg")}


class CardAction(resource.Resource):
    isLeaf = True

    def __init__(self, cards: Cards,
                 action: Callable[[Store, str, dict, str], Coroutine[Any, Any, Answer]],
                 who: str):
        super().__init__()
        self.cards = cards
        self.action = action
        self.who = who

    def render_POST(self, request):
        body = json_object(request)
        if body is None:
            return json_bytes(request, 400, {"error": NOT_AN_OBJECT})
        card = body.get("card")
        if not isinstance(card, str) or self.cards.config.program_of_card(card) is None:
            return json_bytes(request, 400,
                              {"error": "card: a card number of a configured program"})
        store = self.cards.store_source()
        if store is None:
            return json_bytes(request, 503, {"error": "store not started"})
        return answer_later(request, self.action(store, card, body, self.who))


class IssueCards(resource.Resource):
    """POST /v1/cards/issue: new cards in real time, safe to ask again
    (gateway/issuance/realtime.py).

    Body: `program`, `count` (1 to 100), and optionally `activate` (a load in minor units, points
    for loyalty) and `face` (face value of pre-valued cards); all whole numbers, never floats.
    The `Idempotency-Key` header names the order: asking again with it answers the same cards.
    """

    isLeaf = True

    def __init__(self, cards: Cards, who: str):
        super().__init__()
        self.cards = cards
        self.who = who

    def render_POST(self, request):
        key = (request.getHeader(b"idempotency-key") or b"").decode("ascii", "replace").strip()
        if not (1 <= len(key) <= 100 and key.isascii() and key.isprintable()):
            return json_bytes(request, 400, {"error": "an Idempotency-Key header of 1 to 100 "
                                                      "printable ASCII characters is required"})
        secret = self.cards.config.security.issue_secret
        if secret is None:
            return json_bytes(request, 503, {"error": "issuing over HTTP is off: set "
                                                      "security.issue_secret_file or _env"})
        body = json_object(request)
        if body is None:
            return json_bytes(request, 400, {"error": NOT_AN_OBJECT})
        order = self._order(body)
        if isinstance(order, str):
            return json_bytes(request, 400, {"error": order})
        store, processor = self.cards.store_source(), self.cards.processor_source()
        if store is None or processor is None:
            return json_bytes(request, 503, {"error": "store not started"})
        return answer_later(request, self._issue(store, processor, order, secret.value, key))

    def _order(self, body: object) -> Order | str:
        """The order the body asks for, or what is wrong with it."""
        if not isinstance(body, dict):
            return "the body must be a JSON object"
        unknown = sorted(set(body) - ORDER_FIELDS)
        if unknown:  # a misspelt "activate" must not issue cards without their load
            return f"unknown field {unknown[0]!r} (known: {', '.join(sorted(ORDER_FIELDS))})"
        name = body.get("program")
        program = self.cards.config.programs.get(name) if isinstance(name, str) else None
        if program is None:
            return f"program: one of {', '.join(self.cards.config.programs)}"
        if not program.numbers_can_be_drawn:
            return f"program {program.id}: its numbers cannot be drawn; use cards import"
        count, activate, face = body.get("count"), body.get("activate"), body.get("face", 0)
        if not _whole(count) or not 1 <= count <= MAX_CARDS:
            return f"count: a whole number from 1 to {MAX_CARDS}"
        if activate is not None and not _whole(activate):
            return "activate: a whole number of minor units (points for loyalty), or absent"
        if not _whole(face) or (face and program.is_loyalty):
            return "face: a whole number of minor units (gift programs only)"
        return Order(program, count, activate, face)

    async def _issue(self, store: Store, processor: Processor, order: Order, secret: bytes,
                     key: str) -> Answer:
        operator = f"token:{self.who}"
        refused = activation_refusal(order, operator)  # before anything is issued
        if refused is not None:
            return 422, {"error": f"activate: refused with {refused.code}",
                         "code": refused.code}
        tag = order_tag(self.who, key)
        if not await claim_order(store, tag, order, processor.record_ttl):
            return 409, {"error": "this Idempotency-Key was used for another order"}
        cards, refusal = await issue_order(store, processor, order, secret, tag, operator)
        metrics.HTTP_CARDS_ISSUED.labels(order.program.id).inc(sum(c.new for c in cards))
        log.info("token %s: %d %s card(s) for an order (%s)", self.who, len(cards),
                 order.program.id, ", ".join(mask_card(c.card) for c in cards))
        answer: dict[str, Any] = {"program": order.program.id,
                                  "cards": [c.as_dict() for c in cards]}
        if refusal is not None:
            return 422, {**answer, "error": f"activation refused with {refusal.code}",
                         "code": refusal.code}
        return 200, answer

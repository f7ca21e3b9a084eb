"""Admin HTTP: one card, for a back office or a customer-service tool (docs/security.md).

  POST /v1/cards/show    {"card": "<number>"}                               scope cards:read
  POST /v1/cards/history {"card": "<number>", "last": 20}                   scope cards:read
  POST /v1/cards/status  {"card": "<number>", "to": "suspended" | "reinstate" | "lost" |
                          "closed", "confirm": true}                        scope cards:write

The number travels in the body, never in the URL, because paths reach access logs and proxies;
answers show it masked. `lost` and `closed` are final, so they need `"confirm": true`, as the
command line needs --yes. Each status change is journaled with the token's id as its terminal
(`token:<id>`) and logged, masked.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from twisted.web import resource

from gateway.admin_json import Answer, StoreResource, answer_later, json_bytes
from gateway.auth import Refusal
from gateway.cards import STATUS_CHANGES, card_id, journal_key, set_card_status, show_card
from gateway.journal import latest
from gateway.store import Store
from protocols.model import mask_card

log = logging.getLogger(__name__)
FINAL = frozenset({"lost", "closed"})


class Cards(StoreResource):
    def getChild(self, path: bytes, request):
        actions = {b"show": ("cards:read", self._show), b"history": ("cards:read", self._history),
                   b"status": ("cards:write", self._status)}
        if path not in actions:
            return Refusal(404, "no such action (show, history, status)")
        scope, action = actions[path]
        refused = self.auth.check(request, scope)
        if refused is not None:
            return Refusal(*refused)
        token = self.auth.identify(request.getHeader(b"authorization"))
        return CardAction(self, action, token.id if token else "loopback")

    async def _show(self, store: Store, card: str, body: dict, who: str) -> Answer:
        view = await show_card(store, card)
        if view is None:
            return 404, {"error": "unknown card", "card": mask_card(card)}
        return 200, view.as_dict()

    async def _history(self, store: Store, card: str, body: dict, who: str) -> Answer:
        last = body.get("last", 20)
        if not isinstance(last, int) or isinstance(last, bool) or not 1 <= last <= 1000:
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
        try:
            body = json.loads(request.content.read() or b"{}")
        except ValueError:
            return json_bytes(request, 400, {"error": "the body must be a JSON object"})
        card = body.get("card") if isinstance(body, dict) else None
        if not isinstance(card, str) or self.cards.config.program_of_card(card) is None:
            return json_bytes(request, 400,
                              {"error": "card: a card number of a configured program"})
        store = self.cards.store_source()
        if store is None:
            return json_bytes(request, 503, {"error": "store not started"})
        return answer_later(request, self.action(store, card, body, self.who))

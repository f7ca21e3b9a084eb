"""Admin HTTP: a loyalty program's reward claims (gateway/ledger/rewards.py), as `tillgate
rewards claims|void-claim` and the portal's claims page give them.

  GET   /v1/claims?program=P&from=YYYY-MM-DD&to=YYYY-MM-DD
                                   {"claims": [...]} oldest first; `to` inclusive (UTC days),
                                   a claim undone in the same listing `voided`   rewards:read
  POST  /v1/claims/void            {"program", "key"}: undo the claim made with request key
                                   `key` (a listing's `key`): its points go back to the lots
                                   they came from and its item to the stock      rewards:write

The void answers 200 {"rc": "00", "points", "message"}; 409 with the refusal's code and message
when the ledger refuses (12: already undone, or the points spent since; 25: the claim's record
expired); 404 when the program has no claim of that key. It is journalled as the card's `void`
entry with `opid` = `token:<id>`, and listed as a `void` line whose `orig` is the claim's key.
The claims are in their own path, not under /v1/rewards/<program>/, where `claims` is a reward
id that may exist.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.web import resource

from gateway.admin.jsonio import NOT_AN_OBJECT, Answer, StoreResource, answer_later, json_object
from gateway.ledger import rewards
from gateway.ledger.store import Store
from gateway.security.tokens import Refusal

log = logging.getLogger(__name__)
READ, WRITE = "rewards:read", "rewards:write"


class Claims(StoreResource):
    def getChild(self, path: bytes, request):
        if path == b"void":
            return VoidClaim(self)
        return Refusal(404, "no such action")

    def render_GET(self, request):
        store = self.store_for(request, READ)
        if isinstance(store, Refusal):
            return store.render(request)

        def arg(name: str) -> str:
            return request.args.get(name.encode(), [b""])[0].decode("ascii", "replace")

        return answer_later(request, self._list(store, arg("program"), arg("from"), arg("to")))

    async def _list(self, store: Store, program_id: str, since: str, until: str) -> Answer:
        try:
            program = rewards.loyalty_program(self.config, program_id)
            start, end = rewards.claims_period(since, until)
        except rewards.RewardError as e:
            return 400, {"error": str(e)}
        found = await rewards.list_claims(store, program.id, start, end - 0.001)
        return 200, {"claims": [c.as_dict() for c in found]}


class VoidClaim(resource.Resource):
    isLeaf = True

    def __init__(self, claims: Claims):
        super().__init__()
        self.claims = claims

    def render_POST(self, request):
        store = self.claims.store_for(request, WRITE)
        if isinstance(store, Refusal):
            return store.render(request)
        body = json_object(request)
        if body is None:
            return Refusal(400, NOT_AN_OBJECT).render(request)
        return answer_later(request, self._void(store, body, self.claims.operator_of(request)))

    async def _void(self, store: Store, body: dict[str, Any], by: str) -> Answer:
        key = body.get("key")
        try:
            program = rewards.loyalty_program(self.claims.config, str(body.get("program", "")))
        except rewards.RewardError as e:
            return 400, {"error": str(e)}
        if not isinstance(key, str) or not key:
            return 400, {"error": "key: the claim's request key (a listing's `key`)"}
        res = await rewards.void_claim(store, program, key, by)
        if res is None:
            return 404, {"error": f"no claim with key {key!r} in program {program.id!r}"}
        answer = {"rc": res["rc"], "points": res.get("pts"), "message": res.get("msg")}
        if res["rc"] != "00":
            return 409, answer
        log.info("claim %s of %s voided by %s", key, program.id, by)
        return 200, answer

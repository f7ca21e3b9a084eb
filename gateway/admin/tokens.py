"""Admin HTTP: bearer tokens made at run time (gateway/security/tokenstore.py), all with the
scope tokens:admin.

  GET  /v1/tokens               {"tokens": [...]}: the config's and the stored ones, never a secret
  POST /v1/tokens               {"name", "scopes": [...], "expires"?: ISO 8601 with zone}:
                                201 {"token": {...}, "secret": "..."}: the secret is shown once
  POST /v1/tokens/<id>/enable   200 {"token": {...}}; 404 unknown id, 409 a config token
  POST /v1/tokens/<id>/disable  refused from the next request on, on every gateway of the store
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from twisted.web import resource

from gateway.admin.jsonio import (
    NOT_AN_OBJECT,
    Answer,
    StoreResource,
    answer_later,
    json_bytes,
    json_object,
)
from gateway.config.security import SCOPES
from gateway.security import tokenstore
from gateway.security.tokens import Refusal

log = logging.getLogger(__name__)
SCOPE = "tokens:admin"


class Tokens(StoreResource):
    def getChildWithDefault(self, path: bytes, request):
        refused = self.auth.check(request, SCOPE)
        if refused is not None:
            return Refusal(*refused)
        if path == b"":  # /v1/tokens/
            return self
        return TokenSwitches(self, path.decode("ascii", "replace"))

    def render(self, request):
        refused = self.auth.check(request, SCOPE)
        if refused is not None:
            return Refusal(*refused).render(request)
        return super().render(request)

    def render_GET(self, request):
        return self.later(request, self._list)

    def render_POST(self, request):
        body = json_object(request)
        if body is None:
            return json_bytes(request, 400, {"error": NOT_AN_OBJECT})
        unknown = sorted(set(body) - {"name", "scopes", "expires"})
        if unknown:
            return json_bytes(request, 400, {"error": f"{unknown[0]}: unknown field"})
        name, scopes, expires = body.get("name"), body.get("scopes"), body.get("expires")
        if not isinstance(name, str):
            return json_bytes(request, 400, {"error": "name: a string is required"})
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            return json_bytes(request, 400, {"error": "scopes: a list of scope names"})
        if expires is not None and not isinstance(expires, str):
            return json_bytes(request, 400, {"error": "expires: an ISO 8601 date-time"})
        who = self.auth.token_of(request)
        return self.later(request, lambda client: self._create(
            client, name, scopes, expires, who.id if who else "loopback"))

    def later(self, request, work: Callable[[Any], Coroutine[Any, Any, Answer]]):
        """Answer with `work(redis client)` once done; 503 while the store is not started."""
        store = self.store_source()
        if store is None:
            return json_bytes(request, 503, {"error": "store not started"})
        return answer_later(request, work(store.client))

    async def _list(self, client) -> Answer:
        return 200, {"tokens": await tokenstore.listing(client, self.config.security.tokens)}

    async def _create(self, client, name: str, scopes: list[str], expires: str | None,
                      who: str) -> Answer:
        try:
            token, secret = await tokenstore.create(
                client, name, scopes, SCOPES,
                taken_ids=[t.id for t in self.config.security.tokens],
                expires=tokenstore.parse_expiry(expires) if expires is not None else None)
        except tokenstore.TokenProblem as e:
            return 400, {"error": str(e)}
        log.warning("token %s (%s) created by %s with scopes %s", token.id, token.name, who,
                    " ".join(sorted(token.scopes)))
        return 201, {"token": token.as_dict(), "secret": secret}

    async def switch(self, client, token_id: str, enable: bool) -> Answer:
        try:
            token = await tokenstore.switch(client, token_id, enable,
                                            self.config.security.tokens)
        except tokenstore.UnknownToken as e:
            return 404, {"error": str(e)}
        except tokenstore.TokenProblem as e:
            return 409, {"error": str(e)}
        log.warning("token %s %s", token.id, "enabled" if enable else "disabled")
        return 200, {"token": token.as_dict()}


class TokenSwitches(resource.Resource):
    def __init__(self, tokens: Tokens, token_id: str):
        super().__init__()
        self.tokens = tokens
        self.token_id = token_id

    def getChild(self, path: bytes, request):
        if path in (b"enable", b"disable"):
            return Switch(self.tokens, self.token_id, path == b"enable")
        return Refusal(404, "no such action (enable, disable)")

    def render(self, request):  # /v1/tokens/<id> itself: the list has every token
        return Refusal(404, "no such action (enable, disable)").render(request)


class Switch(resource.Resource):
    isLeaf = True

    def __init__(self, tokens: Tokens, token_id: str, enable: bool):
        super().__init__()
        self.tokens = tokens
        self.token_id = token_id
        self.enable = enable

    def render_POST(self, request):
        return self.tokens.later(
            request, lambda client: self.tokens.switch(client, self.token_id, self.enable))

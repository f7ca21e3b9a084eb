"""Admin HTTP: the running config, and reloading it without a restart (gateway/reloader.py).

  GET  /v1/config          {"path", "sha256", "generation", "loaded_at", "last_reload"}
                           scope config:read
  POST /v1/config/reload   the reload's outcome (gateway/reloader.py Outcome.as_dict):
                           200 applied, 422 refused (the running config stays; `errors` says
                           why, each error named by its path)               scope config:reload

A reload asked for while another runs waits for it and is answered by the next run.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.web import resource, server

from gateway.admin.jsonio import finish_json, json_bytes
from gateway.security.tokens import Refusal, TokenAuth


class Outcome(Protocol):
    applied: bool

    def as_dict(self) -> dict[str, Any]: ...


class Reloader(Protocol):
    """What this resource needs of gateway/reloader.py's Reloader (the wiring room, which the
    admin room does not import)."""

    @property
    def last(self) -> Outcome | None: ...

    def state(self) -> dict[str, Any]: ...

    def reload(self, trigger: str) -> Deferred[Any]: ...


class ConfigAPI(resource.Resource):
    def __init__(self, reloader: Reloader, auth: TokenAuth):
        super().__init__()
        self.reloader = reloader
        self.auth = auth

    def getChildWithDefault(self, path: bytes, request):
        if path == b"":  # /v1/config/
            return self
        if path != b"reload":
            return Refusal(404, "no such action (reload)")
        refused = self.auth.check(request, "config:reload")
        if refused is not None:
            return Refusal(*refused)
        token = self.auth.token_of(request)
        return Reload(self.reloader, f"api, token {token.id}" if token else "api")

    def render_GET(self, request):
        refused = self.auth.check(request, "config:read")
        if refused is not None:
            return Refusal(*refused).render(request)
        last = self.reloader.last
        return json_bytes(request, 200, {**self.reloader.state(),
                                         "last_reload": last.as_dict() if last else None})


class Reload(resource.Resource):
    isLeaf = True

    def __init__(self, reloader: Reloader, trigger: str):
        super().__init__()
        self.reloader = reloader
        self.trigger = trigger

    def render_POST(self, request):
        def answer(outcome: Outcome) -> None:
            finish_json(request, 200 if outcome.applied else 422, outcome.as_dict())

        self.reloader.reload(self.trigger).addCallback(answer)
        return server.NOT_DONE_YET

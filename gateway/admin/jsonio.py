"""What the admin listener's JSON resources share: an answer written now or once a store call is
done (and never to a client that has gone), and the wiring of a resource over the store."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeGuard

from twisted.web import resource, server

from gateway.config.model import Config
from gateway.ledger.store import Store
from gateway.reactor import deferred_from_coro
from gateway.security.tokens import Refusal, TokenAuth

Answer = tuple[int, dict[str, Any]]


def whole(value: object) -> TypeGuard[int]:
    """An int from JSON, not a bool (True is an int in Python) and never a float."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


NOT_AN_OBJECT = "the body must be a JSON object"


def json_object(request) -> dict[str, Any] | None:
    """The request's body as a JSON object (an empty body is `{}`), or None: the caller answers
    400 with NOT_AN_OBJECT."""
    try:
        body = json.loads(request.content.read() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def json_bytes(request, status: int, body: dict[str, Any]) -> bytes:
    """Set the status and headers of a JSON answer; its body, for render_* to return."""
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(body).encode() + b"\n"


def finish_json(request, status: int, body: dict[str, Any]) -> None:
    if request.finished or request._disconnected:
        return
    request.write(json_bytes(request, status, body))
    request.finish()


def answer_later(request, work: Coroutine[Any, Any, Answer]):
    """Run a store coroutine for this request and answer with its (status, body); a store
    failure is a 503 that says why. For render_*: `return answer_later(request, ...)`."""
    d = deferred_from_coro(work)
    d.addCallbacks(lambda answer: finish_json(request, *answer),
                   lambda failure: finish_json(request, 503, {"error": failure.getErrorMessage()}))
    return server.NOT_DONE_YET


class StoreResource(resource.Resource):
    """A resource whose answers come from the store (which may not be up yet)."""

    def __init__(self, config: Config, store_source: Callable[[], Store | None],
                 auth: TokenAuth):
        super().__init__()
        self.config = config
        self.store_source = store_source
        self.auth = auth

    def store_for(self, request, scope: str) -> Store | Refusal:
        """The store for a request whose token holds `scope`, or the Refusal to render: 401 or
        403, or 503 while the store is not up yet."""
        refused = self.auth.check(request, scope)
        if refused is not None:
            return Refusal(*refused)
        return self.started_store()

    def started_store(self) -> Store | Refusal:
        """The store, or a 503 Refusal while it is not up yet: for a child resource whose
        token its parent checked already (store_for checks and then asks this)."""
        store = self.store_source()
        return Refusal(503, "store not started") if store is None else store

    def operator_of(self, request) -> str:
        """Who asks, as a change or a journal entry names them: `token:<id>`."""
        token = self.auth.token_of(request)
        return "token:" + token.id if token is not None else "token:?"

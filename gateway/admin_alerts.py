"""Admin HTTP: `GET /v1/alerts` (scope alerts:read) — the alert stream's length and, per sink,
how many alerts were read but not yet delivered (a webhook that is down shows here first)."""

from __future__ import annotations

import json
from collections.abc import Callable

from redis.exceptions import RedisError
from twisted.web import resource, server

from gateway.alerts.queue import STREAM
from gateway.auth import Guarded, TokenAuth
from gateway.config import Config
from gateway.reactor import deferred_from_coro
from gateway.store import Store


class AlertsStatus(resource.Resource):
    isLeaf = True

    def __init__(self, config: Config, store_source: Callable[[], Store | None]):
        super().__init__()
        self.config = config
        self.store_source = store_source

    def render_GET(self, request):
        store = self.store_source()
        if store is None:
            request.setResponseCode(503)
            return b'{"error": "store not started"}\n'
        d = deferred_from_coro(self._status(store))

        def reply(body: dict) -> None:
            if not request.finished and not request._disconnected:
                request.setHeader(b"content-type", b"application/json")
                request.write(json.dumps(body).encode() + b"\n")
                request.finish()

        d.addCallbacks(reply, lambda f: reply({"error": f.getErrorMessage()}))
        return server.NOT_DONE_YET

    async def _status(self, store: Store) -> dict:
        groups = {}
        try:
            for group in await store.client.xinfo_groups(STREAM):
                name = group["name"].decode() if isinstance(group["name"], bytes) else group["name"]
                groups[name] = {"pending": int(group["pending"]),
                                "last_delivered": _text(group["last-delivered-id"])}
            length = int(await store.client.xlen(STREAM))
        except RedisError:  # no stream yet: nothing was ever raised
            length = 0
        return {"stream_length": length, "sinks": groups,
                "configured": list(self.config.alerts.sinks)}


def alerts_resource(config: Config, store_source: Callable[[], Store | None],
                    auth: TokenAuth) -> resource.Resource:
    return Guarded(AlertsStatus(config, store_source), "alerts:read", auth)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

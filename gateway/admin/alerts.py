"""Admin HTTP: `GET /v1/alerts` (scope alerts:read, guarded by gateway/app.py) — the alert
stream's length and, per sink, how many alerts were read but not yet delivered (a webhook that
is down shows here first)."""

from __future__ import annotations

from collections.abc import Callable

from redis.exceptions import RedisError
from twisted.web import resource

from gateway.admin.jsonio import Answer, answer_later, json_bytes
from gateway.config.model import Config
from gateway.ledger.store import Store
from gateway.security.alerts.queue import STREAM


class AlertsStatus(resource.Resource):
    isLeaf = True

    def __init__(self, config: Config, store_source: Callable[[], Store | None]):
        super().__init__()
        self.config = config
        self.store_source = store_source

    def render_GET(self, request):
        store = self.store_source()
        if store is None:
            return json_bytes(request, 503, {"error": "store not started"})
        return answer_later(request, self._status(store))

    async def _status(self, store: Store) -> Answer:
        groups = {}
        try:
            for group in await store.client.xinfo_groups(STREAM):
                name = group["name"].decode() if isinstance(group["name"], bytes) else group["name"]
                groups[name] = {"pending": int(group["pending"]),
                                "last_delivered": _text(group["last-delivered-id"])}
            length = int(await store.client.xlen(STREAM))
        except RedisError:  # no stream yet: nothing was ever raised
            length = 0
        return 200, {"stream_length": length, "sinks": groups,
                     "configured": list(self.config.alerts.sinks)}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

"""The durable alert queue: one Redis stream `{alerts}:q`, one consumer group per sink.

Raising runs alert.lua: SET NX EX of the de-duplication key `{alerts}:d:<rule>:<value>:<window>`
and the XADD happen in one script, so an alert is queued exactly once per rule, scope value
and window. A sink reads with XREADGROUP and acks with XACK only after the alert was delivered:
an alert read but not acked stays pending in the group and is read again (id 0) after a
failure or a restart. Both keys share the hash tag `{alerts}` (one slot: Redis Cluster ready).
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from gateway.ledger.store import Store
from gateway.metrics import families as metrics
from gateway.security.alerts.record import Alert
from gateway.security.rules import Trip
from protocols.model import Request

STREAM = "{alerts}:q"
EVENT_DEDUP_SECONDS = 2 * 86400  # longer than any retransmission of one request


def dedup_key(rule: str, value: str, window_start: int) -> str:
    return f"{{alerts}}:d:{rule}:{value}:{window_start}"


class AlertQueue:
    def __init__(self, store: Store, stream_max: int = 100_000):
        self.store = store
        self.stream_max = stream_max
        self.listeners: list[Any] = []  # callables poked after a local raise (wake the sinks)

    async def raise_alert(self, alert: Alert, key_value: str, ttl: int) -> str | None:
        """Queue the alert unless this (rule, value, window) already has one; its id or None."""
        stream_id = await self.store.run(
            "alert", [dedup_key(alert.rule, key_value, alert.window_start), STREAM],
            [max(int(ttl), 1), self.stream_max, alert.to_json()])
        if not stream_id:
            metrics.ALERTS_SUPPRESSED.labels(alert.rule).inc()
            return None
        metrics.ALERTS_RAISED.labels(alert.rule).inc()
        for poke in self.listeners:
            poke()
        return stream_id.decode() if isinstance(stream_id, bytes) else str(stream_id)

    async def raise_trip(self, trip: Trip, req: Request, now: float) -> str | None:
        alert = Alert.from_trip(trip, req, now)
        return await self.raise_alert(alert, trip.key_value, trip.window_end - int(now) + 1)

    async def raise_event(self, name: str, req: Request, detail: str, amount: int,
                          now: float) -> str | None:
        """A one-off event, once per request key (a retransmission does not raise it again)."""
        alert = Alert.for_event(name, req, detail, amount, now)
        return await self.raise_alert(alert, req.key, EVENT_DEDUP_SECONDS)

    # -- the consuming side (one group per sink) ---------------------------------------------

    async def ensure_group(self, group: str) -> None:
        """Create the sink's group at the stream's end ('$'): a sink added later does not get
        the history. The group then lives in Redis, so a restart resumes where it stopped."""
        try:
            await self.store.client.xgroup_create(STREAM, group, id="$", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def read(self, group: str, consumer: str, count: int = 16) -> list[tuple[str, Alert]]:
        """This consumer's pending alerts first (read before, never acked), else new ones."""
        for start in ("0", ">"):
            reply: Any = await self.store.client.xreadgroup(group, consumer, {STREAM: start},
                                                            count=count)
            entries = reply[0][1] if reply else []  # [[stream, [(id, fields), ...]]]
            out = [(_text(i), Alert.from_json(f[b"a"])) for i, f in entries if f]
            if out:
                return out
        return []

    async def ack(self, group: str, stream_id: str) -> None:
        await self.store.client.xack(STREAM, group, stream_id)

    async def pending(self, group: str) -> int:
        info = await self.store.client.xpending(STREAM, group)
        return int(info["pending"])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

"""Web sessions (the portal's, the member page's), kept server side in Redis; the browser holds
only a random id.

    portal:s:<sha256 of the id>   string  a portal session as JSON, expiring with the session
    member:s:<sha256 of the id>   string  a member page session (gateway/web/members)

The id is 32 random bytes (secrets.token_urlsafe); Redis holds only its SHA-256, so a dump of
Redis (or a replica, or a backup) gives no one a live session. A session moves through stages:
`anon` (a login or set-password form was shown: it holds only the form's CSRF token),
`password` (the password was right, the second factor is awaited), `in` (logged in). The id is
replaced at each step up (gateway/web/portal/auth.py), so an id planted in a victim's browser before
the login is worth nothing after it (no session fixation).

Expiry: Redis drops a session at its hard end (the stage's lifetime; the absolute time-out once
logged in); the idle and absolute time-outs are checked on each request against the portal's
clock (injectable, so tests move time instead of waiting for it).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

ANON, PASSWORD, IN = "anon", "password", "in"
ID_BYTES = 32


PORTAL_PREFIX = "portal:s:"


def _key(sid: str, prefix: str = PORTAL_PREFIX) -> str:
    return prefix + hashlib.sha256(sid.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(ID_BYTES)


@dataclass
class Session:
    sid: str
    stage: str
    created: float  # opened; for `in`, the login (the absolute time-out counts from it)
    seen: float  # last request
    csrf: str
    data: dict[str, Any] = field(default_factory=dict)  # operator id, pending second factor...

    @property
    def operator_id(self) -> int | None:
        value = self.data.get("op")
        return int(value) if value is not None else None

    def to_json(self) -> str:
        return json.dumps({"stage": self.stage, "created": self.created, "seen": self.seen,
                           "csrf": self.csrf, "data": self.data})


class Sessions:
    """Sessions in Redis (`client`: a redis.asyncio client), under keys `<prefix><hash of id>`."""

    def __init__(self, client: Any, prefix: str = PORTAL_PREFIX):
        self.client = client
        self.prefix = prefix

    async def open(self, stage: str, now: float, lifetime: int,
                   data: dict[str, Any] | None = None, sid: str | None = None) -> Session:
        """A new session under a new id (and a new CSRF token), alive `lifetime` seconds.
        `sid`: an id of new_token() drawn by the caller (whose data depends on it)."""
        session = Session(sid or new_token(), stage, now, now, new_token(), dict(data or {}))
        await self.client.set(_key(session.sid, self.prefix), session.to_json(),
                              ex=max(1, int(lifetime)))
        return session

    async def load(self, sid: str) -> Session | None:
        if not sid or len(sid) > 100:
            return None
        raw = await self.client.get(_key(sid, self.prefix))
        if raw is None:
            return None
        d = json.loads(raw)
        return Session(sid, d["stage"], d["created"], d["seen"], d["csrf"], d.get("data", {}))

    async def save(self, session: Session) -> None:
        """Write back (the last request's time, a pending code...); its expiry stays."""
        await self.client.set(_key(session.sid, self.prefix), session.to_json(), keepttl=True,
                              xx=True)

    async def drop(self, session: Session) -> None:
        await self.client.delete(_key(session.sid, self.prefix))

"""One-time set-password links (`tillgate users add` and `reset-password` print one).

    portal:p:<sha256 of the token>   operator id, expiring after [portal] link_hours

The token is 32 random bytes; Redis keeps only its hash. Taking it (GETDEL) is atomic, so a
link works once, however many times it is submitted at the same moment.
"""

from __future__ import annotations

import hashlib
from typing import Any

from gateway.config.model import Config
from gateway.config.urls import base_url
from gateway.web.portal.sessions import new_token

PATH = "/ui/set-password"


def _key(token: str) -> str:
    return "portal:p:" + hashlib.sha256(token.encode()).hexdigest()


async def new_link(client: Any, config: Config, operator_id: int) -> str:
    token = new_token()
    await client.set(_key(token), str(operator_id), ex=config.portal.link_hours * 3600)
    return f"{base_url(config)}{PATH}?t={token}"


async def peek(client: Any, token: str) -> int | None:
    """The operator a link is for, without using it up (to show the form)."""
    if not token or len(token) > 100:
        return None
    raw = await client.get(_key(token))
    return int(raw) if raw is not None else None


async def take(client: Any, token: str) -> int | None:
    """Use the link up: the operator it was for, or None (unknown, used or expired)."""
    if not token or len(token) > 100:
        return None
    raw = await client.getdel(_key(token))
    return int(raw) if raw is not None else None

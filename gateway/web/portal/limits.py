"""Login rate limits and lock-out, in Redis (docs/portal.md, "Guessing").

    portal:a:<address>      attempts from one address in the current window (fixed window)
    portal:f:{<email hash>} wrong passwords or codes for one e-mail address
    portal:l:{<email hash>} present while that address is locked out

Failures are counted by e-mail address whether or not an operator has it, so a lock-out
looks the same for an unknown address as for a real one (no account enumeration through it).
Each counter is created with its expiry in the same MULTI as the increment: a crash between
the two never leaves a counter that lives for ever. An address's two keys share a hash tag (the
e-mail hash in braces), so the MULTI that locks it (set the lock, drop the count) and the DEL
that lifts it touch one slot: on a Redis Cluster (`store.client` is redis-py's RedisCluster) a
transaction may not span two (docs/scaling.md "Redis Cluster").
"""

from __future__ import annotations

import hashlib
from typing import Any

from gateway.backoffice.people import normal_email
from gateway.config.portal import PortalConfig


def _account(email: str) -> str:
    """The hash tag of an address's keys: its hash, in braces."""
    digest = hashlib.sha256(b"tillgate-portal:" + normal_email(email).encode()).hexdigest()
    return "{" + digest[:32] + "}"


class LoginLimits:
    def __init__(self, client: Any, config: PortalConfig):
        self.client = client
        self.config = config

    async def _count(self, key: str, window: int) -> int:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=window, nx=True)
            pipe.incr(key)
            _, count = await pipe.execute()
        return int(count)

    async def address_allowed(self, address: str) -> bool:
        """Count one login attempt from `address`; False once over the window's allowance."""
        cfg = self.config
        count = await self._count(f"portal:a:{address}", cfg.address_window_minutes * 60)
        return count <= cfg.address_attempts

    async def locked(self, email: str) -> bool:
        return bool(await self.client.exists(f"portal:l:{_account(email)}"))

    async def failed(self, email: str) -> bool:
        """Count one wrong password or code; True when this one locks the account."""
        cfg = self.config
        account = _account(email)
        count = await self._count(f"portal:f:{account}", cfg.lockout_minutes * 60)
        if count < cfg.max_failures:
            return False
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(f"portal:l:{account}", 1, ex=cfg.lockout_minutes * 60)
            pipe.delete(f"portal:f:{account}")
            await pipe.execute()
        return True

    async def succeeded(self, email: str) -> None:
        await self.client.delete(f"portal:f:{_account(email)}")

    async def unlock(self, email: str) -> None:
        """`tillgate users enable` and a password reset lift a lock-out at once."""
        account = _account(email)
        await self.client.delete(f"portal:l:{account}", f"portal:f:{account}")

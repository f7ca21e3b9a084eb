"""The redis-py connection pool for a `redis.url`: plain, or through Sentinel.

A redis+sentinel:// URL (gateway/config/redisurl.py) gives redis-py's asyncio
SentinelConnectionPool: each connection it makes asks the Sentinels for the current primary as
it connects, which is what the store's pipe needs, since it opens its own connection with
`make_connection()` after a failure (gateway/ledger/store.py). A connection still open on a
demoted primary answers READONLY; the store then drops it and the next one finds the new
primary.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from gateway.config.redisurl import BadRedisURL, is_sentinel, parse_sentinel_url


def connection_pool(url: str, *, max_connections: int, timeout: float,
                    **connection: Any) -> aioredis.ConnectionPool:
    """A pool of at most `max_connections`, waiting up to `timeout` for one; ValueError for a
    URL it cannot use."""
    if not is_sentinel(url):
        return aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections,
                                                        timeout=timeout, **connection)
    try:
        target = parse_sentinel_url(url)
    except BadRedisURL as e:
        raise ValueError(str(e)) from None
    sentinel_options = {k: v for k, v in connection.items()
                        if k in ("socket_timeout", "socket_connect_timeout")}
    sentinels = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_options)
    # not a BlockingConnectionPool: redis-py has no blocking Sentinel pool; the store's own
    # traffic goes over its pipe, the pool serves the occasional admin command
    return SentinelConnectionPool(target.primary, sentinels, max_connections=max_connections,
                                  db=target.db, **connection)


async def close_pool(pool: aioredis.ConnectionPool) -> None:
    """Close the pool's connections and, for Sentinel, the connections to the Sentinels."""
    await pool.disconnect()
    manager = getattr(pool, "sentinel_manager", None)
    for client in manager.sentinels if manager is not None else ():
        await client.aclose()

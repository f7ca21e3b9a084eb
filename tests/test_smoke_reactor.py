import pytest_twisted
import redis.asyncio

from gateway.reactor import deferred_from_coro


@pytest_twisted.ensureDeferred
async def test_redis_asyncio_through_the_reactor(redis_url):
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await deferred_from_coro(client.ping())
    finally:
        await deferred_from_coro(client.aclose())

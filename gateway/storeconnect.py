"""Open the store a config names: the Redis at `redis.url`, or the embedded one under data_dir.

`serve` and the admin commands call this one function, so they always reach the same data:
with no URL, the embedded redis-server's socket under `<data_dir>/redis`; if no gateway is
running there, the server is started for as long as the caller needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from gateway.config import Config
from gateway.embedded_redis import EmbeddedRedis


class StoreUnavailable(RuntimeError):
    """The configured Redis cannot be reached; the message is one line for the operator."""


def embedded_for(config: Config) -> EmbeddedRedis:
    return EmbeddedRedis(config.data_dir / "redis", binary=config.redis.server_binary)


async def open_store(config: Config, *, start_embedded: bool = True):
    """Return (store, embedded-or-None). The caller closes the store, then stops the embedded."""
    from gateway.store import Store

    embedded = None
    url = config.redis.url
    if url is None:
        local = embedded_for(config)
        url = local.url
        # A running gateway owns a server that already answers: share its data, never stop it.
        if start_embedded and not local._ping():
            local.start()
            embedded = local
    try:
        store = await Store.connect(url, pool_size=config.redis.pool_size,
                                    timeout=config.redis.timeout)
    except Exception as e:
        if embedded is not None:
            embedded.stop()
        raise StoreUnavailable(f"cannot reach Redis at {_safe_url(url)}: {_one_line(e)}") from e
    return store, embedded


def describe_store(config: Config) -> str:
    """Which Redis a config names, for an operator's error line (no password)."""
    if config.redis.url:
        return f"Redis at {_safe_url(config.redis.url)}"
    local = embedded_for(config)
    return f"the embedded Redis of {local.directory} ({local.url})"


def _safe_url(url: str) -> str:
    """The URL without a password, for an error line."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _one_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text.splitlines()[0] if text else type(error).__name__


@contextlib.asynccontextmanager
async def store_session(config: Config, *, start_embedded: bool = True):
    """`async with store_session(config) as store:` for admin commands: the configured store,
    closed afterwards, and the embedded server stopped if this session started it."""
    store, embedded = await open_store(config, start_embedded=start_embedded)
    try:
        yield store
    finally:
        await store.close()
        if embedded is not None:
            embedded.stop()


def run_command(coro: Coroutine[Any, Any, int]) -> int:
    """Run an admin command's coroutine; an unreachable store is one line and exit 2."""
    from gateway.cli import fail

    try:
        return asyncio.run(coro)
    except StoreUnavailable as e:
        return fail(str(e))

"""Open the store a config names: the Redis at `redis.url`, or the embedded one under data_dir.

`serve` and the admin commands call this one function, so they always reach the same data:
with no URL, the embedded redis-server under `<data_dir>/redis`. Whoever starts that server holds
the directory's lock (gateway/embedded_redis.py), so there is never a second server on one
append-only file: a command run while a gateway runs uses the gateway's server (found through
the lock's holder) even while the gateway is restarting it, and says so on stderr; with no
gateway it starts its own for as long as it needs it, and says which directory it opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable

from gateway.config.model import Config
from gateway.embedded_redis import DataDirBusy, EmbeddedRedis

# A gateway starting while an admin command holds the directory waits this long for it to end
# rather than share a server that goes away with the command.
COMMAND_WAIT = 30.0


class StoreUnavailable(RuntimeError):
    """The configured Redis cannot be reached; the message is one line for the operator."""


def embedded_for(config: Config, role: str = "command") -> EmbeddedRedis:
    return EmbeddedRedis(config.data_dir / "redis", binary=config.redis.server_binary, role=role)


def _to_stderr(line: str) -> None:
    print(f"tillgate: {line}", file=sys.stderr)


async def open_store(config: Config, *, start_embedded: bool = True, role: str = "command",
                     say: Callable[[str], object] = _to_stderr):
    """Return (store, embedded-or-None). The caller closes the store, then stops the embedded.

    `role` is recorded in the data directory's lock ("gateway" for serve); `say` gets the one
    line saying which embedded server is used (stderr for a command, the log for serve)."""
    from gateway.ledger.clusterstore import SCHEME, ClusterStore
    from gateway.ledger.store import Store

    embedded = None
    url = config.redis.url
    if url is None:
        local = embedded_for(config, role)
        url = local.url
        if start_embedded:
            embedded, url = await _embedded_or_holder(local, say)
    try:
        kind = ClusterStore if url.startswith(SCHEME) else Store
        store = await kind.connect(
            url, pool_size=config.redis.pool_size, timeout=config.redis.timeout,
            acknowledge_after_replicas=config.redis.acknowledge_after_replicas,
            acknowledge_timeout_ms=config.redis.acknowledge_timeout_ms)
    except Exception as e:
        if embedded is not None:
            embedded.stop()
        raise StoreUnavailable(f"cannot reach Redis at {_safe_url(url)}: {_one_line(e)}") from e
    return store, embedded


async def _embedded_or_holder(local: EmbeddedRedis, say: Callable[[str], object]
                              ) -> tuple[EmbeddedRedis | None, str]:
    """Start the directory's server, or use the one its lock holder runs (never stopped here)."""
    deadline = asyncio.get_running_loop().time() + COMMAND_WAIT
    while True:
        try:
            local.start()
        except DataDirBusy as busy:
            if (local.lock.role == "gateway" and busy.role == "command"
                    and asyncio.get_running_loop().time() < deadline):
                await asyncio.sleep(0.1)
                continue
            say(f"using the redis-server of the running {busy.role} (pid {busy.pid}) on "
                f"{local.directory}, at {busy.socket_path}")
            return None, busy.url
        say(f"started redis-server on data directory {local.directory} (no gateway runs there)"
            if local.lock.role == "command" else
            f"embedded redis-server on {local.socket_path} (data in {local.directory})")
        return local, local.url


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

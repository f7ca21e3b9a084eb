"""The Redis store: a redis.asyncio client, the Lua scripts, and a batcher (DESIGN.md, measured).

Round trips dominate: redis.asyncio runs one request per connection, so every call made in one
event-loop turn is queued and sent as ONE non-transactional pipeline (each script is atomic by
itself; nothing needs MULTI). Scripts are called by EVALSHA; a NOSCRIPT answer (a restarted or
failed-over server) loads the missing scripts and resends just those calls.

Scripts live in gateway/lua/*.lua, one per operation. Redis has no include, so the loader puts
`_prelude.lua` (the card helpers) in front of every script that does not start with
`--! no-prelude` (the merchant-slot scripts, whose keys are not a card's).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.retry import Retry

log = logging.getLogger(__name__)

LUA_DIR = Path(__file__).parent / "lua"
PRELUDE = "_prelude.lua"
NO_PRELUDE = "--! no-prelude"


class StoreError(RuntimeError):
    """The store could not be reached, or answered with an error."""


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    sha: str


def load_scripts(directory: Path = LUA_DIR) -> dict[str, Script]:
    """Read every script, prelude prepended where wanted, with its SHA1 computed locally."""
    prelude = (directory / PRELUDE).read_text()
    scripts: dict[str, Script] = {}
    for path in sorted(directory.glob("*.lua")):
        if path.name == PRELUDE:
            continue
        body = path.read_text()
        source = body if body.startswith(NO_PRELUDE) else prelude + "\n" + body
        sha = hashlib.sha1(source.encode()).hexdigest()
        scripts[path.stem] = Script(path.stem, source, sha)
    return scripts


@dataclass(slots=True)
class _Call:
    args: tuple[Any, ...]
    future: asyncio.Future[Any]
    script: Script | None = None
    attempts: int = field(default=0)


class Store:
    """Batched access to Redis. Build it with `await Store.connect(url)`."""

    def __init__(self, client: aioredis.Redis, url: str, timeout: float):
        self.client = client
        self.url = url
        self.timeout = timeout
        self.scripts = load_scripts()
        self._queue: list[_Call] = []
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.pipelines_sent = 0  # batches, for tests and metrics
        self.calls_sent = 0

    @classmethod
    async def connect(cls, url: str, pool_size: int = 64, timeout: float = 5.0) -> Store:
        """Connect and check the server answers; raise StoreError with a one-line reason if not."""
        try:
            pool = aioredis.BlockingConnectionPool.from_url(
                url, max_connections=pool_size, timeout=timeout, socket_timeout=timeout,
                socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 1),
            )
        except ValueError as e:
            raise StoreError(f"bad redis url {url!r}: {e}") from None
        store = cls(aioredis.Redis(connection_pool=pool), url, timeout)
        try:
            await asyncio.wait_for(store.client.ping(), timeout)
        except (TimeoutError, RedisError, OSError) as e:
            await store.close()
            raise StoreError(f"redis at {url} does not answer: {e or type(e).__name__}") from None
        return store

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.client.ping(), self.timeout))
        except (TimeoutError, RedisError, OSError):
            return False

    async def close(self) -> None:
        for task in list(self._tasks):
            await asyncio.gather(task, return_exceptions=True)
        await self.client.aclose()
        await self.client.connection_pool.disconnect()

    # -- the batcher -------------------------------------------------------------------------

    def command(self, *args: Any) -> asyncio.Future[Any]:
        """Queue one Redis command for this turn's pipeline; await the returned future."""
        return self._enqueue(_Call(args, asyncio.get_running_loop().create_future()))

    def run(self, name: str, keys: list[str], argv: list[Any]) -> asyncio.Future[Any]:
        """Queue one script call (EVALSHA) for this turn's pipeline; await the returned future."""
        script = self.scripts[name]
        args = ("EVALSHA", script.sha, len(keys), *keys, *argv)
        return self._enqueue(_Call(args, asyncio.get_running_loop().create_future(), script))

    def _enqueue(self, call: _Call) -> asyncio.Future[Any]:
        self._queue.append(call)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return call.future

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        self._flush_scheduled = False
        task = asyncio.ensure_future(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Call]) -> None:
        try:
            async with asyncio.timeout(self.timeout):  # cheaper than wait_for: no extra task
                results = await self._pipeline(batch)
                missing = [c for c, r in zip(batch, results) if isinstance(r, NoScriptError)]
                if missing:  # server restarted or failed over: load, resend only those calls
                    for script in {c.script.name: c.script for c in missing
                                   if c.script}.values():
                        await self.client.script_load(script.source)
                    again = await self._pipeline(missing)
                    fixed = dict(zip(map(id, missing), again))
                    results = [fixed.get(id(c), r) for c, r in zip(batch, results)]
        except (TimeoutError, RedisError, OSError) as e:
            error = StoreError(f"redis at {self.url}: {e or type(e).__name__}")
            for call in batch:
                if not call.future.done():
                    call.future.set_exception(error)
            return
        callbacks = self.client.response_callbacks
        for call, result in zip(batch, results):
            if call.future.done():
                continue
            if isinstance(result, Exception):
                call.future.set_exception(StoreError(f"redis error: {result}"))
                continue
            if call.script is None:  # plain commands get redis-py's reply shapes (HGETALL: dict)
                callback = callbacks.get(call.args[0].upper())
                if callback is not None:
                    result = callback(result)
            call.future.set_result(result)

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        """Send the batch as one write on one pooled connection and read its replies in order.

        This is a non-transactional pipeline without redis-py's Pipeline object: the commands
        are packed here (EVALSHA of bytes and ints only) and an error reply stays in its slot
        as an exception instead of failing the batch. Measured in bench/bench_store.py.
        """
        self.pipelines_sent += 1
        self.calls_sent += len(batch)
        pool = self.client.connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command(b"".join([pack_command(c.args) for c in batch]),
                                           check_health=False)
            results: list[Any] = []
            for _ in batch:
                try:
                    results.append(await conn.read_response())
                except ResponseError as e:
                    results.append(e)
            return results
        except BaseException:
            await conn.disconnect()  # replies may be left unread: never reuse it
            raise
        finally:
            await pool.release(conn)


def pack_command(args: tuple[Any, ...]) -> bytes:
    """RESP encoding of one command whose arguments are bytes, str or int."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:
            raise TypeError(f"cannot send a {type(arg).__name__} to Redis")
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)

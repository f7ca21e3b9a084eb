"""The Redis store: a redis.asyncio client, the Lua scripts, and a batcher (DESIGN.md, measured).

Round trips dominate: redis.asyncio runs one request per connection, so every call made in one
event-loop turn is queued and sent as ONE non-transactional pipeline (each script is atomic by
itself; nothing needs MULTI). Scripts are called by EVALSHA; a NOSCRIPT answer (a restarted or
failed-over server) loads the missing scripts and resends just those calls.

The pipelines go over one connection of their own (`_Pipe`), not through redis-py's pool: each
batch is one write, and replies are parsed by hiredis as they arrive and resolve the callers'
replies (gateway/ledger/replies.py) in order, waking each waiting request in place, so several
batches
can be in flight on it at once. Per call this leaves a packed command and a reply; per batch one
write. redis-py still makes the connection (URL
forms, TLS, AUTH, SELECT) and serves every other use of `Store.client`. Profiled under load,
the pooled path spent most of its time in redis-py's per-reply `read_response` (a timeout
context and three coroutines per reply) and per-batch pool checkout; see docs/benchmarks.md.

Scripts live in gateway/ledger/lua/*.lua, one per operation. Redis has no include, so the loader
puts
`_prelude.lua` (the card helpers) in front of every script that does not start with
`--! no-prelude` (the merchant-slot scripts, whose keys are not a card's).

On a Redis Cluster (gateway/ledger/clusterstore.py) a Store per primary does all of the above
for its node, and a ClusterStore routes the calls among them; what differs on a cluster is
named here and overridden there: `feed_key`, `index_key` (per-slot keys), `cross_slot`,
`shards`, `feed_streams`, `index_keys`, `same_slot`, and `on_redirect` for MOVED and ASK.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import InvalidResponse, NoScriptError, RedisError, ResponseError

from gateway.ledger import feed, loyalty
from gateway.ledger.replies import Reply
from gateway.metrics import families as metrics

log = logging.getLogger(__name__)

LUA_DIR = Path(__file__).parent / "lua"
PRELUDE = "_prelude.lua"  # files named _*.lua are parts of scripts, not scripts
NO_PRELUDE = "--! no-prelude"
INCLUDE = "--! include "  # a line "--! include _part.lua" is replaced by that part
CLAIM_FIRST = "claim+"  # "claim+<op>": the claim, then the card script <op>, in one call
CARD_SCRIPT_SLOT = "--! card script\n"


class StoreError(RuntimeError):
    """The store could not be reached, or answered with an error."""


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    sha: str


def load_scripts(directory: Path = LUA_DIR) -> dict[str, Script]:
    """Read every script with its parts put in, and its SHA1 computed locally.

    A card script (one without `--! no-prelude`) gets the prelude in front of it, and a twin
    `claim+<name>` that runs the claim first, in the same call (_claim_card.lua).
    """
    def part(name: str) -> str:
        return (directory / name).read_text()

    def expand(text: str) -> str:  # `--! include _part.lua` lines replaced by the part
        return "".join(part(line[len(INCLUDE):].strip()) if line.startswith(INCLUDE) else line
                       for line in text.splitlines(keepends=True))

    prelude = expand(part(PRELUDE))
    claim_first = part("_claim.lua") + "\n" + part("_claim_card.lua")
    if CARD_SCRIPT_SLOT not in claim_first:
        raise ValueError(f"_claim_card.lua has no {CARD_SCRIPT_SLOT.strip()!r} line")
    sources: dict[str, str] = {}
    for path in sorted(directory.glob("*.lua")):
        if path.name.startswith("_"):
            continue
        body = expand(path.read_text())
        if body.startswith(NO_PRELUDE):
            sources[path.stem] = body
            continue
        card = prelude + "\n" + body
        sources[path.stem] = card
        sources[CLAIM_FIRST + path.stem] = claim_first.replace(CARD_SCRIPT_SLOT, card + "\n", 1)
    return {name: Script(name, source, hashlib.sha1(source.encode()).hexdigest())
            for name, source in sources.items()}


class _Call(Reply):
    """One queued command, and the reply its caller awaits (one object per call, not two)."""

    __slots__ = ("name", "packed", "script", "deadline", "attempts", "redirects")

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str, packed: bytes,
                 script: Script | None = None):
        super().__init__(loop)
        self.name = name  # the command (plain calls: picks redis-py's reply callback) or script
        self.packed = packed  # the whole command in RESP
        self.script = script
        self.deadline = 0.0  # when the reply is overdue (set when written)
        self.attempts = 0  # NOSCRIPT reloads
        self.redirects = 0  # MOVED / ASK answers followed (a cluster's node stores only)


_MORE = object()  # hiredis: no whole reply buffered yet


def _reply_error(message: str) -> ResponseError:
    """An error reply, as an exception object put in the reply's slot (never raised)."""
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    return ResponseError(message)


class _Pipe(asyncio.Protocol):
    """One connection carrying the store's pipelines: writes in order, replies matched FIFO.

    redis-py opens the connection (its URL forms, TLS, AUTH, SELECT, handshake); its transport
    is then handed to this protocol, which feeds hiredis and resolves each waiting call as its
    reply arrives. Any failure (lost connection, overdue reply) fails every waiting call and
    closes the pipe; the store opens a new one for the next batch.
    """

    def __init__(self, store: Store, connection: Any):
        self.store = store
        # kept: a StreamWriter closes its transport when collected
        self.writer: asyncio.StreamWriter = _take_writer(connection)
        self.transport = self.writer.transport
        self.reader = hiredis.Reader(protocolError=InvalidResponse, replyError=_reply_error,
                                     notEnoughData=_MORE)
        self.waiting: deque[_Call] = deque()
        self.open = True
        self._watchdog: asyncio.TimerHandle | None = None
        self.transport.set_protocol(self)

    def send(self, batch: list[_Call]) -> None:
        loop = self.store.loop
        deadline = loop.time() + self.store.timeout
        for call in batch:
            call.deadline = deadline
        self.waiting.extend(batch)
        self.transport.write(b"".join([c.packed for c in batch]))
        if self._watchdog is None:
            self._watchdog = loop.call_at(deadline, self._watch)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        gets, waiting, resolve = self.reader.gets, self.waiting, self.store._resolve
        try:
            while (reply := gets()) is not _MORE:
                if not waiting:  # a reply nobody asked for: the stream cannot be trusted
                    self.fail("reply out of order")
                    return
                resolve(waiting.popleft(), reply)
        except InvalidResponse as e:
            self.fail(f"unreadable reply: {e}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(f"connection lost{f': {exc}' if exc else ''}")

    def _watch(self) -> None:
        """One timer per pipe, not per call: re-armed for the oldest unanswered call."""
        self._watchdog = None
        if not self.waiting or not self.open:
            return
        loop = self.store.loop
        if self.waiting[0].deadline <= loop.time():
            self.fail(f"no reply within {self.store.timeout} s", "timeout")
        else:
            self._watchdog = loop.call_at(self.waiting[0].deadline, self._watch)

    def fail(self, reason: str, kind: str = "connection") -> None:
        if self.open:
            self.open = False
            if self._watchdog is not None:
                self._watchdog.cancel()
            self.transport.abort()
        waiting, self.waiting = self.waiting, deque()
        self.store._pipe_failed(self, StoreError(f"redis at {self.store.url}: {reason}"),
                                waiting, kind)

    def close(self) -> None:
        if self.open:
            self.open = False
            if self._watchdog is not None:
                self._watchdog.cancel()
            self.transport.close()


def _take_writer(connection: Any) -> asyncio.StreamWriter:
    """The stream writer (and so the transport) of a connected redis-py connection, which gives
    it up: redis-py keeps it private and would close it when the connection is collected."""
    writer = connection._writer
    connection._writer = connection._reader = None
    return writer


class Store:
    """Batched access to Redis. Build it with `await Store.connect(url)`."""

    # The journal feed a card's scripts append to (gateway/ledger/feed.py): one stream here;
    # a cluster's store (gateway/ledger/clusterstore.py) names the card's slot's.
    feed_key = staticmethod(feed.feed_key)
    cross_slot = True  # one command may name keys of any slots (a cluster: of one slot only)
    # The program's expiry and tier indexes a card's scripts keep (gateway/ledger/loyalty.py).
    index_key = staticmethod(loyalty.index_key)

    def __init__(self, client: aioredis.Redis, url: str, timeout: float):
        self.client = client
        self.url = url
        self.timeout = timeout
        self.scripts = load_scripts()
        self._queue: list[_Call] = []
        self._flush_scheduled = False
        self._pipe: _Pipe | None = None
        self._opening: list[_Call] | None = None  # calls waiting for the pipe being opened
        self._reloading: dict[str, list[_Call]] = {}  # script -> calls to resend once loaded
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.pipelines_sent = 0  # batches, for tests and metrics
        self.calls_sent = 0
        # Told of every failure to reach the server (not of a script's error reply): the
        # gateway's health turns at the first failed call instead of at its next probe.
        self.failure_listeners: list[Callable[[StoreError], object]] = []
        # Given a call answered MOVED or ASK, and the answer (a cluster's node stores only:
        # gateway/ledger/clusterstore.py resends it to the node named); None: an error reply.
        self.on_redirect: Callable[[_Call, str], object] | None = None

    @classmethod
    def open(cls, url: str, pool_size: int = 64, timeout: float = 5.0) -> Store:
        """A store on `url` that connects on first use (`connect` also checks it answers)."""
        try:
            pool = aioredis.BlockingConnectionPool.from_url(
                url, max_connections=pool_size, timeout=timeout, socket_timeout=timeout,
                socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 1),
            )
        except ValueError as e:
            raise StoreError(f"bad redis url {url!r}: {e}") from None
        return cls(aioredis.Redis(connection_pool=pool), url, timeout)

    @classmethod
    async def connect(cls, url: str, pool_size: int = 64, timeout: float = 5.0) -> Store:
        """Connect and check the server answers; raise StoreError with a one-line reason if not."""
        store = cls.open(url, pool_size, timeout)
        try:
            await asyncio.wait_for(store.client.ping(), timeout)
        except (TimeoutError, RedisError, OSError) as e:
            await store.close()
            raise StoreError(f"redis at {url} does not answer: {e or type(e).__name__}") from None
        return store

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the store runs on, looked up once: asyncio.get_running_loop() makes a
        getpid() system call each time (fork detection), several per request on the hot path,
        and a system call is dear on a VM (it was 9 % of the gateway's samples under load)."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def shards(self) -> list[Store]:
        """The stores holding a share of the keys, for what SCANs them all (one Redis: this)."""
        return [self]

    async def scan(self, pattern: str, count: int = 1000) -> AsyncIterator[list[bytes]]:
        """The keys matching `pattern`, a SCAN page at a time, on every shard."""
        for shard in self.shards():
            cursor = 0
            while True:
                cursor, keys = await shard.command("SCAN", cursor, "MATCH", pattern,
                                                   "COUNT", count)
                if keys:
                    yield keys
                if int(cursor) == 0:
                    break

    async def feed_streams(self) -> list[str]:
        """Every feed stream the back office reads (one Redis: one)."""
        return feed.feed_streams()

    async def index_keys(self, program_id: str, what: str) -> list[str]:
        """Every `what` index of the program (`index_key`) the sweep reads (one Redis: one)."""
        return [loyalty.index_key(program_id, what, "")]

    def same_slot(self, key: str, other: str) -> bool:
        """Whether one script may touch both keys (one Redis: always; a cluster: one slot)."""
        return True

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.client.ping(), self.timeout))
        except (TimeoutError, RedisError, OSError):
            return False

    async def close(self) -> None:
        for task in list(self._tasks):
            await asyncio.gather(task, return_exceptions=True)
        if self._pipe is not None and self._pipe.waiting:  # let calls in flight be answered
            await asyncio.wait(list(self._pipe.waiting),  # type: ignore[type-var]
                               timeout=self.timeout)  # a Reply is future-like, as wait needs
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
        await self.client.aclose()
        await self.client.connection_pool.disconnect()

    # -- the batcher -------------------------------------------------------------------------

    def command(self, *args: Any) -> Reply:
        """Queue one Redis command for this turn's pipeline; await the returned reply."""
        return self._enqueue(_Call(self.loop, str(args[0]).upper(), pack_command(args)))

    def run(self, name: str, keys: list[str], argv: list[Any]) -> Reply:
        """Queue one script call (EVALSHA) for this turn's pipeline; await the returned reply.

        Arguments on the hot path are best given as str or bytes: hiredis formats an int with
        snprintf, about 0.35 us each (str() of a small int is a fifth of that)."""
        script = self.scripts[name]
        args = ("EVALSHA", script.sha, str(len(keys)), *keys, *argv)
        try:
            packed = hiredis.pack_command(args)  # C: ~0.8 us against ~2.2 us for pack_command
        except TypeError:  # a bool, or what neither packs (pack_command says what)
            packed = pack_command(args)
        return self._enqueue(_Call(self.loop, name, packed, script))

    def _enqueue(self, call: _Call) -> Reply:
        self._queue.append(call)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)
        return call

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        self._flush_scheduled = False
        if batch:
            self._send(batch)

    def _send(self, batch: list[_Call]) -> None:
        """Write the batch on the pipe, or hold it while the pipe is (re)opened."""
        pipe = self._pipe
        if pipe is not None and pipe.open:
            self.pipelines_sent += 1
            self.calls_sent += len(batch)
            pipe.send(batch)
        elif self._opening is not None:
            self._opening.extend(batch)
        else:
            self._opening = batch
            self._spawn(self._open_pipe())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open_pipe(self) -> None:
        connection = self.client.connection_pool.make_connection()
        try:
            async with asyncio.timeout(self.timeout):
                await connection.connect()
        except (TimeoutError, RedisError, OSError) as e:
            await connection.disconnect(nowait=True)
            held, self._opening = self._opening or [], None
            self._fail(held, StoreError(f"redis at {self.url}: {e or type(e).__name__}"),
                       "timeout" if isinstance(e, TimeoutError) else "connection")
            return
        self._pipe = _Pipe(self, connection)
        held, self._opening = self._opening or [], None
        if held:
            self._send(held)

    def _pipe_failed(self, pipe: _Pipe, error: StoreError, waiting: deque[_Call],
                     kind: str) -> None:
        if self._pipe is pipe:
            self._pipe = None
        self._fail(waiting, error, kind)

    def _fail(self, calls: Any, error: StoreError, kind: str) -> None:
        """Fail `calls`, counted under `kind` (timeout | connection: metrics.REDIS_ERROR_KINDS)."""
        if not calls:  # a pipe closed with nothing waiting: nobody was refused
            return
        metrics.REDIS_ERRORS.labels(kind).inc(len(calls))
        for call in calls:
            if not call.done():
                call.set_exception(error)
        for listener in self.failure_listeners:
            listener(error)

    def _resolve(self, call: _Call, reply: Any) -> None:
        """Hand one reply to its caller (called by the pipe, in reply order)."""
        future = call  # a call is its own reply
        if future.done():  # the caller gave up (cancelled)
            return
        if isinstance(reply, ResponseError):
            if self.on_redirect is not None and str(reply).startswith(("MOVED ", "ASK ")):
                self.on_redirect(call, str(reply))  # a cluster's slot moved: resent elsewhere
            elif isinstance(reply, NoScriptError) and call.script and not call.attempts:
                metrics.REDIS_ERRORS.labels("noscript").inc()
                self._reload(call)  # server restarted or failed over: load, resend this call
            else:
                metrics.REDIS_ERRORS.labels("error_reply").inc()
                future.set_exception(StoreError(f"redis error: {reply}"))
            return
        if call.script is None:  # plain commands get redis-py's reply shapes (HGETALL: dict)
            callback = self.client.response_callbacks.get(call.name)
            if callback is not None:
                try:
                    reply = callback(reply)
                except Exception as e:
                    metrics.REDIS_ERRORS.labels("error_reply").inc()
                    future.set_exception(StoreError(f"redis reply to {call.name}: {e}"))
                    return
        future.set_result(reply)

    def _reload(self, call: _Call) -> None:
        """Resend a call once its script is loaded again (one SCRIPT LOAD per script)."""
        assert call.script is not None
        call.attempts += 1
        waiting = self._reloading.get(call.script.name)
        if waiting is not None:
            waiting.append(call)
            return
        self._reloading[call.script.name] = [call]
        self._spawn(self._load_and_resend(call.script))

    async def _load_and_resend(self, script: Script) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self.client.script_load(script.source)
        except (TimeoutError, RedisError, OSError) as e:
            error = StoreError(f"redis at {self.url}: {e or type(e).__name__}")
            self._fail(self._reloading.pop(script.name), error,
                       "timeout" if isinstance(e, TimeoutError) else "connection")
            return
        for call in self._reloading.pop(script.name):
            self._enqueue(call)


def pack_command(args: tuple[Any, ...]) -> bytes:
    """RESP encoding of one command whose arguments are bytes, str or int."""
    return b"*%d\r\n%s" % (len(args), _pack_args(args))


def _pack_args(args: Any) -> bytes:
    parts = []
    for arg in args:
        if isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:
            raise TypeError(f"cannot send a {type(arg).__name__} to Redis")
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)

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
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    InvalidResponse,
    NoScriptError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)

from gateway.ledger import feed, loyalty, recordlayout
from gateway.ledger.replicaack import HeldBatch, ReplicaAck
from gateway.ledger.replies import Reply
from gateway.ledger.sentinelpool import close_pool, connection_pool
from gateway.metrics import families as metrics

log = logging.getLogger(__name__)

LUA_DIR = Path(__file__).parent / "lua"
PRELUDE = "_prelude.lua"  # files named _*.lua are parts of scripts, not scripts
NO_PRELUDE = "--! no-prelude"
INCLUDE = "--! include "  # a line "--! include _part.lua" is replaced by that part
CLAIM_FIRST = "claim+"  # "claim+<op>": the claim, then the card script <op>, in one call
CARD_SCRIPT_SLOT = "--! card script\n"


class StoreError(RuntimeError):
    """The store could not be reached, or answered with an error.

    `began`, for a failure to reach it: when the failed calls were written or their connection
    begun (the loop's clock, time.monotonic), so that a listener can tell a failure that
    predates the store answering again (a connection begun during a network outage, failing
    after it) from a new one."""

    began: float | None = None


class UnacknowledgedWrite(StoreError):
    """The call ran on the primary, but its batch's writes did not reach
    `redis.acknowledge_after_replicas` replicas in time (gateway/ledger/replicaack.py): a
    failover may lose them. `reply` is what the primary answered."""

    def __init__(self, message: str, reply: Any):
        super().__init__(message)
        self.reply = reply


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

    __slots__ = ("name", "packed", "script", "deadline", "attempts", "held_by", "redirects")

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str, packed: bytes,
                 script: Script | None = None):
        super().__init__(loop)
        self.name = name  # the command (plain calls: picks redis-py's reply callback) or script
        self.packed = packed  # the whole command in RESP
        self.script = script
        self.deadline = 0.0  # when the reply is overdue (set when written)
        self.attempts = 0  # NOSCRIPT reloads
        self.held_by: HeldBatch | None = None  # durable acknowledgement: its batch's WAIT
        self.redirects = 0  # MOVED / ASK answers followed (a cluster's node stores only)


_MORE = object()  # hiredis: no whole reply buffered yet


def _reply_error(message: str) -> ResponseError:
    """An error reply, as an exception object put in the reply's slot (never raised)."""
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    if message.startswith("READONLY"):  # a demoted primary: the pipe reconnects (Sentinel)
        return ReadOnlyError(message)
    return ResponseError(message)


class _Pipe(asyncio.Protocol):
    """One connection carrying the store's pipelines: writes in order, replies matched FIFO.

    redis-py opens the connection (its URL forms, TLS, AUTH, SELECT, handshake); its transport
    is then handed to this protocol, which feeds hiredis and resolves each waiting call as its
    reply arrives. A lost connection or an unreadable reply fails every waiting call and
    closes the pipe; the store opens a new one for the next batch.

    An overdue reply fails only the calls whose own deadline has passed, and retires the pipe
    (the next batch goes on a new one): a call written later keeps waiting until its deadline,
    since a stalled server may still run it and answer in time. Failing it earlier would answer
    96 for a call that Redis then runs, with a deadline argument (Store.deadline_ms) that had
    not yet passed. The retired pipe closes when its last call is answered or overdue.
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
        self.retired = False  # no new batches: a call on it was overdue
        self._watchdog: asyncio.TimerHandle | None = None
        self.transport.set_protocol(self)
        store._open_pipes.add(self)

    def send(self, batch: list[_Call]) -> None:
        loop = self.store.loop
        deadline = loop.time() + self.store.timeout
        if self.store.replica_ack is not None:  # one WAIT after a batch that writes
            batch = self.store.replica_ack.guard(batch, self.store._wait_call)
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
                call = waiting.popleft()
                if call.held_by is None:
                    resolve(call, reply)
                else:  # held until its batch's WAIT answers
                    call.held_by.take(call, reply, resolve, self.store._unacknowledged)
        except InvalidResponse as e:
            self.fail(f"unreadable reply: {e}")
            return
        if self.retired and not waiting:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(f"connection lost{f': {exc}' if exc else ''}")

    def _watch(self) -> None:
        """One timer per pipe, not per call: re-armed for the oldest call not yet overdue."""
        self._watchdog = None
        if not self.waiting or not self.open:
            return
        loop = self.store.loop
        now = loop.time()
        if self.waiting[-1].deadline <= now:  # all overdue: nothing more can come in time
            self.fail(f"no reply within {self.store.timeout} s", "timeout")
            return
        # Deadlines grow along the queue: the overdue calls are at its front. They stay in it
        # (failed), so that the replies still coming are matched to the right calls.
        overdue = []
        for call in self.waiting:
            if call.deadline > now:
                self._watchdog = loop.call_at(call.deadline, self._watch)
                break
            overdue.append(call)
        if overdue:
            self.retired = True
            reason = f"no reply within {self.store.timeout} s"
            for call in overdue:  # a WAIT overdue: the replies it held are refused now, undone
                if call.held_by is not None and call is call.held_by.wait:
                    self.store._unacknowledged(call.held_by.orphaned(), reason)
            self.store._pipe_failed(self, StoreError(f"redis at {self.store.url}: {reason}"),
                                    overdue, "timeout")

    def fail(self, reason: str, kind: str = "connection") -> None:
        if self.open:
            self.open = False
            self.store._open_pipes.discard(self)
            if self._watchdog is not None:
                self._watchdog.cancel()
            self.transport.abort()
        waiting, self.waiting = self.waiting, deque()
        error = StoreError(f"redis at {self.store.url}: {reason}")
        for call in waiting:  # replies held for a WAIT that will not answer now
            if call.held_by is not None and call is call.held_by.wait:
                self.store._unacknowledged(call.held_by.orphaned(), str(error))
        self.store._pipe_failed(self, error, waiting, kind)

    def close(self) -> None:
        if self.open:
            self.open = False
            self.store._open_pipes.discard(self)
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

    def __init__(self, client: aioredis.Redis, url: str, timeout: float,
                 replica_ack: ReplicaAck | None = None):
        self.client = client
        self.replica_ack = replica_ack  # None: answers do not wait for replicas
        self.unreplicated = False  # the last probe's write did not reach enough replicas
        self.url = url
        self.timeout = timeout
        self.clock_offset = 0.0  # Redis's clock minus ours, seconds (read_clock)
        self.packed_records = False  # the ledger's record layout (read_record_layout)
        self.scripts = load_scripts()
        self._queue: list[_Call] = []
        self._flush_scheduled = False
        self._pipe: _Pipe | None = None
        self._open_pipes: set[_Pipe] = set()  # the pipe, and retired ones still waiting
        self._opening: list[_Call] | None = None  # calls waiting for the pipe being opened
        self._opening_began = 0.0  # when that pipe's connection was begun (loop time)
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
    def open(cls, url: str, pool_size: int = 64, timeout: float = 5.0,
             acknowledge_after_replicas: int = 0, acknowledge_timeout_ms: int = 1000) -> Store:
        """A store on `url` that connects on first use (`connect` also checks it answers).

        A redis+sentinel:// URL connects through its Sentinels: every new connection (the
        pipe's too) goes to the primary they name at that moment, so after a failover the next
        pipe is opened on the new primary."""
        try:
            pool = connection_pool(url, max_connections=pool_size, timeout=timeout,
                                   socket_timeout=timeout, socket_connect_timeout=timeout,
                                   retry=Retry(NoBackoff(), 1))
        except ValueError as e:
            raise StoreError(f"bad redis url {url!r}: {e}") from None
        ack = (ReplicaAck(acknowledge_after_replicas, acknowledge_timeout_ms)
               if acknowledge_after_replicas > 0 else None)
        return cls(aioredis.Redis(connection_pool=pool), url, timeout, ack)

    @classmethod
    async def connect(cls, url: str, pool_size: int = 64, timeout: float = 5.0,
                      acknowledge_after_replicas: int = 0,
                      acknowledge_timeout_ms: int = 1000) -> Store:
        """Connect and check the server answers; raise StoreError with a one-line reason if not."""
        store = cls.open(url, pool_size, timeout, acknowledge_after_replicas,
                         acknowledge_timeout_ms)
        try:
            await store.read_clock()  # an answer to TIME: the server answers
            await store.read_record_layout()
        except (TimeoutError, RedisError, OSError) as e:
            await store.close()
            raise StoreError(f"redis at {url} does not answer: {_reason(e, timeout)}") from None
        return store

    async def read_record_layout(self) -> None:
        """The layout this ledger's request records are written in (`packed_records`, from
        the ledger's mark: gateway/ledger/recordlayout.py), read once at connect."""
        try:
            packed = await recordlayout.writes_packed(self)
        except UnacknowledgedWrite:  # the new mark is written, not yet copied: read it back
            packed = await recordlayout.writes_packed(self)
        self.packed_records = packed

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
        """Whether the server answers; with durable acknowledgement, also whether a write now
        reaches the replicas it needs (with fewer, every write is refused: no working store).
        A write and a WAIT (`ReplicaAck.settled`), not INFO's connected_slaves: a stalled
        replica stays connected for `repl-timeout` (60 s) while it acknowledges nothing."""
        try:
            await self.read_clock()  # an answer to TIME: the server answers
            if self.replica_ack is not None:
                self.unreplicated = not await asyncio.wait_for(
                    self.replica_ack.settled(self.client), self.timeout)
                return not self.unreplicated
            return True
        except (TimeoutError, RedisError, OSError):
            return False

    def short_of_replicas(self) -> list[str]:
        """The primaries whose writes did not reach their replicas at the last probe, for
        /healthz (one Redis: "primary" or none)."""
        return ["primary"] if self.unreplicated else []

    async def replicated(self, keys: Iterable[str]) -> bool:
        """Whether everything the primaries holding `keys` wrote until now is on the replicas
        durable acknowledgement wants (always, without it): for readers of what others wrote,
        such as the back office's feed (one Redis: its one primary)."""
        if self.replica_ack is None:
            return True
        return await self.replica_ack.settled(self.client)

    async def close(self) -> None:
        for task in list(self._tasks):
            await asyncio.gather(task, return_exceptions=True)
        if self._pipe is not None and self._pipe.waiting:  # let calls in flight be answered
            await asyncio.wait(list(self._pipe.waiting),  # type: ignore[type-var]
                               timeout=self.timeout)  # a Reply is future-like, as wait needs
        self._pipe = None
        for pipe in list(self._open_pipes):
            pipe.close()
        await self.client.aclose()
        await close_pool(self.client.connection_pool)

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

    async def read_clock(self) -> None:
        """Redis's clock against ours, into `clock_offset` (seconds), at connect and at every
        health probe: deadline_ms is set in Redis's time, so skew between the hosts neither
        refuses every call (a Redis clock ahead by more than the time-out would) nor widens the
        window in which a late call still runs (one behind)."""
        before = time.time()
        seconds, micros = await asyncio.wait_for(self.client.time(), self.timeout)
        after = time.time()
        self.clock_offset = seconds + micros / 1e6 - (before + after) / 2

    def deadline_ms(self) -> str:
        """A call's deadline as a script argument (epoch milliseconds, wall clock): the
        earliest moment the store may give up on a call queued now and its request be answered
        96. A script given it changes nothing when Redis runs it later (a stalled server runs
        what waited in its socket when it resumes), so a 96 means nothing was changed. It is
        in Redis's time (our clock plus `clock_offset`, read_clock), as Redis checks it."""
        return str(int((time.time() + self.clock_offset + self.timeout) * 1000))

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
            self._opening_began = self.loop.time()
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
            self._fail(held, StoreError(f"redis at {self.url}: {_reason(e, self.timeout)}"),
                       "timeout" if isinstance(e, TimeoutError) else "connection",
                       self._opening_began)
            return
        self._pipe = _Pipe(self, connection)
        held, self._opening = self._opening or [], None
        if held:
            self._send(held)

    def _pipe_failed(self, pipe: _Pipe, error: StoreError, waiting: Iterable[_Call],
                     kind: str) -> None:
        if self._pipe is pipe:
            self._pipe = None
        calls = list(waiting)  # written in order: the first was written first
        began = calls[0].deadline - self.timeout if calls else None
        self._fail(calls, error, kind, began)

    def _fail(self, calls: Any, error: StoreError, kind: str,
              began: float | None = None) -> None:
        """Fail `calls`, counted under `kind` (timeout | connection: metrics.REDIS_ERROR_KINDS);
        `began`: when the first of them was written, or their connection begun."""
        calls = [call for call in calls if not call.done()]  # not those failed before
        if not calls:  # a pipe closed with nothing waiting: nobody was refused
            return
        error.began = began
        metrics.REDIS_ERRORS.labels(kind).inc(len(calls))
        for call in calls:
            if not call.done():
                call.set_exception(error)
        for listener in self.failure_listeners:
            listener(error)

    def _wait_call(self, args: tuple[str, ...]) -> _Call:
        """The WAIT closing a batch (gateway/ledger/replicaack.py)."""
        self.calls_sent += 1
        return _Call(self.loop, "WAIT", pack_command(args))

    def _unacknowledged(self, held: list[tuple[_Call, Any]], reason: str) -> None:
        """Fail the calls of a batch whose writes did not reach enough replicas; each error
        carries the primary's reply, for the processor to undo what it did. A call answered
        with an error ran nothing to wait for (NOSCRIPT, MOVED, ASK, READONLY): it is handled
        as without a WAIT (loaded or redirected and resent, or failed), not said to be made."""
        refused = [(call, reply) for call, reply in held if not isinstance(reply, ResponseError)]
        for call, reply in held:
            if isinstance(reply, ResponseError):
                self._resolve(call, reply)
        if not refused:
            return
        metrics.REDIS_ERRORS.labels("unacknowledged").inc(len(refused))
        # What an operator reads too (admin API 503, a command's error line): the write was
        # made on the primary, unlike a failure to reach Redis, and a failover may lose it.
        message = (f"redis at {self.url}: the write is not yet on replicas ({reason}); it was "
                   "made on the primary, and a failover may lose it")
        for call, reply in refused:
            if not call.done():
                call.set_exception(UnacknowledgedWrite(message, reply))
        error = StoreError(message)
        for listener in self.failure_listeners:  # /healthz turns until the probe says better
            listener(error)

    def _resolve(self, call: _Call, reply: Any) -> None:
        """Hand one reply to its caller (called by the pipe, in reply order)."""
        future = call  # a call is its own reply
        if future.done():  # the caller gave up (cancelled)
            return
        if isinstance(reply, ResponseError):
            if isinstance(reply, ReadOnlyError):  # failed over: drop the pipe, reconnect
                future.set_exception(StoreError(f"redis at {self.url}: {reply}"))
                if self._pipe is not None:
                    self._pipe.fail("the primary is now a replica")
                return
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
            error = StoreError(f"redis at {self.url}: {_reason(e, self.timeout)}")
            self._fail(self._reloading.pop(script.name), error,
                       "timeout" if isinstance(e, TimeoutError) else "connection")
            return
        for call in self._reloading.pop(script.name):
            self._enqueue(call)


def _reason(error: BaseException, timeout: float) -> str:
    """Why a connection or call failed, never blank: asyncio.timeout's TimeoutError says
    nothing of itself (the log read "redis at ...: " through a network outage)."""
    if isinstance(error, TimeoutError) and not str(error):
        return f"no answer within {timeout} s"
    return str(error) or type(error).__name__


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

"""The load generator: many terminals, many requests in flight per connection, one process.

asyncio Protocols (no streams, no per-request tasks): each connection keeps a dict of requests
in flight keyed by STAN (ISO) or id (TGL/1) and writes the next request from `data_received`,
so one core drives tens of thousands of requests a second (bench/bench_loadgen.py measures the
ceiling against an echo host). Messages are built by the simulator's dialects (isobuild and the
codec twin), the same bytes a `Till` sends.

Two modes:
- closed loop (`depth`): each connection keeps `depth` requests in flight; an answer releases
  the next request. Measures the gateway's capacity.
- open loop (`rate`): requests leave at a fixed total rate whatever the answers; latency is
  measured from the time each request was due, so a generator that falls behind shows up as
  latency instead of hiding it (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import functools
import random
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.sim.links import ssl_context
from gateway.sim.loadstats import LoadStats
from gateway.sim.messages import Call, dialect_for
from gateway.sim.pacing import CardLimit, CardPacer
from gateway.sim.target import Target
from gateway.sim.till import next_seq
from protocols import stxetx
from protocols.framing import Deframer, FramingError, frame
from protocols.isobuild import transmission_time
from protocols.model import Op

MIX_OPS = {op.value: op for op in (Op.BALANCE, Op.REDEEM, Op.RELOAD, Op.REFUND, Op.EARN,
                                   Op.POINTS_BALANCE, Op.ECHO)}
LOYALTY_OPS = frozenset({Op.EARN, Op.POINTS_BALANCE})
DEFAULT_MIX = "redeem=5,balance=3,reload=2"


def parse_mix(text: str) -> list[tuple[Op, int]]:
    """`redeem=5,balance=3` -> [(Op.REDEEM, 5), (Op.BALANCE, 3)]; ValueError with a reason."""
    mix = []
    for part in text.split(","):
        name, _, weight = part.strip().partition("=")
        if name not in MIX_OPS:
            raise ValueError(f"--mix: {name!r} is not one of {', '.join(MIX_OPS)}")
        if weight and not (weight.isdigit() and int(weight) > 0):
            raise ValueError(f"--mix: the weight of {name} must be a positive whole number")
        mix.append((MIX_OPS[name], int(weight or 1)))
    return mix


@dataclass
class LoadSettings:
    connections: int = 4
    depth: int = 8  # closed loop: requests in flight per connection
    rate: float | None = None  # open loop: requests per second in total
    duration: float = 10.0
    mix: list[tuple[Op, int]] = field(default_factory=lambda: parse_mix(DEFAULT_MIX))
    amount: int = 1  # minor units per money operation (a cent keeps balances for long runs)
    timeout: float = 10.0  # an unanswered request counts as a timeout after this

    def describe(self) -> dict[str, object]:
        mode = {"rate": self.rate} if self.rate else {"depth": self.depth}
        return {"connections": self.connections, **mode, "duration": self.duration,
                "mix": ",".join(f"{op.value}={w}" for op, w in self.mix)}


class _Connection(asyncio.Protocol):
    """One terminal's TCP connection. Answers are matched on STAN or id within it."""

    def __init__(self, run: LoadRun, terminal: str, merchant: str):
        self.run = run
        self.terminal = terminal
        self.merchant = merchant
        self.pending: dict[str, tuple[float, str]] = {}
        self.transport: asyncio.Transport | None = None
        self.stxetx = run.target.stxetx
        self.ack = run.target.ack and self.stxetx
        self.deframer = None if self.stxetx else Deframer(run.target.framing, 65535)
        self.receiver = stxetx.Receiver(max_frame=65535) if self.stxetx else None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pending:
            self.run.stats.errors["closed"] += len(self.pending)
            self.pending.clear()
        if not self.run.closing:  # the gateway (or the network) ended it, not the run
            self.run.stats.errors["disconnected"] += 1
        self.transport = None
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, due: float | None = None) -> None:
        """One request. `due` is when it was scheduled (open loop); else it is now."""
        if self.transport is None:
            return
        run = self.run
        op, card = run.next_op()
        seq = next_seq(run.dialect.name, self.terminal)
        call = Call(op=op, card=card, amount=run.amounts[op])
        fields = run.dialect.build(call, terminal=self.terminal, merchant=self.merchant,
                                   seq=seq, transmitted=run.field7)
        payload = run.dialect.encode(fields)
        self.pending[seq] = (time.perf_counter() if due is None else due, op.value)
        run.stats.sent += 1
        if self.stxetx:
            self.transport.write(stxetx.encode_frame(payload, 65535))
        else:
            self.transport.write(frame(payload, run.target.framing, tpdu=run.target.tpdu))

    def data_received(self, data: bytes) -> None:
        run = self.run
        if self.receiver is not None:
            payloads = self._line_payloads(data)
        else:
            try:
                payloads = [f.payload for f in self.deframer.feed(data)]  # type: ignore[union-attr]
            except FramingError:
                run.stats.errors["bad frame"] += 1
                self.transport.close()  # type: ignore[union-attr]
                return
        now = time.perf_counter()
        for payload in payloads:
            try:
                fields = run.dialect.decode(payload)
            except ValueError:
                run.stats.errors["undecodable"] += 1
                continue
            key = fields.get("11") if run.iso else fields.get("id")
            entry = self.pending.pop(key, None)  # type: ignore[arg-type]
            if entry is None:
                run.stats.errors["unmatched"] += 1
                continue
            rc = fields.get("39") if run.iso else fields.get("rc")
            run.stats.answered(entry[1], rc or "??", now - entry[0])
            run.last_answer = now
            if run.closed_loop and now < run.deadline:
                self.send()

    def _line_payloads(self, data: bytes) -> list[bytes]:
        payloads = []
        for event in self.receiver.feed(data):  # type: ignore[union-attr]
            if isinstance(event, stxetx.Frame):
                payloads.append(event.payload)
            elif isinstance(event, stxetx.BadFrame):
                self.run.stats.errors["bad LRC"] += 1
                if self.ack:
                    self.transport.write(stxetx.NAK_BYTE)  # type: ignore[union-attr]
            elif isinstance(event, stxetx.Nak):
                self.run.stats.errors["NAK"] += 1
        if payloads and self.ack:
            self.transport.write(stxetx.ACK_BYTE * len(payloads))  # type: ignore[union-attr]
        return payloads


class LoadRun:
    """One load run against `target` with pre-activated cards."""

    def __init__(self, target: Target, settings: LoadSettings, tills: list[tuple[str, str]],
                 gift_cards: list[str], loyalty_cards: list[str] | None = None,
                 progress: Callable[[LoadRun, float], None] | None = None,
                 limits: dict[Op, CardLimit] | None = None):
        """`limits`: the gateway's refusing card rules per operation (gateway.sim.pacing:
        `card_limits(config.rules, ...)`); those operations go only to cards with room left."""
        if not tills:
            raise ValueError("a load run needs at least one terminal")
        self.target = target
        self.settings = settings
        self.tills = tills
        self.dialect = dialect_for(target.protocol, bitmap=target.bitmap)
        self.iso = target.protocol == "iso"
        self.closed_loop = not settings.rate
        self.progress = progress
        self.stats = LoadStats()
        self.field7 = transmission_time()
        self.deadline = 0.0
        self.started = 0.0
        self.last_answer = 0.0
        self.closing = False  # set when the run closes its connections: a loss before is counted
        self.connections: list[_Connection] = []
        rng = random.Random(7)
        wheel = [op for op, weight in settings.mix for _ in range(weight)]
        rng.shuffle(wheel)
        self._wheel = wheel
        self._turn = 0
        self._cards = {False: list(gift_cards), True: list(loyalty_cards or [])}
        needs_loyalty = any(op in LOYALTY_OPS for op in wheel)
        needs_gift = any(op not in LOYALTY_OPS and op is not Op.ECHO for op in wheel)
        if needs_gift and not self._cards[False]:
            raise ValueError("the mix needs gift cards")
        if needs_loyalty and not self._cards[True]:
            raise ValueError("the mix needs loyalty cards")
        self._pacers = {op: CardPacer(limit, self._cards[op in LOYALTY_OPS], settings.timeout)
                        for op, limit in (limits or {}).items() if op in wheel}
        # what is sent instead of an operation held back: the mix's unlimited operations
        self._instead = [op for op in wheel if op not in self._pacers] or [Op.ECHO]
        self.amounts = {op: (None if op in (Op.BALANCE, Op.POINTS_BALANCE, Op.ECHO)
                             else settings.amount) for op in MIX_OPS.values()}
        self.amounts[Op.EARN] = 100 * settings.amount

    def next_op(self) -> tuple[Op, str | None]:
        self._turn += 1
        op = self._wheel[self._turn % len(self._wheel)]
        if op is Op.ECHO:
            return op, None
        pacer = self._pacers.get(op)
        if pacer is not None:
            card = pacer.card(time.perf_counter())
            if card is not None:
                return op, card
            self.stats.held_back[op.value] += 1
            op = self._instead[self._turn % len(self._instead)]
            if op is Op.ECHO:
                return op, None
        cards = self._cards[op in LOYALTY_OPS]
        return op, cards[self._turn % len(cards)]

    async def run(self) -> LoadStats:
        loop = asyncio.get_running_loop()
        connections = self.connections
        for i in range(self.settings.connections):
            terminal, merchant = self.tills[i % len(self.tills)]
            if self.target.transport != "tcp":
                raise ValueError("load runs go over TCP")
            context = ssl_context(self.target)
            _, conn = await loop.create_connection(
                functools.partial(_Connection, self, terminal, merchant),
                self.target.host, self.target.port, ssl=context,
                server_hostname=self.target.host if context else None)
            connections.append(conn)
        self.started = time.perf_counter()
        self.deadline = self.started + self.settings.duration
        helpers = [asyncio.ensure_future(self._clock()), asyncio.ensure_future(self._reaper())]
        try:
            if self.closed_loop:
                for conn in connections:
                    for _ in range(self.settings.depth):
                        conn.send()
                await asyncio.sleep(self.settings.duration)
            else:
                await self._open_loop(connections)
            await self._drain(connections)
        finally:
            for task in helpers:
                task.cancel()
            self.closing = True
            await self._close(connections)
        end = max(self.deadline, self.last_answer) if self.stats.completed else self.deadline
        self.stats.elapsed = end - self.started
        return self.stats

    @staticmethod
    async def _close(connections: list[_Connection], grace: float = 2.0) -> None:
        """Close every connection and wait until each is gone: a TLS transport closes its socket
        only after its close_notify exchange, which needs the loop to keep running (a private
        loop stopped right after `run` left those sockets open)."""
        open_ones = [conn for conn in connections if conn.transport is not None]
        for conn in open_ones:
            conn.transport.close()  # type: ignore[union-attr]
        gone = [conn.closed for conn in open_ones]
        if gone:
            _, late = await asyncio.wait(gone, timeout=grace)
            for conn in connections:
                if conn.closed in late and conn.transport is not None:
                    conn.transport.abort()

    def run_blocking(self) -> LoadStats:
        """`run` on a private event loop in a worker thread (from code that may already be
        inside a running loop, such as a test on pytest-twisted's asyncio reactor)."""
        from gateway.sim.issuer import run_blocking

        return run_blocking(self.run)

    async def _open_loop(self, connections: list[_Connection]) -> None:
        rate = float(self.settings.rate or 1)
        sent = 0
        while True:
            now = time.perf_counter()
            if now >= self.deadline:
                return
            due = int((now - self.started) * rate)
            while sent < due:
                conn = connections[sent % len(connections)]
                conn.send(self.started + sent / rate)
                sent += 1
            await asyncio.sleep(0.001)

    async def _drain(self, connections: list[_Connection]) -> None:
        limit = time.perf_counter() + min(self.settings.timeout, 5.0)
        while any(c.pending for c in connections) and time.perf_counter() < limit:
            await asyncio.sleep(0.005)
        for conn in connections:
            if conn.pending:
                self.stats.errors["timeout"] += len(conn.pending)
                conn.pending.clear()

    async def _clock(self) -> None:
        """Field 7 (seconds) refreshed twice a second, and the progress display."""
        while True:
            await asyncio.sleep(0.5)
            self.field7 = transmission_time()
            if self.progress is not None:
                self.progress(self, time.perf_counter() - self.started)

    async def _reaper(self) -> None:
        """Requests unanswered for `timeout` seconds are counted and forgotten (closed loop:
        replaced, so the connection keeps its depth)."""
        timeout = self.settings.timeout
        while True:
            await asyncio.sleep(min(1.0, timeout / 2))
            now = time.perf_counter()
            for conn in self.connections:
                expired = [k for k, (due, _op) in conn.pending.items() if now - due > timeout]
                for key in expired:
                    del conn.pending[key]
                    self.stats.errors["timeout"] += 1
                    if self.closed_loop and now < self.deadline:
                        conn.send()


def progress_bar(stream=sys.stderr) -> Callable[[LoadRun, float], None]:
    """A one-line progress bar, redrawn in place (for a terminal)."""
    last = {"t": 0.0, "n": 0}

    def show(run: LoadRun, elapsed: float) -> None:
        total = run.settings.duration
        done = min(elapsed / total, 1.0)
        width = 30
        filled = int(done * width)
        n = run.stats.completed
        rate = (n - last["n"]) / max(elapsed - last["t"], 1e-9)
        last.update(t=elapsed, n=n)
        errors = sum(run.stats.errors.values())
        declines = sum(c for rc, c in run.stats.codes.items() if rc not in ("00", "10"))
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {elapsed:5.1f}/{total:g} s "
                     f"{rate:8.0f} req/s  answered {n}  declined {declines}  errors {errors} ")
        stream.flush()
        if elapsed >= total:
            stream.write("\n")

    return show

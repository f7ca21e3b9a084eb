"""A load of tills for the fault tests (tests/test_faults_*.py): real TCP, blocking sockets.

Each till is a thread with its own TGL/1 connection sending one reload at a time and writing
down every exchange: what it sent, the answer's code (None: no answer) and how long it waited.
The record is what the tests hold the gateway to: every approval a till got must be in the
ledger once, every request left unanswered must be answered from its record when retransmitted.
It frames with tests/linetill.py's few lines, not the gateway's codec.
"""

from __future__ import annotations

import csv
import itertools
import socket
import subprocess
import threading
import time
from dataclasses import dataclass

import msgpack
import redis
from linetill import ACK, frame, tgl_fields, tgl_request

from gateway.ledger.cards import card_id
from gateway.testing import GatewayProcess
from protocols.model import line_request_key

TERM = {"term": "TILL0001", "merch": "STORE0000000001"}
AMOUNT = 100  # minor units per reload: a card's balance counts its applied reloads
ISO_PAUSE = 0.01  # seconds between an ISO till's requests (at full speed they load the CPUs)


@dataclass
class Exchange:
    id: str
    card: str
    rc: str | None = None  # None: the till got no answer (connection lost, or its time-out)
    seconds: float = 0.0
    why: str = ""  # what ended an unanswered exchange
    started: float = 0.0  # time.monotonic() as it was sent

    def in_flight_at(self, moment: float) -> bool:
        """Whether it was sent before `moment` and answered (or given up) after it."""
        return self.started <= moment <= self.started + self.seconds

    def fields(self) -> dict[str, str]:
        return {"id": self.id, "op": "reload", "card": self.card, "amt": str(AMOUNT), **TERM}


class TillConnection:
    """One TGL/1 connection: one request at a time, each answer ACKed."""

    def __init__(self, port: int, timeout: float):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def send(self, **fields: str) -> None:
        self.sock.sendall(frame(tgl_request(**fields)))

    def receive(self) -> dict[str, str]:
        data = b""
        while len(data) < 2 or data[-2] != 0x03:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the gateway closed the connection")
            data += chunk
        assert data[:1] == bytes([ACK]), data
        self.sock.sendall(bytes([ACK]))
        return tgl_fields(data[2:-2])

    def exchange(self, **fields: str) -> dict[str, str]:
        self.send(**fields)
        return self.receive()

    def close(self) -> None:
        self.sock.close()


class TillLoad:
    """`tills` threads, each sending reloads to the cards in turn until stopped or cut off.

    `reconnect`: a till whose connection fails opens a new one (an outage); otherwise it stops
    (the gateway was killed). `timeout` is the till's time-out for an answer; `after_96`, how
    long a till waits before its next request after a `96` (a store refused at once, say
    connection refused, would otherwise make the tills spin)."""

    def __init__(self, port: int, cards: list[str], tills: int = 8, timeout: float = 10.0,
                 reconnect: bool = False, first_id: int = 1000, after_96: float = 0.0):
        self.port = port
        self.cards = cards
        self.timeout = timeout
        self.reconnect = reconnect
        self.after_96 = after_96
        self.exchanges: list[Exchange] = []
        self._ids = itertools.count(first_id)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True)
                         for n in range(tills)]

    def __enter__(self) -> TillLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
            assert not thread.is_alive(), "a till thread did not end"

    def _next(self, n: int) -> Exchange:
        with self._lock:
            request_id = str(next(self._ids))
            exchange = Exchange(request_id, self.cards[(int(request_id) + n) % len(self.cards)])
            self.exchanges.append(exchange)
            return exchange

    def _run(self, n: int) -> None:
        till: TillConnection | None = None
        try:
            while not self._stop.is_set():
                if till is None:
                    try:
                        till = TillConnection(self.port, self.timeout)
                    except OSError:
                        if not self.reconnect:
                            return
                        time.sleep(0.05)
                        continue
                exchange = self._next(n)
                exchange.started = time.monotonic()
                try:
                    exchange.rc = till.exchange(**exchange.fields())["rc"]
                except (OSError, ConnectionError) as e:
                    exchange.why = f"{type(e).__name__}: {e}"
                    till.close()
                    till = None
                    if not self.reconnect:
                        return
                finally:
                    exchange.seconds = time.monotonic() - exchange.started
                if exchange.rc == "96" and self.after_96:
                    self._stop.wait(self.after_96)
        finally:
            if till is not None:
                till.close()

    # -- what the tills saw ----------------------------------------------------------------

    def answered(self, rc: str) -> list[Exchange]:
        with self._lock:
            return [e for e in self.exchanges if e.rc == rc]

    def unanswered(self) -> list[Exchange]:
        with self._lock:
            return [e for e in self.exchanges if e.rc is None and e.why]


class IsoLoad:
    """ISO 8583 tills beside a TillLoad (the simulator's Till: its own codec), each a thread
    sending a reload of AMOUNT until one is approved, then a redemption (the balance stays
    within the card's limits) to one card of its own, a new connection after a lost one. It
    writes down (response code or None, seconds waited) for each request: what the tests hold
    to is that ISO tills too are answered in time, and approved again after a fault."""

    def __init__(self, gateway: GatewayProcess, cards: list[str], timeout: float,
                 after_96: float = 0.0):
        from gateway.config.model import load_config
        from gateway.sim.target import target_from_config

        config = load_config(gateway.config_path)
        self.target = target_from_config(config, "iso")
        self.timeout = timeout
        self.after_96 = after_96
        self.answers: list[tuple[str | None, float]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(card,), daemon=True)
                         for card in cards]

    def __enter__(self) -> IsoLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
            assert not thread.is_alive(), "an ISO till thread did not end"

    def _run(self, card: str) -> None:
        from gateway.sim.till import Till

        till: Till | None = None
        reload = True
        try:
            while not self._stop.is_set():
                if till is None:
                    try:
                        till = Till(self.target, timeout=self.timeout)
                    except OSError:
                        self._stop.wait(0.05)
                        continue
                started = time.monotonic()
                rc: str | None = None
                try:
                    send = till.reload if reload else till.redeem
                    rc = send(card, AMOUNT).reply.rc  # type: ignore[union-attr]
                    reload ^= rc == "00"
                except (OSError, ConnectionError, ValueError):
                    till.close()
                    till = None
                self.answers.append((rc, time.monotonic() - started))
                self._stop.wait(self.after_96 if rc == "96" else ISO_PAUSE)
        finally:
            if till is not None:
                till.close()

    def answered(self, rc: str) -> int:
        return sum(1 for got, _ in list(self.answers) if got == rc)


def retransmit_or_reverse(port: int,
                          refused: list[Exchange]) -> tuple[list[Exchange], list[Exchange]]:
    """What a till does with the requests it was answered 96: half of them sent again (each
    must now be approved: 00), half reversed (each reversal approved). Returns (retransmitted,
    reversed), for the checks of what the ledger holds afterwards."""
    retransmitted, reversed_ = refused[::2], refused[1::2]
    till = TillConnection(port, timeout=10)
    try:
        for exchange in retransmitted:
            assert till.exchange(**exchange.fields())["rc"] == "00", exchange
        for n, exchange in enumerate(reversed_):
            answer = till.exchange(id=str(900000 + n), op="reverse", card=exchange.card,
                                   orig=exchange.id, **TERM)
            assert answer["rc"] == "00", (exchange, answer)
    finally:
        till.close()
    return retransmitted, reversed_


def issue_cards(gateway: GatewayProcess, count: int, activate: str = "50.00") -> list[str]:
    """Issue `count` activated gift cards with the CLI; their numbers."""
    out = gateway.workdir / "cards.csv"
    done = subprocess.run(gateway.command("cards", "issue", "--program", "gift", "--count",
                                          str(count), "--activate", activate, "--out", str(out)),
                          capture_output=True, text=True, timeout=60, cwd=gateway.workdir)
    assert done.returncode == 0, done.stderr
    with out.open() as f:
        return [row["card"] for row in csv.DictReader(f)]


def tillgate(gateway: GatewayProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(gateway.command(*args), capture_output=True, text=True, timeout=60,
                          cwd=gateway.workdir)


def journal_keys(redis_url: str, cards: list[str]) -> dict[str, list[str]]:
    """Request key -> the ops of its journal entries, over the cards' journals (read with a
    client of the test's own, straight from Redis)."""
    found: dict[str, list[str]] = {}
    with redis.Redis.from_url(redis_url) as client:
        for card in cards:
            for _id, entry in client.xrange(f"{{c:{card_id(card)}}}:j"):
                data = msgpack.unpackb(entry[b"e"])
                found.setdefault(data["key"], []).append(data["op"])
    return found


def request_key(request_id: str) -> str:
    return line_request_key(TERM["term"], TERM["merch"], request_id,
                            time.strftime("%Y%m%d", time.gmtime()))

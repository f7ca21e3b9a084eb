"""`Till`: a blocking simulated till with one method per operation of HOST-SPEC 2.3.

    till = Till.from_config(load_config("config/tillgate.toml"))      # ISO 8583, TILL0001
    sale = till.redeem(card, 1250)
    assert sale.reply.rc == "00"
    till.void(sale)

Every method returns an `Exchange` (what was sent, the `Reply`, the round-trip time). Responses
are matched to requests as HOST-SPEC 1 says (ISO: MTI class, field 11, field 41; TGL/1: `id`);
a response that matches nothing in flight (the answer to a request whose response the caller
chose to drop) is kept in `stray`.

Sequence numbers are unique per process and unlikely to collide across processes: STANs and
TGL/1 ids start at a random point (ISO keys also carry the second in field 7; TGL/1 keys last a
day), so runs one after the other do not replay each other's request keys.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from typing import Any

from gateway.config.model import Config
from gateway.sim.links import Channel, open_channel
from gateway.sim.messages import Call, Dialect, Exchange, Reply, dialect_for
from gateway.sim.target import Target, target_from_config
from protocols.isobuild import StanCounter
from protocols.model import Op

DEFAULT_TERMINAL = "TILL0001"
DEFAULT_MERCHANT = "STORE0000000001"

_lock = threading.Lock()
_stans: dict[str, StanCounter] = {}
# TGL/1 keys last a whole day, and a load run uses thousands of ids a second: a clock-based
# start would let the next run reuse this one's ids (94). A random start in the 10**12 space
# makes two runs' ranges overlap with odds of about (ids used) / 10**12.
_ids = itertools.count(secrets.randbelow(10**12))


class UnreadableResponse(ValueError):
    """A response frame that does not decode (the gateway, or something else, sent garbage)."""


def next_seq(protocol: str, terminal: str) -> str:
    """The next STAN (ISO) or id (TGL/1) for `terminal`, shared by every till of this process."""
    with _lock:
        if protocol == "tgl":
            return str(next(_ids) % 10**12)
        counter = _stans.get(terminal)
        if counter is None:
            counter = _stans[terminal] = StanCounter(secrets.randbelow(999_999) + 1)
        return counter.next()


def default_till_ids(config: Config | None) -> tuple[str, str]:
    """(terminal, merchant): TILL0001 of STORE0000000001 when the config has it (HOST-SPEC 6),
    else the config's first terminal."""
    if config is None or DEFAULT_TERMINAL in config.terminals:
        return DEFAULT_TERMINAL, DEFAULT_MERCHANT
    for merchant in config.merchants.values():
        if merchant.terminals:
            return merchant.terminals[0], merchant.id
    return DEFAULT_TERMINAL, DEFAULT_MERCHANT


class Till:
    def __init__(self, target: Target, *, terminal: str | None = None,
                 merchant: str | None = None, config: Config | None = None,
                 timeout: float = 10.0, connect: bool = True):
        default_terminal, default_merchant = default_till_ids(config)
        self.target = target
        self.terminal = terminal or default_terminal
        self.merchant = merchant or default_merchant
        self.config = config
        self.timeout = timeout
        self.dialect: Dialect = dialect_for(target.protocol, bitmap=target.bitmap, config=config)
        self.channel: Channel | None = None
        self.stray: list[Reply] = []
        if connect:
            self.connect()

    @classmethod
    def from_config(cls, config: Config, protocol: str = "iso", *, listener: str | None = None,
                    **options: Any) -> Till:
        """A till for the config's first listener of `protocol` (`iso` or `tgl`)."""
        return cls(target_from_config(config, protocol, listener), config=config, **options)

    # --- connection -------------------------------------------------------------------------

    def connect(self) -> None:
        self.channel = open_channel(self.target, self.timeout)

    def reconnect(self) -> None:
        self.close()
        self.connect()

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None

    def __enter__(self) -> Till:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def link(self) -> Channel:
        if self.channel is None:
            raise ConnectionError("the till is not connected")
        return self.channel

    # --- the request cycle --------------------------------------------------------------------

    def prepare(self, call: Call, seq: str | None = None) -> Exchange:
        """Build a call's request (not sent). `seq` forces a STAN or id (duplicate tests)."""
        seq = seq or next_seq(self.dialect.name, self.terminal)
        request = self.dialect.build(call, terminal=self.terminal, merchant=self.merchant,
                                     seq=seq)
        return Exchange(call=call, seq=seq, request=request)

    def submit(self, exchange: Exchange) -> Exchange:
        """Send a prepared request without waiting for its answer."""
        exchange.seconds = time.perf_counter()
        self.link.send(self.dialect.encode(exchange.request))
        return exchange

    def wait(self, exchange: Exchange, timeout: float | None = None) -> Reply:
        """Read until `exchange`'s response arrives; others go to `stray`."""
        started = exchange.seconds
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            for i, reply in enumerate(self.stray):
                if self.dialect.match(exchange.request, reply.fields):
                    del self.stray[i]
                    return self._done(exchange, reply, started)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no response to {exchange.call.op.value} "
                                   f"{exchange.seq} within {timeout:g} s")
            payload = self.link.receive(left)
            try:
                fields = self.dialect.decode(payload)
            except ValueError as e:  # the codecs' errors are ValueErrors with a reason
                raise UnreadableResponse(f"unreadable response: {e}") from None
            self.stray.append(self.dialect.reply(fields))

    def _done(self, exchange: Exchange, reply: Reply, started: float) -> Reply:
        exchange.reply = reply
        exchange.seconds = time.perf_counter() - started
        return reply

    def request(self, call: Call, *, seq: str | None = None) -> Exchange:
        """Send one call and wait for its reply."""
        exchange = self.submit(self.prepare(call, seq))
        self.wait(exchange)
        return exchange

    def call(self, op: Op | str, **fields: Any) -> Exchange:
        return self.request(Call(op=Op(op), **fields))

    def retransmit(self, exchange: Exchange) -> Exchange:
        """The same request again, byte for byte (a till that missed the answer)."""
        again = Exchange(call=exchange.call, seq=exchange.seq, request=dict(exchange.request))
        self.submit(again)
        self.wait(again)
        return again

    # --- one method per operation (HOST-SPEC 2.3) -----------------------------------------

    def signon(self) -> Exchange:
        return self.call(Op.SIGNON)

    def signoff(self) -> Exchange:
        return self.call(Op.SIGNOFF)

    def echo(self) -> Exchange:
        return self.call(Op.ECHO)

    def activate(self, card: str, amount: int = 0, **options: Any) -> Exchange:
        """Variable-amount, pre-valued (amount = face value) or loyalty: the program decides."""
        return self.call(Op.ACTIVATE, card=card, amount=amount, **options)

    def prevalidate(self, card: str, amount: int | None = None, **options: Any) -> Exchange:
        return self.call(Op.PREVALIDATE, card=card, amount=amount, **options)

    def reload(self, card: str, amount: int, **options: Any) -> Exchange:
        return self.call(Op.RELOAD, card=card, amount=amount, **options)

    def redeem(self, card: str, amount: int, **options: Any) -> Exchange:
        return self.call(Op.REDEEM, card=card, amount=amount, **options)

    def refund(self, card: str, amount: int, **options: Any) -> Exchange:
        return self.call(Op.REFUND, card=card, amount=amount, **options)

    def cashout(self, card: str, **options: Any) -> Exchange:
        return self.call(Op.CASHOUT, card=card, **options)

    def balance(self, card: str, **options: Any) -> Exchange:
        return self.call(Op.BALANCE, card=card, **options)

    def points_balance(self, card: str, **options: Any) -> Exchange:
        return self.call(Op.POINTS_BALANCE, card=card, **options)

    def void(self, original: Exchange, **options: Any) -> Exchange:
        options.setdefault("card", original.call.card)
        options.setdefault("amount", original.call.amount)
        return self.call(Op.VOID, original=original, **options)

    def reverse(self, original: Exchange, **options: Any) -> Exchange:
        options.setdefault("card", original.call.card)
        return self.call(Op.REVERSAL, original=original, **options)

    def transfer(self, card: str, target: str, **options: Any) -> Exchange:
        return self.call(Op.TRANSFER, card=card, target=target, **options)

    def earn(self, card: str, amount: int, **options: Any) -> Exchange:
        return self.call(Op.EARN, card=card, amount=amount, **options)

    def add_points(self, card: str, points: int, **options: Any) -> Exchange:
        return self.call(Op.ADD_POINTS, card=card, amount=points, **options)

    def return_goods(self, card: str, amount: int, **options: Any) -> Exchange:
        return self.call(Op.RETURN, card=card, amount=amount, **options)

    def redeem_points(self, card: str, points: int | None = None, **options: Any) -> Exchange:
        return self.call(Op.REDEEM_POINTS, card=card, amount=points, **options)

"""Durable acknowledgement (`redis.acknowledge_after_replicas`, docs/scaling.md).

Replication is asynchronous: a primary that dies after answering, before its replica copied the
write, takes the write with it, and a till was told "approved" for money the new primary never
saw. So, with N > 0, every pipeline batch that writes gets one `WAIT N timeout` appended to the
same write (one per batch, not per request: WAIT covers every write the connection made before
it), and the batch's replies are held until WAIT answers. At least N replicas: the replies go to
their callers. Fewer (or the connection lost before WAIT answered): every call of the batch
fails with UnacknowledgedWrite, which carries the reply the primary gave, so the processor can
undo what it did (gateway/ledger/compensate.py) while the till is answered 96.

Kept apart from the store so that any pipe can use it: `guard(batch)` is called where a batch is
written, and the pipe hands each reply of a guarded call to its `HeldBatch`. A cluster store
guards each node's pipe on its own (WAIT counts that node's replicas only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

PROBE_CHANNEL = "tillgate:replicated"  # published to by `settled` (no one listens)

# Plain commands that write nothing: a batch of only these needs no WAIT. Anything else (every
# script: the ledger's scripts write their records) counts as a write. A read missing here is
# not harmless: with a replica slow to acknowledge, it is refused as an unconfirmed write and
# the store is reported down (the points sweep's ZRANGEBYSCORE did so on an idle cluster).
# CONFIG changes no data (CONFIG SET is not replicated, so no WAIT could confirm it anyway).
READ_ONLY = frozenset({"GET", "MGET", "HGET", "HMGET", "HGETALL", "HEXISTS", "HLEN", "HKEYS",
                       "HVALS", "EXISTS", "TTL", "PTTL", "TYPE", "XRANGE", "XREVRANGE", "XLEN",
                       "XINFO", "XPENDING", "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGE",
                       "ZREVRANGEBYSCORE", "ZCOUNT", "ZRANK", "ZSCORE", "ZMSCORE", "ZCARD",
                       "SCARD", "SMEMBERS", "SISMEMBER", "LRANGE", "LLEN", "SCAN", "HSCAN",
                       "SSCAN", "ZSCAN", "PING", "INFO", "DBSIZE", "STRLEN", "EXPIRETIME",
                       "TIME", "CONFIG", "MEMORY", "OBJECT"})


class HeldBatch:
    """The replies of one guarded batch, held until its WAIT (`wait`, the last call) answers."""

    __slots__ = ("ack", "wait", "held")

    def __init__(self, ack: ReplicaAck, wait: Any):
        self.ack = ack
        self.wait = wait
        self.held: list[tuple[Any, Any]] = []

    def take(self, call: Any, reply: Any, resolve: Callable[[Any, Any], None],
             refuse: Callable[[list[tuple[Any, Any]], str], None]) -> None:
        """One reply of the batch: held, or (WAIT's reply) the whole batch released or refused."""
        if call is not self.wait:
            self.held.append((call, reply))
            return
        held, self.held = self.held, []
        acknowledged = reply if isinstance(reply, int) else -1
        if acknowledged >= self.ack.replicas:
            for held_call, held_reply in held:
                resolve(held_call, held_reply)
        else:
            self.ack.refused_batches += 1
            refuse(held, f"writes reached {max(acknowledged, 0)} of {self.ack.replicas} "
                         f"replicas within {self.ack.timeout_ms} ms"
                   if acknowledged >= 0 else f"WAIT failed: {reply}")

    def orphaned(self) -> list[tuple[Any, Any]]:
        """The replies held when the connection was lost before WAIT answered."""
        held, self.held = self.held, []
        return held


class Unwaited(HeldBatch):
    """The `held_by` of a call that no WAIT may hold back (`unwaited`): its reply goes to its
    caller as it arrives, and it alone never makes a batch wait."""

    __slots__ = ()

    def __init__(self) -> None:  # no batch, no WAIT
        self.wait = None
        self.held = []

    def take(self, call: Any, reply: Any, resolve: Callable[[Any, Any], None],
             refuse: Callable[[list[tuple[Any, Any]], str], None]) -> None:
        resolve(call, reply)


UNWAITED = Unwaited()


def unwaited(reply: Any) -> Any:
    """Mark a call just queued (`Store.command`/`run`: a call is its own reply, and the batch
    leaves at the end of the loop turn) to be answered without waiting for replicas: the mark
    of a pending compensation (gateway/ledger/pendingundo.py), which must be on the primary
    before a till is told 96, and which replicas that just refused a batch would hold up for
    `acknowledge_timeout_ms` more."""
    reply.held_by = UNWAITED
    return reply


class ReplicaAck:
    """Decides which batches need a WAIT and builds it; counts what it refused."""

    def __init__(self, replicas: int, timeout_ms: int):
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        self.refused_batches = 0
        self.wait_args = ("WAIT", str(replicas), str(timeout_ms))

    @staticmethod
    def writes(batch: list[Any]) -> bool:
        return any((call.script is not None or call.name not in READ_ONLY)
                   and call.held_by is not UNWAITED for call in batch)

    def guard(self, batch: list[Any], make_wait: Callable[[tuple[str, ...]], Any]) -> list[Any]:
        """The batch to write: unchanged if it writes nothing, else with a WAIT call appended
        and every call (WAIT too) pointing at the batch's HeldBatch."""
        if not self.writes(batch):
            return batch
        wait = make_wait(self.wait_args)
        group = HeldBatch(self, wait)
        for call in batch:
            if call.held_by is not UNWAITED:
                call.held_by = group
        wait.held_by = group
        return [*batch, wait]

    async def settled(self, client: aioredis.Redis) -> bool:
        """Whether everything the primary wrote until now is on `replicas` replicas.

        WAIT counts replicas up to the last write of its own connection, so it follows a
        write of its own: a PUBLISH (replicated, like any write, and harmless) on the same
        connection. For readers of what others wrote, such as the back-office feed: an entry
        taken into SQL must be one a failover cannot lose."""
        async with client.pipeline(transaction=False) as pipe:
            pipe.publish(PROBE_CHANNEL, b"")
            pipe.execute_command("WAIT", str(self.replicas), str(self.timeout_ms))
            _, acknowledged = await pipe.execute()
        return int(acknowledged) >= self.replicas

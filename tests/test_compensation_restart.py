"""Compensations that survive the gateway (issue 20, docs/ledger.md "Pending compensations"):
a `tillgate serve` subprocess with acknowledge_after_replicas = 1 on a primary whose replica was
killed, ISO tills over TCP answered 96 for requests the primary applied, the gateway killed with
SIGKILL before it could reverse them, a replica back, the gateway started again: it finds the
pending compensations in Redis and reverses each refused request exactly once."""

from __future__ import annotations

import subprocess

import msgpack
import redis
from replicagateway import start_gateway
from waiting import wait_for

from gateway.embedded_sentinel import LocalSentinelSet
from gateway.ledger import cards
from gateway.sim.messages import Exchange

START = 10_000
PENDING = "{feed}:undo"  # one Redis: the pending compensations' hash (pendingundo.pending_key)


def _journal(client: redis.Redis, card: str) -> list[dict]:
    return [msgpack.unpackb(fields[b"e"])
            for _, fields in client.xrange(cards.journal_key(cards.card_id(card)))]


def _stan(request_key: str) -> str:
    """The STAN in an ISO request key (or its compensation's, `<key>|undo`)."""
    return request_key.removesuffix("|undo").split(":")[3]


def _balance(client: redis.Redis, card: str) -> int:
    return int(client.hget(cards.state_key(cards.card_id(card)), "bal") or 0)


def test_pending_compensations_survive_a_kill_9_of_the_gateway(tmp_path, tillgate_sentinel):
    nodes: LocalSentinelSet = tillgate_sentinel
    # 1,000 ms: the setup's writes are confirmed on a loaded machine too
    gateway = start_gateway(tmp_path / "gw", nodes, 1, timeout_ms=1000)
    primary = redis.Redis(port=nodes.primary.port)
    try:
        issued = [gateway.issue_card("gift").number for _ in range(3)]
        refused: dict[str, list[Exchange]] = {}
        with gateway.till("iso", timeout=15) as till:
            for card in issued:  # the redeem's script is loaded: a NOSCRIPT would run nothing
                assert till.activate(card, START + 100).reply.rc == "00"
                assert till.redeem(card, 100).reply.rc == "00"
            nodes.replica.kill()  # WAIT 1 cannot be satisfied now: every write is refused
            for card in issued:
                for _ in range(2):
                    done = till.redeem(card, 100)
                    assert done.reply is not None and done.reply.rc == "96"
                    refused.setdefault(card, []).append(done)
        # Each refused redeem ran on the primary; what undoes it was written there before the
        # 96 went out, and waits for a replica (a reversal now would be refused in turn).
        marks = sorted(_stan(msgpack.unpackb(v)["key"]) for v in primary.hvals(PENDING))
        assert marks == sorted(e.seq for done in refused.values() for e in done)
        assert all(_balance(primary, card) == START - 200 for card in issued)
        for mark in primary.hvals(PENDING):  # no card number in Redis, masked only
            assert not any(card.encode() in mark for card in issued)

        assert gateway.process.process is not None
        gateway.process.process.kill()  # kill -9: the pending reversals die with it
        gateway.process.process.wait()
        nodes.restart_as_replica(nodes.replica, nodes.primary)
        gateway.process.start(timeout=30)  # same config and data directory
        wait_for(lambda: primary.hlen(PENDING) == 0, 30, "pending compensations answered")
        assert "found pending in Redis" in gateway.process.log

        for card in issued:
            journal = _journal(primary, card)
            reversals = [e for e in journal if e["op"] == "reversal"]
            # each refused redeem reversed exactly once, by its compensation's key
            assert all(e["key"].endswith("|undo") for e in reversals)
            assert sorted(_stan(e["key"]) for e in reversals) == sorted(
                e.seq for e in refused[card])
            assert _balance(primary, card) == START
        with gateway.till("iso", timeout=15) as till:  # a refused redeem sent again: 05
            again = till.retransmit(refused[issued[0]][0])
            assert again.reply is not None and again.reply.rc == "05"
        assert _balance(primary, issued[0]) == START
        audit = subprocess.run(gateway.process.command("audit"), capture_output=True,
                               text=True, timeout=120)
        assert audit.returncode == 0, audit.stdout + audit.stderr
    finally:
        primary.close()
        gateway.stop()

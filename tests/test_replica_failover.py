"""kill -9 of the primary under load (issue 20): a `tillgate serve` subprocess on a
redis+sentinel URL, tills redeeming over real TCP, the replica made to lag, the primary killed,
the Sentinel promoting the replica and the gateway following it.

Making the loss deterministic: the replica is stopped (SIGSTOP) and a large value written to the
primary fills the replication socket's buffers, so every write after it waits in the primary's
own memory, which dies with it. With acknowledge_after_replicas = 0 the tills are approved
meanwhile, and those approvals are lost; with 1 they are refused (96) and undone, and every
approval a till received is on the new primary exactly once.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import urllib.request
from dataclasses import dataclass, field

import msgpack
import redis
from replicagateway import start_gateway
from waiting import wait_for

from gateway.embedded_sentinel import LocalSentinelSet
from gateway.ledger import cards
from gateway.pytest_plugin import RunningGateway

FILLER = 48 * 1024 * 1024  # more than loopback socket buffers hold, less than the output limit
START = 50_000  # each card's activation, minor units (the gift max_balance is 500.00)
TILLS = 3


@dataclass
class Load:
    """Tills redeeming 1 from their card in a loop; what each was answered, by request key."""

    gateway: RunningGateway
    cards: list[str]
    approved: dict[str, list[str]] = field(default_factory=dict)  # card -> stans approved
    answers: dict[str, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, index: int) -> None:
        card = self.cards[index]
        self.approved[card] = []
        with self.gateway.till("iso", timeout=15) as till:
            while not self.stop.is_set():
                try:
                    done = till.redeem(card, 1)
                except (TimeoutError, OSError):
                    till.reconnect()
                    continue
                rc = done.reply.rc if done.reply is not None else "none"
                self.answers[rc] = self.answers.get(rc, 0) + 1
                if rc == "00":
                    self.approved[card].append(done.seq)


def _metric(gateway: RunningGateway, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{gateway.ports['http']}/metrics",
                                timeout=5) as r:
        text = r.read().decode()
    found = re.search(rf"(?m)^{re.escape(name)} (\S+)$", text)
    return float(found.group(1)) if found else 0.0


def _redeems(client: redis.Redis, card: str) -> tuple[list[str], int]:
    """The STANs of the card's redeems in its journal that were not undone, and its balance."""
    entries = [msgpack.unpackb(fields[b"e"])
               for _, fields in client.xrange(cards.journal_key(cards.card_id(card)))]
    undone = {e.get("undo") for e in entries if e.get("undo")}
    ids = [i for i, _ in client.xrange(cards.journal_key(cards.card_id(card)))]
    stans = [e["key"].split(":")[3] for i, e in zip(ids, entries)
             if e["op"] == "redeem" and i.decode() not in undone]
    balance = int(client.hget(cards.state_key(cards.card_id(card)), "bal") or 0)
    return stans, balance


def _kill_primary_under_load(tmp_path, nodes: LocalSentinelSet, replicas: int):
    gateway = start_gateway(tmp_path / "gw", nodes, replicas, timeout_ms=500)
    try:
        issued = [gateway.issue_card("gift").number for _ in range(TILLS)]
        with gateway.till("iso") as till:
            for card in issued:
                assert till.activate(card, START).reply.rc == "00"
        load = Load(gateway, issued)
        threads = [threading.Thread(target=load.run, args=(i,)) for i in range(TILLS)]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: sum(map(len, load.approved.values())) >= 50, 30, "approvals")
            old = nodes.primary_port()
            nodes.replica.signal(signal.SIGSTOP)  # it copies nothing now
            with redis.Redis(port=old) as primary:
                primary.set("filler", b"x" * FILLER)  # fills the replication socket
                seen = sum(load.answers.values())
                wait_for(lambda: sum(load.answers.values()) >= seen + 20, 30, "answers meanwhile")
            victim = nodes.kill_primary()
            nodes.replica.signal(signal.SIGCONT)
            new = nodes.wait_for_failover(old)
            # the gateway follows: approvals again on the new primary
            if replicas:  # WAIT needs a replica: the lost machine is replaced
                nodes.restart_as_replica(victim, new)
            after = sum(map(len, load.approved.values()))
            wait_for(lambda: sum(map(len, load.approved.values())) >= after + 30, 30,
                  "approvals after the failover")
        finally:
            load.stop.set()
            for t in threads:
                t.join(30)
        assert gateway.process.process is not None and gateway.process.process.poll() is None
        wait_for(lambda: _metric(gateway, "tillgate_compensations_pending") == 0, 30,
              "compensations done")
        audit = subprocess.run(gateway.process.command("audit"), capture_output=True,
                               text=True, timeout=120)
        with redis.Redis(port=new.port) as client:
            ledger = {card: _redeems(client, card) for card in issued}
        undone = _metric(gateway, 'tillgate_compensations_total{outcome="undone"}')
        return load, ledger, undone, audit
    finally:
        gateway.stop()


def test_kill_primary_with_acknowledgement_loses_no_approval(tmp_path, tillgate_sentinel):
    load, ledger, undone, audit = _kill_primary_under_load(tmp_path, tillgate_sentinel,
                                                           replicas=1)
    assert audit.returncode == 0, audit.stdout + audit.stderr  # journals, balances, SQL agree
    print(f"\nacknowledge_after_replicas = 1: answers {load.answers}; {undone:g} refused "
          "requests undone by compensating reversals")
    assert load.answers.get("96", 0) > 0  # the stopped replica's batches were refused
    for card, stans in load.approved.items():
        found, balance = ledger[card]
        assert sorted(found) == sorted(stans)  # every approval there, exactly once
        assert balance == START - len(stans)  # and nothing the tills were refused


def test_kill_primary_without_acknowledgement_loses_approvals(tmp_path, tillgate_sentinel):
    load, ledger, _, audit = _kill_primary_under_load(tmp_path, tillgate_sentinel, replicas=0)
    lost = 0
    for card, stans in load.approved.items():
        found, balance = ledger[card]
        assert len(found) == len(set(found))  # never twice
        assert balance == START - len(found)
        lost += len(set(stans) - set(found))
    approvals = sum(map(len, load.approved.values()))
    print(f"\nacknowledge_after_replicas = 0: {lost} of {approvals} acknowledged approvals "
          f"lost in the failover; answers {load.answers}; audit: "
          f"{audit.stdout.strip().splitlines()[-2:] if audit.returncode else 'clean'}")



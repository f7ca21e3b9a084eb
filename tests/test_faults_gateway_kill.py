"""Issue 20, faults: `kill -9` of the gateway under load, then a restart on the same data.

Everything is real: `tillgate serve` is a subprocess with its embedded redis-server (AOF on,
`appendfsync everysec`), eight tills send reloads over TCP, and the gateway is killed by
SIGKILL in the middle of it; in the second case its redis-server is killed by SIGKILL at the
same moment (no AOF flush on the way out: what an OOM kill of the whole group would do). The
gateway is restarted on the same data directory; then

- every approval a till received is in the card journals exactly once (by request key),
- every request left unanswered, retransmitted, gets `00` once: answered from its record when
  the kill came after Redis had it, applied now when it never reached Redis (one request is
  sent while the gateway is stopped, so that case always happens), never applied twice,
- each card's balance is its activation plus one reload per journal entry, and
- `tillgate audit` finds no difference.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from faultload import (
    AMOUNT,
    Exchange,
    TillConnection,
    TillLoad,
    issue_cards,
    journal_keys,
    request_key,
    tillgate,
)
from waiting import wait_for

from gateway.embedded_redis import EmbeddedRedis
from gateway.testing import GatewayProcess

APPROVALS_BEFORE_KILL = 300


def _redis_servers_on(directory: Path) -> list[int]:
    """Live redis-server processes working in `directory` (their cwd is their --dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if ((entry / "comm").read_text().strip() == "redis-server"
                    and os.readlink(entry / "cwd") == str(directory.resolve())):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _wait_gone(directory: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while _redis_servers_on(directory):
        assert time.monotonic() < deadline, "the killed gateway's redis-server lives on"
        time.sleep(0.02)


@pytest.mark.parametrize("kill", ["gateway", "gateway-and-redis"])
def test_kill_9_under_load_loses_no_approval_and_applies_nothing_twice(tmp_path, kill):
    gateway = GatewayProcess.prepare(tmp_path).start()
    redis_dir = tmp_path / "var" / "redis"
    redis_url = EmbeddedRedis(redis_dir).url
    try:
        cards = issue_cards(gateway, 4)
        with TillLoad(gateway.ports["line"], cards, tills=8) as load:
            wait_for(lambda: len(load.answered("00")) >= APPROVALS_BEFORE_KILL, 60,
                          f"{APPROVALS_BEFORE_KILL} approvals")
            # Hold Redis a moment, so that the requests in flight wait in its socket when the
            # kill comes (whether Redis applies them on its way out or not, a retransmission
            # must find out); freeze the gateway, send it one request it will never read, and
            # kill it.
            redis_pid = int((redis_dir / "redis.pid").read_text())
            os.kill(redis_pid, signal.SIGSTOP)
            time.sleep(0.3)  # not a wait for a result: the length of the hold
            gateway.process.send_signal(signal.SIGSTOP)
            never_read = Exchange("999999", cards[0])
            late = TillConnection(gateway.ports["line"], timeout=10)
            late.send(**never_read.fields())
            gateway.process.send_signal(signal.SIGKILL)
            os.kill(redis_pid, signal.SIGKILL if kill == "gateway-and-redis" else signal.SIGCONT)
            gateway.process.wait(10)
            late.close()
            wait_for(lambda: all(not t.is_alive() for t in load._threads), 15,
                          "every till cut off")
        approved = load.answered("00")
        unanswered = load.unanswered()
        assert {e.rc for e in load.exchanges} <= {"00", None}, "only 00 before the kill"
        assert len(approved) >= APPROVALS_BEFORE_KILL and unanswered, (len(approved), unanswered)

        # The child went with its gateway (SIGTERM from the kernel, or our SIGKILL).
        _wait_gone(redis_dir)
        gateway.start()
        journal = journal_keys(redis_url, cards)
        for exchange in approved:
            assert journal.get(request_key(exchange.id)) == ["reload"], exchange
        assert request_key(never_read.id) not in journal
        reached = [e for e in unanswered if request_key(e.id) in journal]

        # The tills retransmit what they got no answer to; and one approval, to be sure.
        till = TillConnection(gateway.ports["line"], timeout=10)
        try:
            for exchange in [*unanswered, never_read, approved[0]]:
                answer = till.exchange(**exchange.fields())
                assert answer["rc"] == "00", (exchange, answer)
        finally:
            till.close()

        journal = journal_keys(redis_url, cards)
        sent = [*approved, *unanswered, never_read]
        for exchange in sent:
            assert journal.get(request_key(exchange.id)) == ["reload"], exchange
        reloads = [key for key, ops in journal.items() if ops == ["reload"]]
        assert len(reloads) == len(sent), "a reload nobody sent, or one applied twice"
        for card in cards:
            shown = tillgate(gateway, "cards", "show", card, "--json")
            assert shown.returncode == 0, shown.stderr
            mine = sum(1 for e in sent if e.card == card)
            assert json.loads(shown.stdout)["balance"] == 5000 + AMOUNT * mine, shown.stdout
        audit = tillgate(gateway, "audit")
        assert audit.returncode == 0 and "no differences" in audit.stdout, audit.stdout
        print(f"kill -9 of the {kill}: {len(approved)} approvals before it, all kept; "
              f"{len(unanswered)} unanswered ({len(reached)} had reached Redis) + 1 never read, "
              f"each applied once on retransmission")
    finally:
        assert gateway.stop() == 0, gateway.log


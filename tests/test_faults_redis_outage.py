"""Issue 20, faults: Redis unreachable for 10 s while tills keep sending.

Everything is real: `tillgate serve` is a subprocess with its embedded redis-server, which is
held with SIGSTOP for ten seconds (the process is there, its socket accepts, nothing answers:
what a hung or partitioned server looks like, and the hardest case for a time-out) while eight
tills send reloads over TCP, each with a time-out of its own. The test holds the gateway to:

- every request answered within the till's time-out (`96` during the outage, never a hang:
  the longest wait is measured and must stay under it);
- `/healthz` 503 during the outage and 200 after it; the alert `redis_unreachable` raised once
  Redis answers again (the alert queue lives in Redis, so it cannot be queued before);
- a `96` changed nothing, even for a request that was waiting in Redis's socket when the
  gateway gave up on it (Redis runs it when it resumes: the script refuses, its deadline past);
- nothing applied twice: each request answered `96` is retransmitted or reversed after the
  outage, the journals hold each approved request once and each reversed one not at all, and
  `tillgate audit` finds no difference.
"""

from __future__ import annotations

import json
import os
import signal
import time

from faultload import (
    AMOUNT,
    TillLoad,
    issue_cards,
    journal_keys,
    request_key,
    retransmit_or_reverse,
    tillgate,
)
from waiting import wait_for

from gateway.embedded_redis import EmbeddedRedis
from gateway.testing import GatewayProcess

REDIS_TIMEOUT = 2  # [redis] timeout: how long the gateway waits for Redis
TILL_TIMEOUT = 5.0  # the tills' own: an answer must come before it
OUTAGE = 10.0


def test_redis_held_10_s_under_load_gets_96_in_time_and_nothing_twice(tmp_path):
    gateway = GatewayProcess.prepare(tmp_path)
    text = gateway.config_path.read_text()
    gateway.config_path.write_text(text.replace("pool_size = 64\n", f"pool_size = 64\n"
                                                f"timeout = {REDIS_TIMEOUT}\n", 1))
    gateway.start()
    redis_dir = tmp_path / "var" / "redis"
    redis_url = EmbeddedRedis(redis_dir).url
    try:
        cards = issue_cards(gateway, 4)
        with TillLoad(gateway.ports["line"], cards, tills=8, timeout=TILL_TIMEOUT,
                      reconnect=True) as load:
            wait_for(lambda: len(load.answered("00")) >= 100, 60, "100 approvals")
            redis_pid = int((redis_dir / "redis.pid").read_text())
            os.kill(redis_pid, signal.SIGSTOP)
            held = time.monotonic()
            try:
                wait_for(lambda: gateway.http_get("/healthz")[0] == 503, OUTAGE,
                          "/healthz 503 while Redis does not answer")
                down_after = time.monotonic() - held
                wait_for(lambda: len(load.answered("96")) >= 8, OUTAGE, "96s")
                time.sleep(max(0.0, OUTAGE - (time.monotonic() - held)))  # the outage's length
                assert gateway.http_get("/healthz")[0] == 503
            finally:
                os.kill(redis_pid, signal.SIGCONT)
            resumed = time.monotonic()
            approved_before = len(load.answered("00"))
            wait_for(lambda: len(load.answered("00")) >= approved_before + 50, 30,
                          "approvals again after the outage")
            wait_for(lambda: gateway.http_get("/healthz")[0] == 200, 10, "/healthz 200")
            up_after = time.monotonic() - resumed
        assert not load.unanswered(), [e for e in load.unanswered()][:5]
        assert {e.rc for e in load.exchanges} == {"00", "96"}
        longest = max(e.seconds for e in load.exchanges)
        assert longest < TILL_TIMEOUT, longest

        refused = load.answered("96")
        approved = load.answered("00")
        journal = journal_keys(redis_url, cards)
        # A call Redis runs after the gateway stopped waiting for it changes nothing: what was
        # in Redis's socket when it resumed is refused there (its deadline passed), so a 96
        # means what HOST-SPEC says: nothing was changed.
        ran_anyway = [e for e in refused if request_key(e.id) in journal]
        assert not ran_anyway, f"{len(ran_anyway)} requests answered 96 were applied"
        # Half of the refused requests retransmitted, half reversed (what a till does with 96).
        retransmitted, reversed_ = retransmit_or_reverse(gateway.ports["line"], refused)

        journal = journal_keys(redis_url, cards)
        for exchange in [*approved, *retransmitted]:
            assert journal.get(request_key(exchange.id)) == ["reload"], exchange
        for exchange in reversed_:  # never applied: the reversal left a tombstone
            assert request_key(exchange.id) not in journal, exchange
        for card in cards:
            shown = tillgate(gateway, "cards", "show", card, "--json")
            assert shown.returncode == 0, shown.stderr
            kept = sum(1 for e in [*approved, *retransmitted] if e.card == card)
            assert json.loads(shown.stdout)["balance"] == 5000 + AMOUNT * kept
        audit = tillgate(gateway, "audit")
        assert audit.returncode == 0 and "no differences" in audit.stdout, audit.stdout

        # The operator is told: an alert once Redis answers again, with the outage's length.
        wait_for(lambda: "redis_unreachable: " in gateway.log, 15,
                  "the redis_unreachable alert in the log")
        line = next(x for x in gateway.log.splitlines() if "redis_unreachable: " in x)
        assert "requests answered 96" in line, line
        print(f"/healthz 503 {down_after * 1000:.0f} ms into the outage, 200 "
              f"{up_after * 1000:.0f} ms after it; {len(refused)} requests got 96 "
              f"(none applied when Redis resumed), longest answer "
              f"{longest * 1000:.0f} ms (till time-out {TILL_TIMEOUT:.0f} s, redis timeout "
              f"{REDIS_TIMEOUT} s); {len(approved)} approvals")
    finally:
        assert gateway.stop() == 0, gateway.log

"""Durable acknowledgement beyond the till's one-card requests (issue 20, docs/scaling.md):
a balance transfer's steps carry a deadline (LATE, nothing changed), a transfer whose first
step the replicas did not confirm gives the source its value back, and an operator's write
the replicas did not confirm says so. Real processes: a primary, a replica (stopped with
SIGSTOP) and a Sentinel per test; a real redis-server for the deadline; the CLI as a
subprocess."""

from __future__ import annotations

import signal
import subprocess

import pytest
import pytest_twisted
from portalclient import Clock, make_operator
from test_ledger_support import Ledger, ledger_config
from test_portal_cards import action, look_up, new_card, state
from test_portal_security import logged_in

from gateway.embedded_sentinel import LocalSentinelSet
from gateway.ledger import cards
from gateway.ledger.store import Store, UnacknowledgedWrite
from gateway.reactor import deferred_from_coro
from gateway.testing import GatewayProcess
from protocols.model import RC, Op

# Long enough that a replica in sync confirms the setup's writes on a loaded machine (300 ms did
# not, once: the portal test's login was refused); a stopped replica costs this once per test.
ACK = {"acknowledge_after_replicas": 1, "acknowledge_timeout_ms": 1500}


@pytest_twisted.ensureDeferred
async def test_a_transfer_step_run_after_its_deadline_changes_nothing(tillgate_redis_url):
    ledger = Ledger(ledger_config(), await deferred_from_coro(Store.connect(tillgate_redis_url)))
    try:
        source = await ledger.issue("gift", activate=1000)
        target = await ledger.issue("gift", activate=500)
        transfer = ledger.request(Op.TRANSFER, source, 0, target_card=target)
        # Redis's clock read as far behind: every deadline made now has passed when Redis
        # runs the step, as for a server that stalled and then ran what waited in its socket
        ledger.store.clock_offset = -(ledger.store.timeout + 60)
        assert (await ledger.processor.submit(transfer)).code == RC.SYSTEM_ERROR
        before = await ledger.show(source)
        assert (before.balance, before.status) == (1000, "active")  # nothing moved
        assert (await ledger.show(target)).balance == 500
        ledger.store.clock_offset = 0.0
        # the till's retransmission finds nothing done and does it, once
        result = await ledger.processor.submit(transfer)
        assert (result.code, result.balance) == (RC.APPROVED, 1500)
        assert (await ledger.show(source)).balance == 0
    finally:
        await deferred_from_coro(ledger.store.close())


@pytest_twisted.ensureDeferred
async def test_a_transfer_the_replicas_did_not_confirm_gives_the_source_back(tillgate_sentinel):
    nodes: LocalSentinelSet = tillgate_sentinel
    ledger = Ledger(ledger_config(), await deferred_from_coro(Store.connect(nodes.url, **ACK)))
    try:
        # the transfer scripts loaded (a NOSCRIPT answer would run nothing)
        first, second = [await ledger.issue("gift", activate=100) for _ in range(2)]
        assert (await ledger.send(Op.TRANSFER, first, 0, target_card=second)).code == "00"
        source = await ledger.issue("gift", activate=1000)
        target = await ledger.issue("gift", activate=500)
        transfer = ledger.request(Op.TRANSFER, source, 0, target_card=target)
        run = ledger.store.run

        def replica_stops_before_transfer_out(name, keys, argv):
            # the claim (a call of its own for a transfer) was acknowledged; the replica
            # stops just before the first step, so that step alone is refused
            if name == "transfer_out":
                nodes.replica.signal(signal.SIGSTOP)
            return run(name, keys, argv)

        ledger.store.run = replica_stops_before_transfer_out  # type: ignore[method-assign]
        try:
            assert (await ledger.processor.submit(transfer)).code == RC.SYSTEM_ERROR
            ledger.store.run = run  # type: ignore[method-assign]
            # the source was emptied on the primary; the target was never credited, and the
            # compensation waits for a store whose writes reach the replica
            assert (await ledger.show(source)).balance == 0
            assert (await ledger.show(target)).balance == 500
            assert ledger.processor.compensator.pending
        finally:
            nodes.replica.signal(signal.SIGCONT)
        compensator = ledger.processor.compensator
        assert await deferred_from_coro(compensator.drain(20))
        assert compensator.done == {transfer.key + "|undo": RC.APPROVED}
        restored = await ledger.show(source)
        assert (restored.balance, restored.status) == (1000, "active")
        assert (await ledger.show(target)).balance == 500
        # the till retransmits the transfer it was refused: 05, nothing moves
        assert (await ledger.processor.submit(transfer)).code == RC.DO_NOT_HONOUR
        assert (await ledger.show(source)).balance == 1000
        assert (await ledger.show(target)).balance == 500
    finally:
        await deferred_from_coro(ledger.store.close())


@pytest_twisted.ensureDeferred
async def test_an_operator_write_the_replicas_did_not_confirm_says_so(tillgate_sentinel,
                                                                       tmp_path):
    nodes: LocalSentinelSet = tillgate_sentinel
    ledger = Ledger(ledger_config(), await deferred_from_coro(Store.connect(nodes.url, **ACK)))
    process = GatewayProcess.prepare(tmp_path, redis_url=nodes.url)
    text = process.config_path.read_text().replace(
        "[redis]\n", "[redis]\nacknowledge_after_replicas = 1\nacknowledge_timeout_ms = 300\n", 1)
    process.config_path.write_text(text)
    try:
        card = await ledger.issue("gift", activate=1000)
        nodes.replica.signal(signal.SIGSTOP)
        try:
            with pytest.raises(UnacknowledgedWrite, match="the write is not yet on replicas"):
                await ledger.call(cards.set_card_status(ledger.store, card, "suspended"))
            done = subprocess.run(process.command("cards", "reinstate", card),
                                  capture_output=True, text=True, timeout=60)
        finally:
            nodes.replica.signal(signal.SIGCONT)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "the write is not yet on replicas" in done.stderr  # one line, no traceback
        assert "Traceback" not in done.stderr
        assert card not in done.stderr
    finally:
        await deferred_from_coro(ledger.store.close())


@pytest_twisted.ensureDeferred
async def test_a_portal_change_the_replicas_did_not_confirm_says_so(tillgate_inprocess_factory,
                                                                    tillgate_sentinel):
    nodes: LocalSentinelSet = tillgate_sentinel
    gw = await tillgate_inprocess_factory(redis_url=nodes.url, redis_settings=ACK)
    portal, clock = gw.gateway.portal, Clock()
    portal.clock = clock
    card = await new_card(gw, "gift", 2500)
    _op, secret = await make_operator(portal, "amy@example.com")
    client = await logged_in(gw.gateway.http.port.getHost().port, "amy@example.com", secret,
                             clock)
    page = await look_up(client, card)
    nodes.replica.signal(signal.SIGSTOP)
    try:
        done = await action(client, page, "suspend")
    finally:
        nodes.replica.signal(signal.SIGCONT)
    assert done.status == 503
    assert "the store&#39;s replicas have not confirmed it" in done.body  # not "try again"
    assert (await state(gw, card))["status"] == "suspended"  # made on the primary, as it says

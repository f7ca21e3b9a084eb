"""The Processor's transport-independent checks, its batching, its answer when Redis is gone."""

from __future__ import annotations

import pytest
import pytest_twisted
from test_ledger_support import ledger, random_number  # noqa: F401  (fixture)

from gateway.embedded_redis import EmbeddedRedis, free_port
from gateway.ledger.processor import Processor
from gateway.ledger.store import CLAIM_FIRST, NO_PRELUDE, Store, StoreError, load_scripts
from gateway.reactor import deferred_from_coro
from protocols.model import RC, Op


@pytest_twisted.ensureDeferred
async def test_network_ops_and_prechecks_in_order(ledger):  # noqa: F811
    card = await ledger.issue("gift", activate=100)
    for op in (Op.SIGNON, Op.SIGNOFF, Op.ECHO):
        assert (await ledger.send(op, None, terminal="NOPE")).code == "00"
    assert (await ledger.send(Op.BALANCE, card, terminal="NOPE")).code == "58"
    assert (await ledger.send(Op.BALANCE, card, merchant="BHNRESELLER0001")).code == "58"
    assert (await ledger.send(Op.BALANCE, "1234567890123")).code == RC.UNKNOWN_CARD
    assert (await ledger.send(Op.BALANCE, None)).code == RC.FORMAT_ERROR
    club = random_number(ledger.config, "club")
    assert (await ledger.send(Op.BALANCE, club)).code == "58"  # not a member merchant
    r = await ledger.send(Op.BALANCE, club, terminal="BHN00001", merchant="BHNRESELLER0001")
    assert r.code == RC.UNKNOWN_CARD  # a member: on to the store, where it was never issued
    assert (await ledger.send(Op.BALANCE, card, currency="978")).code == RC.INVALID_AMOUNT
    assert (await ledger.send(Op.BALANCE, card, currency="840")).code == "00"
    assert (await ledger.send(Op.VOID, card)).code == RC.FORMAT_ERROR
    assert (await ledger.send(Op.REVERSAL, card)).code == RC.FORMAT_ERROR
    assert (await ledger.send(Op.POINTS_BALANCE, card)).code == RC.INVALID_TRANSACTION


@pytest_twisted.ensureDeferred
async def test_one_pipeline_and_one_call_per_request_for_a_batch(ledger):  # noqa: F811
    card_list = [await ledger.issue("gift", activate=1000) for _ in range(20)]
    await ledger.send(Op.REDEEM, card_list[0], 10)  # the server has the script loaded now
    store = ledger.store
    before = (store.pipelines_sent, store.calls_sent)
    deferreds = [ledger.processor.submit(ledger.request(Op.REDEEM, c, 10)) for c in card_list]
    assert ledger.processor.in_flight == 20
    results = [await d for d in deferreds]
    assert {r.code for r in results} == {"00"} and ledger.processor.in_flight == 0
    # each request's claim and card script are one call (claim+redeem); all 20 in one pipeline
    assert (store.pipelines_sent - before[0], store.calls_sent - before[1]) == (1, 20)


def test_every_card_script_has_a_claim_first_twin():
    scripts = load_scripts()
    card_scripts = {name for name, script in scripts.items() if not name.startswith(CLAIM_FIRST)
                    and not script.source.startswith(NO_PRELUDE)}
    assert {"redeem", "activate", "void"} <= card_scripts
    assert not {"claim", "release", "velocity_after"} & card_scripts
    twins = {name for name in scripts if name.startswith(CLAIM_FIRST)}
    assert twins == {CLAIM_FIRST + name for name in card_scripts}
    assert not any(name.startswith("_") for name in scripts)  # parts are not scripts
    claim_first = scripts[CLAIM_FIRST + "redeem"].source
    assert claim_first.index("local function claim(") < claim_first.index(scripts["redeem"].source)
    assert "--! card script" not in claim_first
    assert "--! include" not in scripts["claim"].source
    assert "local function claim(" in scripts["claim"].source


@pytest_twisted.ensureDeferred
async def test_scripts_reloaded_after_script_flush(ledger, redis_client):  # noqa: F811
    from gateway.metrics.families import REGISTRY

    card = await ledger.issue("gift", activate=1000)
    redis_client.script_flush()
    before = REGISTRY.get_sample_value("tillgate_redis_errors_total", {"kind": "noscript"})
    assert (await ledger.send(Op.REDEEM, card, 10)).balance == 990
    after = REGISTRY.get_sample_value("tillgate_redis_errors_total", {"kind": "noscript"})
    assert after == before + 1  # counted once, and the call was resent, not lost


@pytest_twisted.ensureDeferred
async def test_store_gone_answers_96_and_never_errbacks(tmp_path):
    server = EmbeddedRedis(tmp_path / "r", port=free_port(), appendonly=False)
    server.start()
    try:
        from test_ledger_support import Ledger, ledger_config
        store = await deferred_from_coro(Store.connect(server.url, timeout=1.0))
        led = Ledger(ledger_config(), store)
        card = await led.issue("gift", activate=500)
    finally:
        server.stop()
    processor = Processor(led.config, store)
    result = await processor.submit(led.request(Op.REDEEM, card, 10))
    assert result.code == RC.SYSTEM_ERROR and processor.in_flight == 0
    assert not await deferred_from_coro(store.ping())
    await deferred_from_coro(store.close())


@pytest_twisted.ensureDeferred
async def test_connect_to_nothing_is_one_clear_error():
    with pytest.raises(StoreError, match=r"^redis at redis://127\.0\.0\.1:\d+/0 does not answer"):
        await deferred_from_coro(Store.connect(f"redis://127.0.0.1:{free_port()}/0",
                                               timeout=0.5))
    with pytest.raises(StoreError, match="bad redis url"):
        await deferred_from_coro(Store.connect("http://x"))



@pytest_twisted.ensureDeferred
async def test_uniform_decline_answers_inactive_like_unknown(ledger):  # noqa: F811
    from dataclasses import replace
    card = await ledger.issue("gift")
    assert (await ledger.send(Op.REDEEM, card, 1)).code == RC.NOT_ACTIVE
    programs = {**ledger.config.programs,
                "gift": replace(ledger.config.programs["gift"], uniform_decline=True)}
    hiding = Processor(replace(ledger.config, programs=programs), ledger.store)
    assert (await hiding.submit(ledger.request(Op.REDEEM, card, 1))).code == RC.UNKNOWN_CARD

"""The load generator and its report: real runs against the plugin's gateway (short ones; speed
is measured in bench/bench_loadgen.py, never here)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from gateway.embedded_redis import EmbeddedRedis
from gateway.sim.load import LoadRun, LoadSettings, parse_mix
from gateway.sim.loadsetup import load_tills, prepare_cards
from gateway.sim.loadstats import LoadStats, percentile, render_text
from gateway.sim.pacing import CardLimit, CardPacer, card_limits
from gateway.sim.target import target_from_config
from protocols.model import Op


def test_mix_parsing():
    assert parse_mix("redeem=5,balance") == [(Op.REDEEM, 5), (Op.BALANCE, 1)]
    for bad, reason in (("sell=1", "'sell' is not one of"), ("redeem=0", "positive"),
                        ("redeem=x", "positive")):
        with pytest.raises(ValueError, match=reason):
            parse_mix(bad)


def test_percentiles_are_nearest_rank():
    values = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    assert percentile(values, 50) == 0.050 and percentile(values, 99) == 0.099
    assert percentile(values, 100) == 0.100 and percentile([0.007], 95) == 0.007
    stats = LoadStats(sent=3, elapsed=2.0)
    for rc, ms in (("00", 1), ("00", 3), ("51", 2)):
        stats.answered("redeem", rc, ms / 1000)
    stats.errors["timeout"] += 1
    summary = stats.summary({"connections": 1})
    assert summary["throughput_per_s"] == 1.5
    assert summary["response_codes"] == {"00": 2, "51": 1}
    assert summary["latency_ms"]["p50"] == 2.0 and summary["latency_ms"]["max"] == 3.0
    text = render_text(summary)
    assert "timeout: 1" in text and "00: 2, 51: 1" in text


@pytest.mark.parametrize("protocol, mix", [("iso", "redeem=2,balance,reload,echo"),
                                           ("tgl", "redeem,balance,earn,pbalance")])
def test_closed_loop_run_against_the_gateway(tillgate_gateway, protocol, mix):
    config = tillgate_gateway.config
    target = target_from_config(config, protocol)
    settings = LoadSettings(connections=2, depth=4, duration=1.0, mix=parse_mix(mix))
    gift = prepare_cards(config, target, 8)
    loyalty = prepare_cards(config, target, 8, loyalty=True) if "earn" in mix else []
    limits = card_limits(config.rules, (op for op, _ in settings.mix))
    stats = LoadRun(target, settings, load_tills(config), gift, loyalty,
                    limits=limits).run_blocking()
    assert stats.completed > 20 and stats.completed == stats.sent
    assert not stats.errors and set(stats.codes) == {"00"}  # no 65 of the default rules
    assert set(stats.by_op) == {op.value for op, _ in settings.mix}


def test_open_loop_keeps_its_rate(tillgate_gateway):
    config = tillgate_gateway.config
    target = target_from_config(config, "iso")
    settings = LoadSettings(connections=2, rate=200, duration=1.0, mix=parse_mix("balance"))
    cards = prepare_cards(config, target, 4)
    limits = card_limits(config.rules, [Op.BALANCE])
    stats = LoadRun(target, settings, load_tills(config), cards, limits=limits).run_blocking()
    assert 190 <= stats.sent <= 201 and stats.completed == stats.sent
    # 4 cards carry 4 x 30 inquiries a minute (HOST-SPEC 6); the rest went as echoes, not 65s
    assert set(stats.codes) == {"00"} and len(stats.by_op["balance"]) == 4 * 30
    assert stats.held_back == {"balance": stats.sent - 120}
    assert "held back    balance: " in render_text(stats.summary())


def test_the_cli_load_run_writes_text_and_json(tillgate_gateway, tmp_path):
    out = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "sim", "load", "--duration", "1", "--terminals",
         "2", "--cards", "10", "--json", str(out), "--config", str(tillgate_gateway.config_path)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "throughput" in result.stdout and "latency ms   p50" in result.stdout
    report = json.loads(out.read_text())
    assert report["completed"] > 0 and report["errors"] == {}
    assert set(report["latency_ms"]) >= {"p50", "p95", "p99", "max"}
    assert report["settings"]["connections"] == 2
    bad = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "sim", "load", "--mix", "sell",
         "--config", str(tillgate_gateway.config_path)], capture_output=True, text=True)
    assert bad.returncode == 2 and "--mix" in bad.stderr


def test_progress_bar_draws_in_place():
    import io
    from types import SimpleNamespace

    from gateway.sim.load import progress_bar

    out = io.StringIO()
    show = progress_bar(out)
    stats = LoadStats()
    for _ in range(50):
        stats.answered("redeem", "00", 0.001)
    stats.answered("redeem", "51", 0.001)
    stats.errors["timeout"] = 2
    run = SimpleNamespace(settings=LoadSettings(duration=10), stats=stats)
    show(run, 5.0)
    show(run, 10.0)
    text = out.getvalue()
    assert text.startswith("\r[###############...............]   5.0/10 s")
    assert "answered 51  declined 1  errors 2" in text and text.endswith("\n")


def test_a_load_run_from_another_folder_says_which_store_and_gateway(tillgate_gateway, tmp_path):
    """The gateway's embedded store is under its own working directory; a run started elsewhere
    with a relative data_dir would issue its cards into a store of its own, which the gateway
    never reads (issue 14: '200 of 200 card activations failed (first answer: 14)')."""
    text = tillgate_gateway.config_path.read_text()
    relative = re.sub(r'(?m)^data_dir = ".*?"', 'data_dir = "var"', text)
    config = tmp_path / "relative.toml"
    config.write_text(relative)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "sim", "load", "--duration", "1", "--cards", "5",
         "--config", str(config)], cwd=elsewhere, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    iso_port = tillgate_gateway.ports["iso"]
    store = EmbeddedRedis(elsewhere / "var" / "redis")  # named, never started
    assert result.stderr == (
        f"tillgate: preparing cards: no gateway is running on the embedded Redis of "
        f"{store.directory} ({store.url}), "
        f"the store this config names, so the gateway at iso over tcp 127.0.0.1:{iso_port} "
        f"(len2b) keeps its cards elsewhere: start `sim load` in the gateway's working directory "
        f"(data_dir is relative to it), or give both the same redis.url\n")
    assert not (elsewhere / "var").exists()  # no store of its own was started, nothing issued


def test_card_limits_are_the_strictest_refusing_count_rules_of_card_scope():
    from gateway.config.rules import Rule

    rules = [Rule("slow", "card", "balance", 60, max_count=30, action="decline"),
             Rule("fast", "card", "balance", 10, max_count=3, action="lock_card"),  # 0.3/s
             Rule("watch", "card", "balance", 1, max_count=1, action="alert"),  # refuses nothing
             Rule("till", "terminal", "balance", 1, max_count=1, action="decline"),
             Rule("sum", "card", "redeem", 60, max_amount=500, action="decline"),
             Rule("sales", "card", "redeem", 60, max_count=5, action="decline")]
    assert card_limits(rules, [Op.BALANCE, Op.REDEEM, Op.RELOAD]) == {
        Op.BALANCE: CardLimit("fast", 3, 10), Op.REDEEM: CardLimit("sales", 5, 60)}


def test_the_pacer_keeps_every_card_under_its_limit_in_any_window():
    pacer = CardPacer(CardLimit("r", 3, 10), ["a", "b"], margin=1.0)
    sent: dict[str, list[float]] = {"a": [], "b": []}
    held = 0
    for step in range(400):  # 40 s at 10 requests a second
        now = step / 10
        card = pacer.card(now)
        if card is None:
            held += 1
        else:
            sent[card].append(now)
    for times in sent.values():
        # at most 3 in any 11 s (window + margin), so in any of the gateway's 10 s windows
        assert all(sum(t <= u < t + 11 for u in times) <= 3 for t in times)
        assert len(times) == 12  # 3 at 0, 11, 22 and 33 s: none lost to the pacer
    assert held == 400 - 24

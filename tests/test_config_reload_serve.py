"""Config reload of a real `tillgate serve` subprocess: `tillgate config reload` and SIGHUP, with
real tills on TCP connections that stay open across the reloads, and a load run during them.
The reloader's logic itself is tests/test_config_reload.py."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

from gateway.config.model import load_config
from gateway.sim.load import LoadRun, LoadSettings, parse_mix
from gateway.sim.loadsetup import load_tills, prepare_cards
from gateway.sim.pacing import card_limits
from gateway.sim.target import target_from_config
from gateway.sim.till import Till
from gateway.testing import GatewayProcess

OPS, OLD = "ops-token-0123456789abcdef", "old-token-0123456789abcdef"
GIFT_LIMITS = "max_balance = 100000        # 1,000.00\n"


def _cli(gateway: GatewayProcess, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(gateway.command(*args), cwd=gateway.workdir, capture_output=True,
                          text=True, timeout=60)


def _edit(gateway: GatewayProcess, old: str, new: str) -> None:
    text = gateway.config_path.read_text()
    assert old in text, old
    gateway.config_path.write_text(text.replace(old, new, 1))


def _get(gateway: GatewayProcess, path: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{gateway.ports['http']}{path}",
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _metric(gateway: GatewayProcess, sample: str, token: str | None = None) -> float:
    """The value of one sample line of /metrics (`name{labels}`), 0 when absent."""
    text = _get(gateway, "/metrics", token)[1].decode()
    found = re.search(rf"(?m)^{re.escape(sample)} (\S+)$", text)
    return float(found.group(1)) if found else 0.0


def _health(gateway: GatewayProcess, token: str | None = None) -> dict:
    return json.loads(_get(gateway, "/healthz", token)[1])


def _answers(gateway: GatewayProcess, token: str) -> bool:
    try:
        return _get(gateway, "/healthz", token)[0] == 200
    except OSError:  # not listening yet
        return False


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def _tgl_till(config, terminal: str) -> Till:
    return Till(target_from_config(config, "tgl"), terminal=terminal,
                merchant="STORE0000000001", config=config)


def test_a_reload_adds_a_terminal_changes_a_limit_and_a_rule_and_removes_a_token(tmp_path):
    (tmp_path / "ops.token").write_text(OPS)
    (tmp_path / "old.token").write_text(OLD)
    old_token = f"""
[[security.tokens]]
id = "old"
scopes = ["terminals:read"]
token_file = "{tmp_path / 'old.token'}"
"""
    gateway = GatewayProcess.prepare(tmp_path / "gw", extra=f"""
[[security.tokens]]
id = "ops"
scopes = ["health", "metrics", "terminals:read"]
token_file = "{tmp_path / 'ops.token'}"
""" + old_token).start(wait=False)
    try:
        _wait_for(lambda: _answers(gateway, OPS), 20, "healthy")
        config = load_config(gateway.config_path)
        (card,) = prepare_cards(config, target_from_config(config, "iso"), 1)  # 900.00 on it
        accepted = _metric(gateway, 'tillgate_accepted_connections_total{listener="iso"}', OPS)
        with Till.from_config(config, "iso") as iso, _tgl_till(config, "NEWT") as newt:
            assert newt.balance(card).reply.rc == "58"  # not a terminal yet
            assert iso.redeem(card, 100).reply.rc == "00"
            assert _get(gateway, "/v1/terminals/TILL0001", OLD)[0] == 200

            _edit(gateway, '"TILL0001", "TILL0002"', '"TILL0001", "TILL0002", "NEWT"')
            _edit(gateway, GIFT_LIMITS, GIFT_LIMITS + "max_transaction = 50000\n")
            _edit(gateway, "event = \"balance\"\nwindow = 60\nmax_count = 30",
                  "event = \"balance\"\nwindow = 60\nmax_count = 3")
            _edit(gateway, old_token, "")
            result = _cli(gateway, "config", "reload")
            assert result.returncode == 0, result.stderr
            for change in ("programs: changed gift", "terminals: added NEWT",
                           "rules: changed card-balance-inquiries", "tokens: removed old"):
                assert change in result.stdout, result.stdout

            # the same connections, judged by the new config from their next request on
            assert [newt.balance(card).reply.rc for _ in range(3)] == ["00", "00", "00"]
            assert iso.balance(card).reply.rc == "65"  # the 4th inquiry, over the new 3
            assert iso.redeem(card, 50001).reply.rc == "61"  # over the new limit
            assert iso.redeem(card, 50000).reply.rc == "00"
            assert _get(gateway, "/v1/terminals/TILL0001", OLD)[0] == 401
            assert _get(gateway, "/v1/terminals/TILL0001", OPS)[0] == 200
        assert _metric(gateway, 'tillgate_accepted_connections_total{listener="iso"}',
                       OPS) == accepted + 1  # the one till, never reconnected
        assert _health(gateway, OPS)["config"]["generation"] == 2
        assert _metric(gateway, 'tillgate_config_reloads_total{outcome="applied"}', OPS) == 1
    finally:
        assert gateway.stop() == 0, gateway.log
    assert "terminals: added NEWT" in gateway.log


def test_sighup_removes_a_terminal_which_is_refused_at_its_next_request(tmp_path):
    gateway = GatewayProcess.prepare(tmp_path).start()
    try:
        config = load_config(gateway.config_path)
        (card,) = prepare_cards(config, target_from_config(config, "iso"), 1)
        with _tgl_till(config, "TILL0002") as till:
            assert till.balance(card).reply.rc == "00"
            _edit(gateway, '"TILL0001", "TILL0002"', '"TILL0001"')
            pid = int((tmp_path / "var" / "tillgate.pid").read_text())
            assert pid == gateway.process.pid
            gateway.process.send_signal(signal.SIGHUP)
            _wait_for(lambda: _health(gateway)["config"]["generation"] == 2, 10, "reloaded")
            # refused as an unknown terminal is, on the connection it already had
            assert till.balance(card).reply.rc == "58"
            assert till.redeem(card, 100).reply.rc == "58"
        outcome = json.loads((tmp_path / "var" / "config-reload.json").read_text())
        assert outcome["outcome"] == "applied" and outcome["trigger"] == "SIGHUP"
        assert outcome["changes"]["terminals"] == {"removed": ["TILL0002"]}
        assert _health(gateway)["config"]["sha256"] == outcome["sha256"]
    finally:
        assert gateway.stop() == 0, gateway.log


def test_a_config_with_errors_or_a_restart_only_change_is_refused_whole(tmp_path):
    gateway = GatewayProcess.prepare(tmp_path).start()
    try:
        config = load_config(gateway.config_path)
        (card,) = prepare_cards(config, target_from_config(config, "iso"), 1)
        good = gateway.config_path.read_text()
        with Till.from_config(config, "iso") as iso, _tgl_till(config, "NEWT") as newt:
            # an error, beside a change that alone would apply: neither applies
            _edit(gateway, GIFT_LIMITS, "max_balance = -1\nmax_transaction = 50\n")
            _edit(gateway, '"TILL0001", "TILL0002"', '"TILL0001", "TILL0002", "NEWT"')
            result = _cli(gateway, "config", "reload")
            assert result.returncode == 2, result.stdout
            assert (f"tillgate: {gateway.config_path}: programs.gift.max_balance: must be a "
                    "non-negative integer") in result.stderr
            assert "generation 1 keeps running" in result.stderr
            assert iso.redeem(card, 100).reply.rc == "00"  # no max_transaction of 50
            assert newt.balance(card).reply.rc == "58"  # not added

            # a new port for a listener needs a restart: refused, nothing else applied either
            gateway.config_path.write_text(good)
            _edit(gateway, f"port = {gateway.ports['iso']}", f"port = {gateway.ports['iso'] + 1}")
            _edit(gateway, '"TILL0001", "TILL0002"', '"TILL0001", "TILL0002", "NEWT"')
            result = _cli(gateway, "config", "reload")
            assert result.returncode == 2, result.stdout
            assert "listeners.iso: changed; needs a restart" in result.stderr
            assert newt.balance(card).reply.rc == "58"
            assert iso.balance(card).reply.rc == "00"  # still on the port it had
        assert _health(gateway)["config"]["generation"] == 1
        assert _metric(gateway, 'tillgate_config_reloads_total{outcome="refused"}') == 2
        assert _metric(gateway, 'tillgate_config_reloads_total{outcome="applied"}') == 0
    finally:
        assert gateway.stop() == 0, gateway.log
    assert "config reload (SIGHUP) refused, generation 1 keeps running" in gateway.log


def test_the_cli_says_when_no_gateway_runs(tmp_path):
    gateway = GatewayProcess.prepare(tmp_path)  # not started
    result = _cli(gateway, "config", "reload")
    assert result.returncode == 1
    assert f"no running gateway on {tmp_path / 'var'}" in result.stderr
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "tillgate.pid").write_text("999999999\n")
    result = _cli(gateway, "config", "reload")
    assert result.returncode == 1 and "is stale" in result.stderr


def test_reloads_during_a_load_run_drop_no_connection_and_lose_no_request(tmp_path):
    """The acceptance test of issue 15: `tillgate config reload` (and SIGHUP) five times, one of
    them refused, while ISO and TGL/1 loads run: every request sent is answered 00, no
    connection is lost, and the gateway closed none."""
    gateway = GatewayProcess.prepare(tmp_path).start()
    try:
        config = load_config(gateway.config_path)
        runs, stats = [], {}
        for protocol in ("iso", "tgl"):
            target = target_from_config(config, protocol)
            settings = LoadSettings(connections=4, depth=4, duration=30.0,
                                    mix=parse_mix("redeem=3,balance=1"))
            cards = prepare_cards(config, target, 40)
            runs.append((protocol, LoadRun(target, settings, load_tills(config), cards,
                                           limits=card_limits(config.rules, [o for o, _ in
                                                                             settings.mix]))))

        def run(protocol: str, load: LoadRun) -> None:
            stats[protocol] = load.run_blocking()

        threads = [threading.Thread(target=run, args=run_) for run_ in runs]
        for thread in threads:
            thread.start()
        _wait_for(lambda: _metric(gateway, 'tillgate_messages_in_total{listener="line",'
                                  'mti="redeem"}') > 0, 10, "the load runs")
        good = gateway.config_path.read_text()
        edits = [('"TILL0001", "TILL0002"', '"TILL0001", "TILL0002", "SPARE01"'),
                 (GIFT_LIMITS, GIFT_LIMITS + "max_transaction = 50000\n"),
                 ("max_count = 20", "max_count = 25")]
        codes = []
        for i, (old, new) in enumerate(edits):
            _edit(gateway, old, new)
            codes.append(_cli(gateway, "config", "reload").returncode)
            if i == 1:  # a refused one in between: not valid TOML
                current = gateway.config_path.read_text()
                gateway.config_path.write_text(current.replace("[programs.gift]", "[programs"))
                codes.append(_cli(gateway, "config", "reload").returncode)
                gateway.config_path.write_text(current)
        gateway.config_path.write_text(good)  # all three undone, by SIGHUP
        gateway.process.send_signal(signal.SIGHUP)
        _wait_for(lambda: _health(gateway)["config"]["generation"] == 5, 10, "the SIGHUP")
        # 10 s of load; the reloads took 2 to 3 s here (each CLI call starts an interpreter)
        assert all(thread.is_alive() for thread in threads), "the reloads outlasted the load"
        for thread in threads:
            thread.join(30)
        assert codes == [0, 0, 2, 0]
        for protocol, found in stats.items():
            assert found.sent > 100 and found.completed == found.sent, (protocol, found.sent)
            assert not found.errors, (protocol, found.errors)  # timeout, closed, disconnected
            assert set(found.codes) == {"00"}, (protocol, found.codes)
        assert _metric(gateway, 'tillgate_config_reloads_total{outcome="applied"}') == 4
        text = _get(gateway, "/metrics")[1].decode()
        assert "tillgate_connections_closed_total{" not in text
    finally:
        assert gateway.stop() == 0, gateway.log


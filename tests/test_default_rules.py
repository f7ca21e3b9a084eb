"""The default config's velocity rules (HOST-SPEC 6) over the wire, in a real gateway started on
the default config (the plugin's `tillgate_gateway`): a balance sweep on one card meets 65 and
an alert; the simulator's default load meets no rule."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from protocols.model import mask_card

LIMIT = 30  # HOST-SPEC 6: "more than 30 balance inquiries on one card in 60 seconds"
# (that the default config holds exactly section 6's rules: tests/test_config.py)


def _within_one_window(seconds_needed: float = 15.0) -> None:
    """Rules count in fixed windows aligned on the epoch: start a burst early in a window, so
    all of it lands in one (a wait for a condition, bounded by the window)."""
    while time.time() % 60 > 60 - seconds_needed:
        time.sleep(0.2)


def _wait_for_alert(gateway, rule: str, card: str) -> str:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        lines = [line for line in gateway.log.splitlines()
                 if "ALERT" in line and f"rule {rule}:" in line and mask_card(card) in line]
        if lines:
            return lines[0]
        time.sleep(0.05)
    raise AssertionError(f"no alert of {rule} within 15 s:\n{gateway.log[-4000:]}")


@pytest.mark.parametrize("protocol, program, options, rule", [
    ("iso", "gift", {}, "card-balance-inquiries"),                 # 0200 316000
    ("iso", "gift", {"mti": "0100"}, "card-balance-inquiries"),    # 0100 316000
    ("iso", "loyalty", {}, "card-points-inquiries"),               # 0200 319000
    ("tgl", "gift", {}, "card-balance-inquiries"),
])
def test_the_31st_balance_inquiry_on_one_card_gets_65_and_an_alert(tillgate_gateway, protocol,
                                                                   program, options, rule):
    loyalty = program == "loyalty"
    with tillgate_gateway.till(protocol) as till:
        card = till.new_card(program, balance=0 if loyalty else 2500).number
        ask = till.points_balance if loyalty else till.balance
        _within_one_window()
        codes = [ask(card, **options).reply.rc for _ in range(LIMIT + 2)]
        assert codes == ["00"] * LIMIT + ["65", "65"]
        other = till.new_card(program, balance=0 if loyalty else 100).number
        assert ask(other).reply.rc == "00"  # per card: another card is not limited
        if not loyalty:
            assert till.redeem(card, 100).reply.rc == "00"  # only inquiries are limited
    line = _wait_for_alert(tillgate_gateway, rule, card)
    assert f"more than {LIMIT} in 60 s" in line and "action decline" in line
    assert card not in tillgate_gateway.log


def test_the_default_load_trips_no_rule(tillgate_gateway, tmp_path):
    """`tillgate sim load` with its default mix and cards, against the default config: not one
    65, however fast the machine (balance inquiries go only to cards with room left)."""
    out = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "sim", "load", "--duration", "4", "--quiet",
         "--json", str(out), "--config", str(tillgate_gateway.config_path)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["completed"] > 100 and report["errors"] == {}
    assert set(report["response_codes"]) == {"00"}, report["response_codes"]
    assert report["operations"]["balance"]["count"] > 0

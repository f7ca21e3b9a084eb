"""Scenario files: the shipped ones pass on both protocols against a real gateway, failures are
reported (text, exit status, JUnit XML), and bad files are refused with the key's path."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gateway.sim.scenario import Runner, ScenarioError, load_scenario
from gateway.sim.target import target_from_config

SCENARIOS = sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.toml"))


def run_cli(gateway, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "sim", "run", *args,
                           "--config", str(gateway.config_path)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("protocol", ["iso", "tgl"])
def test_every_shipped_scenario_passes(tillgate_gateway, protocol):
    assert len(SCENARIOS) >= 17
    failed = []
    for path in SCENARIOS:
        scenario = load_scenario(path)
        target = target_from_config(tillgate_gateway.config, scenario.protocol or protocol)
        result = Runner(tillgate_gateway.config, target, timeout=5).run(scenario)
        if result.skipped:
            assert scenario.requires, path
            continue
        failed += [f"{path.name} step {s.index} {s.title}: {s.reason}"
                   for s in result.steps if not s.passed]
    assert not failed


def test_the_cli_reports_failures_and_writes_junit(tillgate_gateway, tmp_path):
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("""
name = "wrong expectations"

[[steps]]
issue = "gift"

[[steps]]
op = "activate"
card = "${card}"
amount = "10.00"
expect = { rc = "00", balance = "10.00" }

[[steps]]
op = "redeem"
card = "${card}"
amount = "4.00"
expect = { rc = "00", balance = "7.00" }

[[steps]]
op = "redeem"
card = "${card}"
amount = "${nowhere}"
""")
    junit = tmp_path / "out.xml"
    result = run_cli(tillgate_gateway, str(SCENARIOS[0]), str(wrong), "--junit", str(junit))
    assert result.returncode == 1, result.stderr
    assert "FAIL   3 redeem" in result.stdout and "expected balance 7.00, got 6.00" in result.stdout
    assert "${nowhere} is not defined by an earlier step" in result.stdout
    root = ET.parse(junit).getroot()
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites][-1] == "wrong expectations"
    assert suites[-1].get("failures") == "2" and root.get("failures") == "2"
    failures = [c.find("failure").get("message") for c in suites[-1].findall("testcase")
                if c.find("failure") is not None]
    assert failures[0] == "expected balance 7.00, got 6.00"


def test_yaml_scenarios_and_a_pinned_program(tillgate_gateway_factory, tmp_path):
    gateway = tillgate_gateway_factory(extra="""
[programs.prevalued]
kind = "gift"
currency = "840"
card_length = 16
prefix = "603955"
luhn = true
face_values = [2500]
""")
    shipped = [p for p in SCENARIOS if p.name == "activate-prevalued.toml"]
    yaml_file = tmp_path / "s.yaml"
    yaml_file.write_text("""
name: yaml
steps:
  - issue: gift
  - op: activate
    card: ${card}
    amount: "3.00"
    expect: {rc: "00", balance: "3.00"}
""")
    result = run_cli(gateway, *map(str, shipped), str(yaml_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SKIPPED" not in result.stdout and "2 scenarios (0 failed" in result.stdout


@pytest.mark.parametrize("text, message", [
    ('[[steps]]\nop = "redeem"\namout = "1.00"\n', "steps[0].amout: unknown key"),
    ('[[steps]]\nop = "sell"\n', "steps[0].op: unknown operation 'sell'"),
    ('[[steps]]\nop = "redeem"\namount = 12.5\n', 'steps[0].amount: a string in major units'),
    ('[[steps]]\nop = "redeem"\nfault = "melt"\n', "steps[0].fault: one of"),
    ('[[steps]]\nop = "redeem"\nexpect = { rcc = "00" }\n', "steps[0].expect.rcc: unknown key"),
    ('name = "x"\n', "steps: at least one step is required"),
    ('steps = [', "not valid TOML"),
])
def test_bad_files_are_refused_by_path(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=None) as caught:
        load_scenario(path)
    assert message in str(caught.value)


def test_bad_file_on_the_cli_exits_2(tillgate_gateway, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[steps]]\nop = "redeem"\namout = "1.00"\n')
    result = run_cli(tillgate_gateway, str(path))
    assert result.returncode == 2 and "amout: unknown key" in result.stderr

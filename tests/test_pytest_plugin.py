"""The pytest plugin as an integrator meets it: the example test of docs/simulator.md, run as is
in a fresh pytest process that finds the plugin through its `pytest11` entry point."""

from __future__ import annotations

import re
from pathlib import Path

import pytest_twisted

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parent.parent / "docs" / "simulator.md"
_EXAMPLE = re.compile(r"<!-- example-test.*?-->\n```python\n(.*?)```", re.S)


def example_test() -> str:
    found = _EXAMPLE.search(DOC.read_text())
    assert found, "docs/simulator.md lost its example test block"
    return found.group(1)


def test_the_documented_example_passes(pytester):
    pytester.makepyfile(test_example=example_test())
    # A subprocess: no conftest, no ini file, no pytest-twisted reactor option. The plugin
    # comes from the installed entry point, as in an integrator's project.
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)


def test_a_failing_expectation_fails_and_the_factory_takes_extra_config(pytester):
    pytester.makepyfile(test_wrong="""
        def test_wrong_balance(till):
            card = till.new_card("gift", balance=1000)
            assert till.redeem(card.number, 100).reply.balance == 1000

        def test_private_gateway(tillgate_gateway_factory):
            gw = tillgate_gateway_factory(extra='''
        [merchants.SHOP00000000002]
        name = "Second shop"
        terminals = ["POS00001"]
        ''')
            with gw.till(terminal="POS00001", merchant="SHOP00000000002") as t:
                card = t.new_card("gift", balance=500)
                assert t.balance(card.number).reply.balance == 500
                assert gw.card_state(card.number)["status"] == "active"
    """)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*assert 900 == 1000*"])


@pytest_twisted.ensureDeferred
async def test_inprocess_gateway_on_its_own_redis(tillgate_inprocess_factory):
    from isohelpers import in_thread, new_card

    from gateway.sim import Till
    from gateway.sim.target import Target

    gw = await tillgate_inprocess_factory(framing="len4a")
    card, _ = await new_card(gw.gateway)

    def session():
        target = Target(protocol="iso", port=gw.port("iso"), framing="len4a")
        with Till(target, config=gw.config) as till:
            till.activate(card, 700)
            return till.redeem(card, 200).reply

    reply = await in_thread(session)
    assert (reply.rc, reply.balance) == ("00", 500)


def test_a_missing_configuration_is_a_clear_usage_error(pytester):
    pytester.makeini("[pytest]\ntillgate_config = nowhere/tillgate.toml\n")
    pytester.makepyfile(test_x="def test_x(till):\n    pass\n")
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*tillgate: no configuration at *nowhere/tillgate.toml*"])

"""`[members]`, `[programs.<id>.brand]` and the `member_signin` rules as the config reads
them: defaults, every error named by its path, and the sign-in rules kept apart from the tills'."""

from __future__ import annotations

import tomllib

import pytest

from gateway.config.members import DEFAULT_SIGNIN_RULES
from gateway.config.model import DEFAULT_CONFIG_PATH, ConfigError, load_config, parse_config
from gateway.security.rules import Velocity

GIFT = {"kind": "gift", "card_length": 16, "prefix": "605100", "pin_length": 4}


def test_defaults_give_a_plain_page_and_the_default_sign_in_rules():
    config = load_config(DEFAULT_CONFIG_PATH)
    assert config.members.enabled and config.members.idle_minutes == 10
    assert config.programs["secure"].brand.name == "Your card"
    assert config.programs["secure"].brand.colour is None
    velocity = Velocity(config.rules)
    assert velocity.signin_rules == DEFAULT_SIGNIN_RULES
    assert all(r.event != "member_signin" for r in velocity.rules)


def test_errors_name_their_path(tmp_path):
    text = tmp_path / "logo.txt"
    text.write_text("x")
    with pytest.raises(ConfigError) as raised:
        parse_config({"members": {"idle_minutes": 90, "absolute_minutes": 60, "x": 1},
                      "programs": {"member": {**GIFT, "brand": {
                          "colour": "blue", "accent": "#12345", "logo": str(text),
                          "name": ""}}}})
    errors = "\n".join(raised.value.errors)
    for expected in ("members.idle_minutes: is longer than absolute_minutes",
                     "members.x", "programs.member.brand.colour: must be a colour as #rrggbb",
                     "programs.member.brand.accent", "programs.member.brand.logo: must be a",
                     "programs.member.brand.name"):
        assert expected in errors, errors
    with pytest.raises(ConfigError) as raised:
        parse_config({"programs": {"member": {**GIFT, "brand": {
            "logo": str(tmp_path / "none.png")}}}})
    assert "programs.member.brand.logo: no such file" in "\n".join(raised.value.errors)


def test_member_signin_rules_are_card_or_source_alert_or_decline():
    rules = """
[[rules]]
name = "a"
scope = "terminal"
event = "member_signin"
window = 60
max_count = 5
action = "decline"

[[rules]]
name = "b"
scope = "card"
event = "member_signin"
window = 60
max_count = 5
action = "lock_card"

[[rules]]
name = "c"
scope = "source"
event = "member_signin"
window = 60
max_count = 5
action = "decline"
"""
    with pytest.raises(ConfigError) as raised:
        parse_config(tomllib.loads(rules))
    errors = "\n".join(raised.value.errors)
    assert "rules[0].scope: member_signin counts per card or per source address" in errors
    assert "rules[1].action: member_signin rules alert or decline" in errors
    assert "rules[2]" not in errors
    only = parse_config(tomllib.loads("[[rules]]" + rules.split("[[rules]]")[3]))
    velocity = Velocity(only.rules)
    assert [r.name for r in velocity.signin_rules] == ["c"]  # naming one replaces the defaults

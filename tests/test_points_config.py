"""The loyalty settings of issue 19 in the config: the default's tiers and expiry (HOST-SPEC 1.1
section 6), and every mistake named by its path."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gateway.config.model import Tier, parse_config
from gateway.config.sections import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def default_data() -> dict:
    with open(ROOT / "config" / "tillgate.toml", "rb") as f:
        return tomllib.load(f)


def test_the_default_has_the_tiers_and_expiry_of_host_spec_6():
    loyalty = parse_config(default_data()).programs["loyalty"]
    assert loyalty.tiers == (Tier("BRONZE", 0, 1), Tier("SILVER", 500, 2))
    assert (loyalty.tier_window_days, loyalty.points_validity_days, loyalty.timezone) == (
        365, 365, "UTC")
    assert loyalty.convert_points == 0


@pytest.mark.parametrize(("change", "message"), [
    ({"timezone": "Mars/Olympus"}, "programs.loyalty.timezone: must be an IANA time zone"),
    ({"points_validity_days": -1}, "programs.loyalty.points_validity_days:"),
    ({"convert_points": 500}, "programs.loyalty.convert_points: give convert_points and "
                              "convert_value together"),
    ({"tiers": [{"name": "LOW", "threshold": 10}]},
     "programs.loyalty.tiers[0].threshold: the first (lowest) tier starts at 0"),
    ({"tiers": [{"name": "LOW", "threshold": 0}, {"name": "HIGH", "threshold": 0}]},
     "programs.loyalty.tiers[1].threshold: must be above the tier before (LOW: 0)"),
    ({"tiers": [{"name": "LOW", "threshold": 0}, {"name": "LOW", "threshold": 5}]},
     "programs.loyalty.tiers[1].name: tier 'LOW' is listed twice"),
    ({"tiers": [{"name": "has space", "threshold": 0}]}, "programs.loyalty.tiers[0].name:"),
    ({"tiers": [{"name": "LOW", "threshold": 0, "bonus": 1}]},
     "programs.loyalty.tiers[0].bonus:"),
])
def test_loyalty_mistakes_are_named_by_their_path(change, message):
    data = default_data()
    data["programs"]["loyalty"].update(change)
    with pytest.raises(ConfigError) as refused:
        parse_config(data)
    assert any(line.startswith(message) for line in refused.value.errors), refused.value.errors


def test_a_gift_program_has_no_points_settings():
    data = default_data()
    data["programs"]["gift"]["points_validity_days"] = 30
    with pytest.raises(ConfigError) as refused:
        parse_config(data)
    assert "programs.gift.points_validity_days: only a loyalty program has points" in (
        refused.value.errors)


def test_the_program_day_is_a_day_of_its_time_zone():
    from gateway.ledger.loyalty import ProgramDays, day_date
    late = 20_500 * 86400 + 23 * 3600 + 30 * 60  # 23:30 UTC on 2026-02-16
    assert day_date(ProgramDays("UTC").day(late)).isoformat() == "2026-02-16"
    assert day_date(ProgramDays("Europe/Paris").day(late)).isoformat() == "2026-02-17"
    assert day_date(ProgramDays("America/New_York").day(late)).isoformat() == "2026-02-16"

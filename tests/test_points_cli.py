"""`tillgate points expire` and what `cards show` says of points, run as an operator would, on
cards that earned through the Processor (its clock moved by days) on the same redis-server."""

from __future__ import annotations

import json

import pytest_twisted
from test_ledger_cli import config_file, tillgate  # noqa: F401  (fixture)
from test_ledger_support import ledger  # noqa: F401  (fixture)
from test_points_lots import DAY0, at

from gateway.ledger.loyalty import day_date
from protocols.model import Op


@pytest_twisted.ensureDeferred
async def test_points_expire_command_and_cards_show(ledger, config_file):  # noqa: F811
    at(ledger, DAY0)
    card = await ledger.issue("loyalty", activate=0)
    await ledger.send(Op.EARN, card, 60_000)
    at(ledger, DAY0 + 100)
    await ledger.send(Op.EARN, card, 5_000)  # 50 at SILVER's 2 per 1.00
    shown = json.loads(tillgate(config_file, "cards", "show", card, "--json").stdout)
    assert {k: shown[k] for k in ("points", "tier", "points_expiry", "points_expiring")} == {
        "points": 700, "tier": "SILVER", "points_expiry": day_date(DAY0 + 365).isoformat(),
        "points_expiring": 600}
    last_day = tillgate(config_file, "points", "expire", "--now",
                        day_date(DAY0 + 365).isoformat() + "T23:59:59Z")
    assert last_day.returncode == 0, last_day.stderr
    # the lot's last day: nothing expires, but the 600 left the 365-day window: the review
    # (due since day 30) lowers the tier
    assert "1 cards swept, 0 points expired on 0 cards, 1 tier changes" in last_day.stdout
    due = day_date(DAY0 + 366).isoformat()
    done = tillgate(config_file, "points", "expire", "--now", due, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"cards": 1, "expired": 600, "expiries": 1,
                                       "tier_changes": 0, "by_program": {"loyalty": 600},
                                       "reservations": {"claimed": 0, "returned": 0}}
    again = tillgate(config_file, "points", "expire", "--now", due)
    assert "0 cards swept, 0 points expired on 0 cards" in again.stdout
    shown = json.loads(tillgate(config_file, "cards", "show", card, "--json").stdout)
    assert {k: shown[k] for k in ("points", "tier", "points_expiry", "points_expiring")} == {
        "points": 100, "tier": "BRONZE", "points_expiry": day_date(DAY0 + 465).isoformat(),
        "points_expiring": 100}
    history = tillgate(config_file, "cards", "history", card, "--json").stdout.splitlines()
    assert [json.loads(line)["op"] for line in history][-2:] == ["tier", "expire"]
    bad = tillgate(config_file, "points", "expire", "--now", "next tuesday")
    assert bad.returncode == 2 and "--now" in bad.stderr
    assert tillgate(config_file, "audit").returncode == 0

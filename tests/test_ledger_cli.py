"""`tillgate cards issue|show|unlock|rollback` and `tillgate audit`, run as an operator would."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from gateway.ledger.cards import card_id, journal_key, state_key
from protocols.carddata import luhn_valid

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def config_file(tmp_path, redis_url):
    return write_config(tmp_path, redis_url)


def write_config(tmp_path, redis_url: str, extra: str = "") -> str:
    """The default config (config/tillgate.toml) on `redis_url`, its data under tmp_path,
    `extra` TOML after it: the file a command-line test passes with --config."""
    text = (ROOT / "config" / "tillgate.toml").read_text()
    text = text.replace('data_dir = "var"', f'data_dir = "{tmp_path / "var"}"')
    text = text.replace('# url = "redis://127.0.0.1:6379/0"', f'url = "{redis_url}"')
    path = tmp_path / "t.toml"
    path.write_text(text + extra)
    return str(path)


def tillgate(config_file: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args, "--config", config_file],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)


def test_issue_activate_show_and_audit(config_file, tmp_path, redis_url):
    out = tmp_path / "cards.csv"
    out.write_text("")
    out.chmod(0o644)  # a file there already, readable by all: narrowed before PINs go in
    done = tillgate(config_file, "cards", "issue", "--program", "secure", "--count", "5",
                    "--activate", "12.50", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.stat().st_mode & 0o777 == 0o600  # numbers and PINs: the owner's alone
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:2] == ["card", "pin"]
    numbers = [r["card"] for r in rows]
    assert len(set(numbers)) == 5 and all(luhn_valid(n) and n.startswith("603954")
                                          for n in numbers)
    assert len({int(b) - int(a) for a, b in zip(numbers, numbers[1:])}) > 1  # not sequential
    assert all(len(r["pin"]) == 4 and r["balance"] == "1250" for r in rows)

    shown = tillgate(config_file, "cards", "show", numbers[0], "--json")
    data = json.loads(shown.stdout)
    assert {k: data[k] for k in ("program", "status", "balance", "points")} == {
        "program": "secure", "status": "active", "balance": 1250, "points": 0}
    text = tillgate(config_file, "cards", "show", numbers[0]).stdout
    assert numbers[0] not in text and numbers[0][-4:] in text  # masked

    ok = tillgate(config_file, "audit")
    assert ok.returncode == 0 and "5 cards, 5 journal entries: no differences" in ok.stdout
    client = redis.Redis.from_url(redis_url)
    client.hincrby(state_key(card_id(numbers[1])), "bal", 1)  # tamper: not in the journal
    bad = tillgate(config_file, "audit")
    assert bad.returncode == 1 and "balance 1251 points 0, journal sums to 1250" in bad.stdout
    assert numbers[1] not in bad.stdout
    assert client.xlen(journal_key(card_id(numbers[1]))) == 1
    client.close()


def test_rollback_unlock_and_bad_input(config_file):
    done = tillgate(config_file, "cards", "issue", "--program", "gift", "--count", "1",
                    "--activate", "5")
    card = done.stdout.splitlines()[1].split(",")[0]
    back = tillgate(config_file, "cards", "rollback", card)
    assert back.returncode == 0 and "balance 0" in back.stdout
    assert json.loads(tillgate(config_file, "cards", "show", card, "--json").stdout)[
        "status"] == "issued"
    assert tillgate(config_file, "cards", "unlock", card).returncode == 2
    for args, message in (
        (("cards", "issue", "--program", "nope", "--count", "1"), "unknown program"),
        (("cards", "issue", "--program", "gift", "--count", "0"), "--count"),
        (("cards", "issue", "--program", "gift", "--count", "1", "--activate", "1.234"),
         "at most 2 decimals"),
        (("cards", "show", "42"), "not a card number"),
        (("cards", "show", "6039530000000000001"), "603953*********0001: unknown card"),
    ):
        failed = tillgate(config_file, *args)
        assert failed.returncode == 2 and message in failed.stderr, failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1

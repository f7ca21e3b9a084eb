"""`tillgate terminals show|enable|disable` against the session's redis-server (a subprocess,
as an operator runs it)."""

from __future__ import annotations

import json

import redis
from test_ledger_cli import config_file, tillgate  # noqa: F401  (fixture)

from gateway.security.rules import terminal_off_key


def test_terminals_show_disable_enable(config_file, redis_url):  # noqa: F811
    def run(*args: str) -> dict:
        done = tillgate(config_file, "terminals", *args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert run("show", "TILL0001")["disabled"] is False
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(terminal_off_key("STORE0000000001", "TILL0001"), "velocity")  # a rule did it
        assert run("show", "TILL0001") == {"terminal": "TILL0001",
                                           "merchant": "STORE0000000001", "disabled": True}
        assert run("enable", "TILL0001")["disabled"] is False
        assert not client.exists(terminal_off_key("STORE0000000001", "TILL0001"))
        assert run("disable", "TILL0002")["disabled"] is True
    finally:
        client.close()
    bad = tillgate(config_file, "terminals", "enable", "NOSUCH")
    assert bad.returncode == 2 and "no terminal 'NOSUCH'" in bad.stderr

"""Config reload, in the process: what a reload would change (gateway/config/diff.py), the
reloader's check/prepare/commit and its serialisation (gateway/reloader.py), the switch between
two requests, and the admin API (real HTTP over TCP). The `tillgate serve` subprocess, SIGHUP,
the CLI and a load run are tests/test_config_reload_serve.py."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import io
import json
import logging
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest_twisted
from linetill import tgl_request
from test_line_serial import Pty, until
from test_line_tcp import TERM
from twisted.internet.defer import Deferred, maybeDeferred, succeed

from gateway.config.diff import changes, describe, needs_restart
from gateway.config.model import ConfigError, load_config, parse_config
from gateway.metrics import families as metrics
from gateway.reactor import deferred_from_coro
from gateway.reloader import Reloader
from gateway.security.logmask import (
    LOG_FORMAT,
    CardMaskingFormatter,
    card_pattern,
    reconfigure_logging,
)
from gateway.testing import config_text
from protocols.model import RC, Op, Request

BASE = Path("config/tillgate.toml")
OPS, VIEWER = "ops-token-0123456789abcdef", "viewer-token-0123456789ab"


def _request(port: int, method: str, path: str, token: str | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, headers={"Authorization": f"Bearer {token}"} if token else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


async def call(gw, method: str, path: str, token: str | None = None) -> tuple[int, bytes]:
    """An admin HTTP call from a worker thread (the gateway answers on the reactor's)."""
    port = gw.gateway.http.port.getHost().port
    return await deferred_from_coro(asyncio.to_thread(_request, port, method, path, token))


def _running_with(gateway, text: str):
    """`text` as a Config, with the listeners, HTTP and Redis of the running gateway (the test
    factory gave it free ports and the suite's Redis)."""
    data = tomllib.loads(text)
    data.update({k: gateway.config.raw[k] for k in ("listeners", "http", "redis")})
    data["gateway"]["data_dir"] = str(gateway.config.data_dir)
    return parse_config(data, gateway.config.path)


def _config(text: str = "", path: str = "test.toml"):
    data = tomllib.loads(config_text(BASE, data_dir="var", ports={}) + text)
    return parse_config(data, path)


def _edited(old: str, new: str, extra: str = ""):
    text = config_text(BASE, data_dir="var", ports={}).replace(old, new, 1)
    assert old in config_text(BASE, data_dir="var", ports={})
    return parse_config(tomllib.loads(text + extra), "test.toml")


# -- what differs ---------------------------------------------------------------------------

def test_programs_terminals_rules_resellers_tokens_are_summarised_not_refused():
    old = _config()
    new = _edited('terminals = ["TILL0001", "TILL0002"]', 'terminals = ["TILL0001", "TILL0009"]')
    new = replace(new, programs={**new.programs, "gift": replace(new.programs["gift"],
                                                                  max_transaction=500)},
                  rules=new.rules[1:])
    assert needs_restart(old, new) == []
    found = changes(old, new)
    assert found["terminals"] == {"added": ["TILL0009"], "removed": ["TILL0002"]}
    assert found["programs"] == {"changed": ["gift"]}
    assert found["rules"] == {"removed": ["unknown-card-burst"]}
    assert found["merchants"] == {"changed": ["STORE0000000001"]}
    assert "resellers" not in found and "tokens" not in found
    assert describe(found).startswith("programs: changed gift; merchants: changed ")
    assert changes(old, _config()) == {} and describe({}) == "no changes"


def test_restart_only_settings_are_named_by_path():
    old = _config()
    moved = _edited("port = 8583", "port = 18583")
    assert needs_restart(old, moved) == ["listeners.iso: changed; needs a restart"]
    http = _edited("port = 8580", "port = 18580")
    assert needs_restart(old, http) == ["http: changed; needs a restart"]
    redis = _edited("pool_size = 64", "pool_size = 8")
    redis = replace(redis, data_dir=Path("elsewhere"))
    assert needs_restart(old, redis) == ["gateway.data_dir: changed; needs a restart",
                                         "redis: changed; needs a restart"]
    fewer = replace(old, listeners=old.listeners[:1])
    assert needs_restart(old, fewer) == ["listeners.line: removed; needs a restart"]
    elsewhere = replace(old, backoffice=replace(old.backoffice, url="sqlite:///other.db"))
    assert needs_restart(old, elsewhere) == ["backoffice: changed; needs a restart"]


def test_the_digest_is_the_files_sha256(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(config_text(BASE, data_dir="var", ports={}))
    assert load_config(path).digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_config(path) == replace(load_config(path), digest="other")  # not a setting


# -- the reloader ---------------------------------------------------------------------------

class Harness:
    """A Reloader over a config held here, whose loads the test answers by hand."""

    def __init__(self, tmp_path: Path):
        self.config = _config()
        self.loads: list[Deferred] = []
        self.commits: list[object] = []
        self.prepare_error: Exception | None = None
        self.reloader = Reloader(lambda: self.config, self.prepare, tmp_path, load=self.load)

    def load(self, path: str) -> Deferred:
        d: Deferred = Deferred()
        self.loads.append(d)
        return d

    def prepare(self, new):
        if self.prepare_error is not None:
            raise self.prepare_error

        def commit():
            self.commits.append(new)
            self.config = new

        return commit


def _count(outcome: str) -> float:
    return metrics.REGISTRY.get_sample_value("tillgate_config_reloads_total",
                                             {"outcome": outcome}) or 0.0


def test_a_config_with_errors_is_refused_whole_and_reported(tmp_path):
    h = Harness(tmp_path)
    refused_before = _count("refused")
    answers: list = []
    h.reloader.reload("test").addCallback(answers.append)
    h.loads[0].errback(ConfigError(["programs.gift.max_balance: must be a non-negative "
                                    "integer"]))
    (outcome,) = answers
    assert not outcome.applied and h.commits == [] and h.reloader.generation == 1
    assert outcome.errors == ["programs.gift.max_balance: must be a non-negative integer"]
    assert _count("refused") == refused_before + 1
    written = json.loads((tmp_path / "config-reload.json").read_text())
    assert written["outcome"] == "refused" and written["errors"] == outcome.errors


def test_restart_only_changes_refuse_the_whole_reload(tmp_path):
    h = Harness(tmp_path)
    answers: list = []
    h.reloader.reload("test").addCallback(answers.append)
    both = _edited("port = 8583", "port = 18583")
    both = replace(both, rules=())  # a change that could apply, refused with the rest
    h.loads[0].callback(both)
    assert answers[0].errors == ["listeners.iso: changed; needs a restart"]
    assert h.commits == [] and h.config.rules  # nothing applied


def test_a_failed_prepare_changes_nothing(tmp_path):
    h = Harness(tmp_path)
    h.prepare_error = ValueError("bad PIN key")
    answers: list = []
    h.reloader.reload("test").addCallback(answers.append)
    h.loads[0].callback(replace(_config(), rules=()))
    assert answers[0].errors == ["cannot apply: bad PIN key"] and h.commits == []


def test_reloads_never_overlap_and_those_asked_meanwhile_share_the_next_run(tmp_path):
    h = Harness(tmp_path)
    answers: list = []
    for who in ("first", "second", "third"):
        h.reloader.reload(who).addCallback(answers.append)
    assert len(h.loads) == 1  # one run at a time
    newer = replace(_config(), rules=())
    h.loads[0].callback(newer)
    assert len(h.loads) == 2 and [a.trigger for a in answers] == ["first"]
    h.loads[1].callback(newer)
    assert len(h.loads) == 2 and [a.generation for a in answers] == [2, 3, 3]
    assert answers[1] is answers[2] and answers[1].trigger == "first, then 2 more"
    assert h.reloader.generation == 3 and len(h.commits) == 2


# -- the switch in a running gateway --------------------------------------------------------

def _balance(terminal: str, n: int, card: str = "6039530000000000000") -> Request:
    return Request(op=Op.BALANCE, terminal=terminal, merchant="STORE0000000001",
                   key=f"L:{terminal}:STORE0000000001:{n}:20260101", card=card)


@pytest_twisted.ensureDeferred
async def test_a_request_is_judged_wholly_by_the_config_it_began_under(
        tillgate_inprocess_factory):
    gw = await tillgate_inprocess_factory()
    gateway = gw.gateway
    new = _running_with(gateway, BASE.read_text().replace('"TILL0001", "TILL0002"',
                                                          '"TILL0001", "NEWTILL"'))
    gateway.reloader.load = lambda _path: succeed(new)

    before = gateway.processor.submit(_balance("TILL0002", 1))  # queued in this turn
    answers: list = []
    gateway.reload("test").addCallback(answers.append)  # applied in this same turn
    assert answers and answers[0].applied, answers and answers[0].errors
    after = gateway.processor.submit(_balance("TILL0002", 2))
    added = gateway.processor.submit(_balance("NEWTILL", 3))
    assert (await before).code == RC.UNKNOWN_CARD  # TILL0002 was a terminal when it came
    assert (await after).code == RC.TERMINAL_NOT_PERMITTED
    assert (await added).code == RC.UNKNOWN_CARD  # known now: judged on to the card
    assert gateway.processor.in_flight == 0 and gateway.processor._retired == []
    status, body = await call(gw, "GET", "/healthz")
    assert json.loads(body)["config"]["generation"] == 2


@pytest_twisted.ensureDeferred
async def test_the_admin_api_reloads_and_a_removed_token_stops_at_once(
        tillgate_inprocess_factory, tmp_path):
    (tmp_path / "ops.token").write_text(OPS)
    (tmp_path / "viewer.token").write_text(VIEWER)
    tokens = f"""
[[security.tokens]]
id = "ops"
scopes = ["config:read", "config:reload", "terminals:read"]
token_file = "{tmp_path / 'ops.token'}"
"""
    viewer = f"""
[[security.tokens]]
id = "viewer"
scopes = ["terminals:read"]
token_file = "{tmp_path / 'viewer.token'}"
"""
    gw = await tillgate_inprocess_factory(extra=tokens + viewer)
    gateway = gw.gateway
    without_viewer = _running_with(gateway, BASE.read_text() + tokens)

    assert (await call(gw, "GET", "/v1/terminals/TILL0001", VIEWER))[0] == 200
    assert (await call(gw, "POST", "/v1/config/reload", VIEWER))[0] == 403
    gateway.reloader.load = lambda _path: succeed(without_viewer)
    status, body = await call(gw, "POST", "/v1/config/reload", OPS)
    outcome = json.loads(body)
    assert status == 200 and outcome["outcome"] == "applied"
    assert outcome["changes"] == {"tokens": {"removed": ["viewer"]}}
    assert outcome["trigger"] == "api, token ops"
    assert (await call(gw, "GET", "/v1/terminals/TILL0001", VIEWER))[0] == 401
    assert (await call(gw, "GET", "/v1/terminals/TILL0001", OPS))[0] == 200

    broken = tmp_path / "broken.toml"
    broken.write_text(BASE.read_text() + "\n[programs.gift]\nkind = \"loyalty\"\n")  # twice
    gateway.reloader.load = lambda _path: maybeDeferred(load_config, broken)
    status, body = await call(gw, "POST", "/v1/config/reload", OPS)
    assert status == 422
    assert json.loads(body)["errors"][0].startswith(f"{broken}: not valid TOML")
    status, body = await call(gw, "GET", "/v1/config", OPS)
    shown = json.loads(body)
    assert shown["generation"] == 2 and shown["last_reload"]["outcome"] == "refused"


@pytest_twisted.ensureDeferred
async def test_a_serial_line_stays_open_and_a_removed_terminal_gets_58_on_it(
        tillgate_inprocess_factory, tmp_path):
    link = str(tmp_path / "ttyTILL")
    pty = Pty(link)
    serial = f"""
[[listeners]]
name = "com1"
protocol = "line"
transport = "serial"
device = "{link}"
"""
    gw = await tillgate_inprocess_factory(extra=serial)
    gateway = gw.gateway
    try:
        service = next(s for s in gateway.listeners if s.name == "com1")
        await until(lambda: service.is_open)
        port = service.port
        till2 = {"term": "TILL0002", "merch": "STORE0000000001"}
        card = "6039530000000000000"  # issued nowhere: 14 while the terminal is known
        r = await pty.till.line.request(tgl_request(id="1", op="balance", card=card, **till2))
        assert r["rc"] == "14"
        new = _running_with(gateway, BASE.read_text().replace('"TILL0001", "TILL0002"',
                                                              '"TILL0001"') + serial)
        gateway.reloader.load = lambda _path: succeed(new)
        assert (await gateway.reload("test")).applied
        r = await pty.till.line.request(tgl_request(id="2", op="balance", card=card, **till2))
        assert r["rc"] == "58"
        r = await pty.till.line.request(tgl_request(id="3", op="balance", card=card, **TERM))
        assert r["rc"] == "14"
        assert service.is_open and service.port is port  # the same open device throughout
    finally:
        await gateway.stop()
        pty.unplug()


def test_a_program_added_by_a_reload_has_its_short_numbers_masked_in_the_log():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CardMaskingFormatter(LOG_FORMAT, programs=_config().programs.values()))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    try:
        log = logging.getLogger("test.reload")
        log.warning("card 8800012345")  # 10 digits of no program: not a card number yet
        new = _config('\n[programs.short]\nkind = "gift"\ncard_length = 10\nprefix = "88"\n'
                      "luhn = false\n")
        reconfigure_logging("WARNING", card_pattern(new.programs.values()))
        log.warning("card 8800012345")
        assert root.level == logging.WARNING
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert stream.getvalue().splitlines()[0].endswith("card 8800012345")
    assert stream.getvalue().splitlines()[1].endswith("card 88******45")

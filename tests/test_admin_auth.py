"""Admin HTTP bearer tokens with scopes, against a gateway running in the test process (real
HTTP over TCP), and the terminal switch a disable_terminal rule uses."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json

import pytest_twisted

from gateway.config.security import Token
from gateway.embedded_redis import free_port
from gateway.reactor import deferred_from_coro
from gateway.security.tokens import TokenAuth, is_loopback
from protocols.model import RC, Op, Request

PROM, OPS, RO = "prom-token-0123456789", "ops-token-abcdefghij", "read-only-token-xyz"


def request(port: int, method: str, path: str, token: str | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        conn.close()


async def call(port: int, method: str, path: str, token: str | None = None):
    return await deferred_from_coro(asyncio.to_thread(request, port, method, path, token))


def http_port(gw) -> int:
    return gw.gateway.http.port.getHost().port


@pytest_twisted.ensureDeferred
async def test_without_tokens_health_and_metrics_are_open_to_loopback_only(
        tillgate_inprocess_factory):
    gw = await tillgate_inprocess_factory()
    port = http_port(gw)
    assert (await call(port, "GET", "/healthz"))[0] == 200
    status, body, _ = await call(port, "GET", "/metrics")
    assert status == 200 and b"tillgate_alerts_raised_total" in body
    assert (await call(port, "GET", "/v1/terminals/TILL0001"))[0] == 401
    assert (await call(port, "POST", "/v1/terminals/TILL0001/disable"))[0] == 401


@pytest_twisted.ensureDeferred
async def test_tokens_and_scopes(tillgate_inprocess_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("TG_TEST_PROM_TOKEN", PROM)
    ops_file = tmp_path / "ops.token"
    ops_file.write_text(OPS + "\n")
    ro_digest = hashlib.sha256(RO.encode()).hexdigest()
    extra = f"""
[[security.tokens]]
id = "prometheus"
scopes = ["metrics"]
token_env = "TG_TEST_PROM_TOKEN"

[[security.tokens]]
id = "ops"
scopes = ["health", "terminals:read", "terminals:write"]
token_file = "{ops_file}"

[[security.tokens]]
id = "viewer"
scopes = ["terminals:read"]
sha256 = "{ro_digest}"
"""
    gw = await tillgate_inprocess_factory(extra=extra)
    port = http_port(gw)
    status, _, headers = await call(port, "GET", "/metrics")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert (await call(port, "GET", "/metrics", "not-a-token"))[0] == 401
    assert (await call(port, "GET", "/metrics", PROM))[0] == 200
    assert (await call(port, "GET", "/metrics", OPS))[0] == 403
    assert (await call(port, "GET", "/healthz"))[0] == 401  # loopback is not enough any more
    assert (await call(port, "GET", "/healthz", OPS))[0] == 200
    assert (await call(port, "GET", "/terminals/TILL0001", RO))[0] == 200  # the first release's
    status, body, _ = await call(port, "GET", "/v1/terminals/TILL0001", RO)
    assert status == 200 and json.loads(body)["disabled"] is False
    assert (await call(port, "POST", "/v1/terminals/TILL0001/disable", RO))[0] == 403
    assert (await call(port, "GET", "/v1/terminals/NOSUCH", RO))[0] == 404
    status, body, _ = await call(port, "POST", "/v1/terminals/TILL0001/disable", OPS)
    assert status == 200 and json.loads(body)["disabled"] is True

    processor = gw.gateway.processor
    card = "6039530000000000000"
    req = Request(op=Op.BALANCE, terminal="TILL0001", merchant="STORE0000000001",
                  key="L:TILL0001:STORE0000000001:1:20260101", card=card)
    assert (await processor.submit(req)).code == RC.TERMINAL_NOT_PERMITTED
    status, body, _ = await call(port, "POST", "/v1/terminals/TILL0001/enable", OPS)
    assert status == 200 and json.loads(body)["disabled"] is False
    req.key = "L:TILL0001:STORE0000000001:2:20260101"
    assert (await processor.submit(req)).code == RC.UNKNOWN_CARD


def test_token_matching_is_by_digest_and_case_insensitive_scheme():
    auth = TokenAuth((Token("a", frozenset({"metrics"}), hashlib.sha256(b"abc").digest()),))
    assert auth.identify(b"Bearer abc").id == "a"
    assert auth.identify(b"bearer abc").id == "a"
    assert auth.identify(b"Bearer abd") is None
    assert auth.identify(b"Basic abc") is None
    assert auth.identify(None) is None


def test_loopback_addresses():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("127.9.9.9")
    assert not is_loopback("10.0.0.1") and not is_loopback("") and not is_loopback("/tmp/s")


@pytest_twisted.ensureDeferred
async def test_alerts_status_shows_undelivered_alerts_per_sink(tillgate_inprocess_factory,
                                                               monkeypatch):
    from gateway.security.alerts.record import Alert

    monkeypatch.setenv("TG_TEST_OPS_TOKEN", OPS)
    port_nobody = free_port()  # nothing listens there: the webhook keeps failing
    extra = f"""
[alerts.webhook]
url = "http://127.0.0.1:{port_nobody}/down"
retry_initial_ms = 50

[[security.tokens]]
id = "ops"
scopes = ["alerts:read"]
token_env = "TG_TEST_OPS_TOKEN"
"""
    gw = await tillgate_inprocess_factory(extra=extra)
    port = http_port(gw)
    assert (await call(port, "GET", "/v1/alerts"))[0] == 401
    queue = gw.gateway.processor.processor.alerts
    alert = Alert(rule="r", scope="terminal", value="TILL0001", event="redeem", action="alert",
                  window=60, window_start=0, count=2, amount=0, max_count=1, max_amount=0,
                  terminal="TILL0001", merchant="STORE0000000001", card="", time=0)
    await deferred_from_coro(queue.raise_alert(alert, "TILL0001", 60))
    for _ in range(100):  # the webhook sink reads it and keeps failing; the log sink delivers
        status, body, _ = await call(port, "GET", "/v1/alerts", OPS)
        state = json.loads(body)
        sinks = state["sinks"]
        if (sinks.get("webhook", {}).get("pending") == 1
                and sinks.get("log", {}).get("pending") == 0):
            break  # each sink reads the stream on its own schedule: wait for both
    assert status == 200 and state["stream_length"] >= 1
    assert state["sinks"]["webhook"]["pending"] == 1
    assert state["sinks"]["log"]["pending"] == 0
    assert state["configured"] == ["log", "webhook"]

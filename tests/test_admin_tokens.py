"""Admin tokens made at run time (`tillgate tokens ...`, `/v1/tokens`): a gateway in the test
process over real HTTP, the CLI as a subprocess on the same redis-server, no restart between."""

from __future__ import annotations

import asyncio
import json
import time

import pytest_twisted
import redis
from test_admin_auth import call, http_port
from test_ledger_cli import config_file, tillgate  # noqa: F401  (fixture)

from gateway.config.security import SCOPES
from gateway.reactor import deferred_from_coro
from gateway.security import tokenstore

ROOT = "root-token-0123456789abcdef"
WITH_ROOT = """
[[security.tokens]]
id = "root"
scopes = ["tokens:admin", "health"]
token_env = "TG_TEST_ROOT_TOKEN"
"""


async def cli(config: str, *args: str):
    done = await deferred_from_coro(asyncio.to_thread(tillgate, config, "tokens", *args))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def post_json(port: int, path: str, body: object, token: str):
    import http.client

    def send():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("POST", path, json.dumps(body),
                         {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()
    return await deferred_from_coro(asyncio.to_thread(send))


@pytest_twisted.ensureDeferred
async def test_created_used_disabled_by_the_cli_and_refused_on_the_next_request(
        tillgate_inprocess_factory, config_file, redis_url, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TG_TEST_ROOT_TOKEN", ROOT)
    gw = await tillgate_inprocess_factory(redis_url=redis_url, extra=WITH_ROOT)
    port = http_port(gw)

    status, made = await post_json(port, "/v1/tokens",
                                   {"name": "till reports", "scopes": ["terminals:read"]}, ROOT)
    assert status == 201, made
    secret, token_id = made["secret"], made["token"]["id"]
    assert made["token"]["enabled"] is True and made["token"]["last_used"] is None
    assert (await call(port, "GET", "/v1/terminals/TILL0001", secret))[0] == 200
    assert (await call(port, "POST", "/v1/terminals/TILL0001/disable", secret))[0] == 403
    assert (await call(port, "GET", "/v1/tokens", secret))[0] == 403  # no tokens:admin

    listed = {t["id"]: t for t in (await cli(config_file, "list"))["tokens"]}
    assert listed[token_id]["last_used"] is not None  # shown, by the CLI too
    assert listed[token_id]["scopes"] == ["terminals:read"]

    assert (await cli(config_file, "disable", token_id))["token"]["enabled"] is False
    status, body, headers = await call(port, "GET", "/v1/terminals/TILL0001", secret)
    assert status == 401 and b"disabled" in body and headers["WWW-Authenticate"]
    assert (await call(port, "GET", "/healthz", ROOT))[0] == 200  # the config's still work

    status, answer = await post_json(port, f"/v1/tokens/{token_id}/enable", {}, ROOT)
    assert status == 200 and answer["token"]["enabled"] is True
    assert (await call(port, "GET", "/v1/terminals/TILL0001", secret))[0] == 200

    # made by the CLI, its secret printed once, working at once over HTTP
    made = await cli(config_file, "create", "--name", "prometheus", "--scope", "metrics")
    assert (await call(port, "GET", "/metrics", made["secret"]))[0] == 200
    status, body, _ = await call(port, "GET", "/v1/tokens", ROOT)
    assert status == 200 and made["secret"].encode() not in body
    ids = [t["id"] for t in json.loads(body)["tokens"]]
    assert ids[0] == "root" and {token_id, made["token"]["id"]} <= set(ids)
    client = redis.Redis.from_url(redis_url)
    try:  # only digests are kept
        for key in client.keys("{admintokens}*"):
            stored = client.hgetall(key) if client.type(key) == b"hash" else {}
            assert all(made["secret"].encode() not in v for v in stored.values())
    finally:
        client.close()

    # no metric label carries a token's id or name
    status, body, _ = await call(port, "GET", "/metrics", made["secret"])
    assert token_id.encode() not in body and b"till reports" not in body


@pytest_twisted.ensureDeferred
async def test_expired_unknown_and_config_tokens(tillgate_inprocess_factory, redis_url,
                                                 monkeypatch):
    monkeypatch.setenv("TG_TEST_ROOT_TOKEN", ROOT)
    gw = await tillgate_inprocess_factory(redis_url=redis_url, extra=WITH_ROOT)
    port = http_port(gw)
    client = gw.gateway.store_service.store.client
    hour_ago = time.time() - 3600
    _, secret = await deferred_from_coro(tokenstore.create(
        client, "an hour ago", ["health"], SCOPES, expires=int(hour_ago) + 60,
        clock=lambda: hour_ago))
    status, body, _ = await call(port, "GET", "/healthz", secret)
    assert status == 401 and b"expired" in body
    assert (await call(port, "GET", "/healthz", secret + "x"))[0] == 401

    assert (await post_json(port, "/v1/tokens/root/disable", {}, ROOT))[0] == 409
    assert (await post_json(port, "/v1/tokens/rt-nosuch/disable", {}, ROOT))[0] == 404
    status, body, headers = await call(port, "GET", "/v1/tokens/root", ROOT)
    assert status == 404 and headers["Content-Type"] == "application/json"
    status, answer = await post_json(port, "/v1/tokens", {"name": "x", "scopes": ["admin"]}, ROOT)
    assert status == 400 and "unknown scope 'admin'" in answer["error"]
    status, answer = await post_json(port, "/v1/tokens", {"name": "x", "scopes": ["health"],
                                                          "expires": "2020-01-01T00:00:00Z"},
                                     ROOT)
    assert status == 400 and answer["error"] == "expires: must be in the future"
    status, answer = await post_json(port, "/v1/tokens", {"name": "x", "scopes": ["health"],
                                                          "expires": "2999-01-01T00:00"}, ROOT)
    assert status == 400 and "needs a zone" in answer["error"]
    status, answer = await post_json(port, "/v1/tokens", {"name": "soon", "scopes": ["health"],
                                                          "expires": "2999-01-01T00:00:00Z"},
                                     ROOT)
    assert status == 201 and answer["token"]["expires"] == "2999-01-01T00:00:00Z"


@pytest_twisted.ensureDeferred
async def test_last_used_is_written_at_most_once_a_minute(tillgate_inprocess_factory,
                                                          redis_url):
    gw = await tillgate_inprocess_factory(redis_url=redis_url)
    client = gw.gateway.store_service.store.client
    now = [1_900_000_000.0]

    async def used_after(seconds: float) -> bytes:
        now[0] += seconds
        await tokenstore.lookup(client, token.sha256, lambda: now[0])
        return await client.hget(tokenstore.record_key(token.sha256.hex()), "last_used")

    token, _ = await deferred_from_coro(tokenstore.create(client, "probe", ["health"], SCOPES,
                                                          clock=lambda: now[0]))
    assert await deferred_from_coro(used_after(0)) == b"1900000000"
    assert await deferred_from_coro(used_after(59)) == b"1900000000"
    assert await deferred_from_coro(used_after(1)) == b"1900000060"


def test_cli_refusals(config_file):  # noqa: F811
    done = tillgate(config_file, "tokens", "create", "--name", "x", "--scope", "nosuch")
    assert done.returncode == 2 and "unknown scope 'nosuch'" in done.stderr
    done = tillgate(config_file, "tokens", "create", "--name", "x", "--scope", "health",
                    "--expires", "tomorrow")
    assert done.returncode == 2 and "not an ISO 8601 date-time" in done.stderr
    done = tillgate(config_file, "tokens", "disable", "rt-nosuch")
    assert done.returncode == 2 and "no token 'rt-nosuch'" in done.stderr


@pytest_twisted.ensureDeferred
async def test_a_stored_token_cannot_be_checked_without_the_store():
    from twisted.web.test.requesthelper import DummyRequest

    from gateway.security.tokens import TokenAuth

    auth = TokenAuth((), store_client=lambda: None)
    request = DummyRequest([b""])
    request.requestHeaders.addRawHeader(b"authorization", b"Bearer some-stored-token")
    await deferred_from_coro(auth.authenticate(request))
    assert auth.check(request, "cards:read") == (503, "cannot check the token: store not "
                                                      "started")
    assert auth.token_of(request) is None

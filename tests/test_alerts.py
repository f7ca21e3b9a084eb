"""Alert delivery with real parts: the Redis stream, a real HTTP receiver on a TCP port (down,
then up), a real SMTP server (aiosmtpd, STARTTLS and AUTH) and the log."""

from __future__ import annotations

import json
import logging
import ssl
import time
import tomllib
from email import message_from_bytes
from typing import Any

import pytest
import pytest_twisted
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from tls_material import make_tls_files
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.web import resource, server

from gateway.config.model import parse_config
from gateway.embedded_redis import free_port
from gateway.ledger.store import Store
from gateway.listeners.endpoints import server_tls_options
from gateway.metrics import families as metrics
from gateway.reactor import deferred_from_coro
from gateway.security.alerts.queue import AlertQueue
from gateway.security.alerts.record import Alert
from gateway.security.alerts.service import AlertService, Backoff
from gateway.security.alerts.sinks import verify_signature

SECRET = "hook-secret-for-tests"
CARD = "6039531234567890123"


def alert_config(alerts: dict[str, Any], email: dict[str, Any] | None = None):
    with open("config/tillgate.toml", "rb") as f:
        data = tomllib.load(f)
    data["merchants"]["STORE0000000001"]["email"] = "store1@example.com"
    data["alerts"] = {"poll_ms": 50, **alerts}
    if email:
        data["email"] = email
    return parse_config(data, "test")


def an_alert(rule: str = "card-redeem", value: str = "603953*********0123") -> Alert:
    return Alert(rule=rule, scope="card", value=value, event="redeem", action="decline",
                 window=600, window_start=1_800_000_000, count=5, amount=500, max_count=5,
                 max_amount=0, terminal="TILL0001", merchant="STORE0000000001",
                 card="603953*********0123", time=int(time.time()))


async def until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await deferLater(reactor, 0.02, lambda: None)


@pytest_twisted.async_yield_fixture
async def store(redis_url):
    s = await deferred_from_coro(Store.connect(redis_url, pool_size=8))
    yield s
    await deferred_from_coro(s.close())


class Receiver(resource.Resource):
    """A webhook receiver: records each POST; answers `codes` in turn, then 200."""

    isLeaf = True

    def __init__(self, codes: list[int] | None = None):
        super().__init__()
        self.posts: list[tuple[bytes, dict[str, str]]] = []
        self.codes = list(codes or [])

    def render_POST(self, request):
        body = request.content.read()
        headers = {k.decode().lower(): v[0].decode()
                   for k, v in request.requestHeaders.getAllRawHeaders()}
        self.posts.append((body, headers))
        request.setResponseCode(self.codes.pop(0) if self.codes else 200)
        return b"ok"


def webhook_config(port: int, monkeypatch) -> Any:
    monkeypatch.setenv("TG_TEST_HOOK_SECRET", SECRET)
    return alert_config({"log": False, "webhook": {
        "url": f"http://127.0.0.1:{port}/hook", "secret_env": "TG_TEST_HOOK_SECRET",
        "timeout": 2, "retry_initial_ms": 50, "retry_max_s": 1}})


@pytest_twisted.ensureDeferred
async def test_webhook_down_then_up_gets_each_alert_once(store, monkeypatch):
    port = free_port()
    config = webhook_config(port, monkeypatch)
    queue = AlertQueue(store)
    service = AlertService(reactor, config, lambda: queue)
    await service.start()
    delivered = metrics.ALERTS_DELIVERED.labels("card-redeem", "webhook")
    before = delivered._value.get()
    try:
        ids = [await deferred_from_coro(queue.raise_alert(an_alert(value=v), v, 60))
               for v in ("A", "B")]
        failures = metrics.ALERT_FAILURES.labels("webhook")
        failed_before = failures._value.get()
        await until(lambda: failures._value.get() >= failed_before + 3)  # refused, retried
        receiver = Receiver()
        listening = reactor.listenTCP(port, server.Site(receiver), interface="127.0.0.1")
        try:
            await until(lambda: len(receiver.posts) == 2)
            await deferLater(reactor, 0.3, lambda: None)  # nothing more comes
            assert len(receiver.posts) == 2
        finally:
            await listening.stopListening()
    finally:
        await service.stop()
    assert [h["x-tillgate-alert-id"] for _, h in receiver.posts] == ids
    for body, headers in receiver.posts:
        assert verify_signature(SECRET.encode(), body, headers["x-tillgate-signature"])
        assert headers["content-type"] == "application/json"
        payload = json.loads(body)
        assert payload["rule"] == "card-redeem" and CARD not in body.decode()
    assert await deferred_from_coro(queue.pending("webhook")) == 0
    assert delivered._value.get() == before + 2


@pytest_twisted.ensureDeferred
async def test_a_restart_while_the_receiver_is_down_loses_nothing(store, monkeypatch):
    port = free_port()
    config = webhook_config(port, monkeypatch)
    queue = AlertQueue(store)
    first = AlertService(reactor, config, lambda: queue)
    failures = metrics.ALERT_FAILURES.labels("webhook")
    before = failures._value.get()
    await first.start()
    await deferred_from_coro(queue.raise_alert(an_alert(), "X", 60))
    await until(lambda: failures._value.get() > before)
    await first.stop()  # the gateway goes away with the alert read but not delivered
    assert await deferred_from_coro(queue.pending("webhook")) == 1
    receiver = Receiver(codes=[503])  # up, but failing once more
    listening = reactor.listenTCP(port, server.Site(receiver), interface="127.0.0.1")
    second = AlertService(reactor, config, lambda: AlertQueue(store))
    await second.start()
    try:
        await until(lambda: len(receiver.posts) == 2)
        await until(lambda: _pending_group(queue, "webhook") == 0)
        await deferLater(reactor, 0.2, lambda: None)
    finally:
        await second.stop()
        await listening.stopListening()
    assert len(receiver.posts) == 2  # one 503, one 200: delivered once
    assert receiver.posts[0][0] == receiver.posts[1][0]


def test_backoff_doubles_to_its_maximum_and_resets():
    b = Backoff(0.5, 3.0)
    assert [b.failed() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.succeeded()
    assert b.failed() == 0.5


@pytest_twisted.ensureDeferred
async def test_log_sink_writes_a_masked_line(store, caplog):
    config = alert_config({"log": True})
    queue = AlertQueue(store)
    service = AlertService(reactor, config, lambda: queue)
    await service.start()
    try:
        with caplog.at_level(logging.WARNING, logger="tillgate.alerts"):
            await deferred_from_coro(queue.raise_alert(an_alert(), "Y", 60))
            await until(lambda: any("ALERT" in r.getMessage() for r in caplog.records))
    finally:
        await service.stop()
    [line] = [r.getMessage() for r in caplog.records if "ALERT" in r.getMessage()]
    assert "card-redeem" in line and "603953*********0123" in line and CARD not in line


# -- e-mail through a real SMTP server ------------------------------------------------------------

class MailBox:
    def __init__(self):
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"alerts"
          and auth_data.password == b"smtp-pass")
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server(tmp_path):
    files = make_tls_files(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)
    box = MailBox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port(), tls_context=context,
                            require_starttls=True, authenticator=_authenticator,
                            auth_require_tls=True)
    controller.start()
    yield controller, box, files
    controller.stop()


@pytest_twisted.ensureDeferred
async def test_email_to_head_office_and_merchant_over_starttls_with_auth(store, smtp_server,
                                                                         monkeypatch):
    controller, box, files = smtp_server
    monkeypatch.setenv("TG_TEST_SMTP_PASSWORD", "smtp-pass")
    config = alert_config(
        {"log": False, "email": {"to": ["ho@example.com"], "merchant": True,
                                 "retry_initial_ms": 50}},
        email={"host": "127.0.0.1", "port": controller.port, "tls": "starttls",
               "ca_file": str(files.ca), "username": "alerts",
               "password_env": "TG_TEST_SMTP_PASSWORD", "from": "tillgate@example.com"})
    queue = AlertQueue(store)
    service = AlertService(reactor, config, lambda: queue)
    await service.start()
    try:
        await deferred_from_coro(queue.raise_alert(an_alert(), "Z", 60))
        await until(lambda: len(box.messages) == 1)
        await until(lambda: _pending_group(queue, "email") == 0)
    finally:
        await service.stop()
    sender, rcpts, content = box.messages[0]
    assert sender == "tillgate@example.com"
    assert rcpts == ["ho@example.com", "store1@example.com"]
    msg = message_from_bytes(content)
    assert "card-redeem" in msg["Subject"] and msg["X-Tillgate-Alert-Id"]
    assert CARD.encode() not in content and b"603953*********0123" in content


@pytest_twisted.ensureDeferred
async def test_email_with_a_wrong_password_is_retried_not_lost(store, smtp_server, monkeypatch):
    controller, box, files = smtp_server
    monkeypatch.setenv("TG_TEST_SMTP_PASSWORD", "wrong")
    config = alert_config(
        {"log": False, "email": {"to": ["ho@example.com"], "retry_initial_ms": 50}},
        email={"host": "127.0.0.1", "port": controller.port, "tls": "starttls",
               "ca_file": str(files.ca), "username": "alerts",
               "password_env": "TG_TEST_SMTP_PASSWORD"})
    queue = AlertQueue(store)
    service = AlertService(reactor, config, lambda: queue)
    failures = metrics.ALERT_FAILURES.labels("email")
    before = failures._value.get()
    await service.start()
    try:
        await deferred_from_coro(queue.raise_alert(an_alert(), "W", 60))
        await until(lambda: failures._value.get() >= before + 2)
    finally:
        await service.stop()
    assert box.messages == []
    assert _pending_group(queue, "email") == 1


def _pending_group(queue: AlertQueue, group: str) -> int:
    import redis

    client = redis.Redis.from_url(queue.store.url)
    try:
        return int(client.xpending("{alerts}:q", group)["pending"])
    finally:
        client.close()


def test_alert_sections_are_validated_with_paths(monkeypatch):
    from gateway.config.model import ConfigError

    monkeypatch.delenv("TG_NOT_SET", raising=False)
    with pytest.raises(ConfigError) as e:
        alert_config({"webhook": {"url": "ftp://x", "secret": "literal", "timeout": 0},
                      "email": {"to": [], "merchant": False}, "bogus": 1},
                     email={"password_env": "TG_NOT_SET", "tls": "maybe"})
    errors = "\n".join(e.value.errors)
    for path in ("alerts.webhook.url", "alerts.webhook.secret: secrets are never written",
                 "alerts.webhook.timeout", "alerts.email.to", "alerts.bogus",
                 "email.password_env", "email.tls"):
        assert path in errors, errors


@pytest_twisted.ensureDeferred
async def test_a_service_stopped_right_after_its_start_stops(store):
    service = AlertService(reactor, alert_config({"log": True}), lambda: AlertQueue(store))
    await service.start()
    await service.stop()  # a gateway whose next service failed to start does exactly this


@pytest_twisted.ensureDeferred
async def test_overdraft_advice_and_refused_reversal_raise_one_alert_each(store):
    from test_ledger_support import Ledger, ledger_config

    from protocols.model import Op, Request

    ledger = Ledger(ledger_config(), store)
    card = await ledger.issue("gift", activate=500)
    advice = ledger.request(Op.REDEEM, card, 800, advice=True)
    assert (await ledger.processor.submit(advice)).code == "00"
    again = Request(op=Op.REDEEM, card=card, amount=800, advice=True, terminal=advice.terminal,
                    merchant=advice.merchant, key=advice.key)
    assert (await ledger.processor.submit(again)).code == "00"  # a repeat: no second alert
    load_key = ledger.key()
    await ledger.send(Op.RELOAD, card, 1000, key=load_key)
    await ledger.send(Op.REDEEM, card, 600)
    assert (await ledger.send(Op.REVERSAL, card, original_key=load_key)).code == "12"
    entries = await deferred_from_coro(store.client.xrange("{alerts}:q"))
    alerts = [Alert.from_json(fields[b"a"]) for _, fields in entries]
    assert [(a.rule, a.amount) for a in alerts] == [("advice-overdraft", -300),
                                                    ("reversal-refused", 0)]
    assert "spent" in alerts[1].message and card not in alerts[1].to_json()


@pytest_twisted.ensureDeferred
async def test_webhook_over_https_checks_the_receiver_certificate(store, tmp_path, monkeypatch):
    files = make_tls_files(tmp_path)
    receiver = Receiver()
    port = free_port()
    listening = reactor.listenSSL(
        port, server.Site(receiver),
        server_tls_options(files.cert.read_bytes(), files.key.read_bytes()), interface="127.0.0.1")
    monkeypatch.setenv("TG_TEST_HOOK_SECRET", SECRET)
    config = alert_config({"log": False, "webhook": {
        "url": f"https://localhost:{port}/hook", "secret_env": "TG_TEST_HOOK_SECRET",
        "ca_file": str(files.ca), "retry_initial_ms": 50}})
    queue = AlertQueue(store)
    service = AlertService(reactor, config, lambda: queue)
    await service.start()
    try:
        await deferred_from_coro(queue.raise_alert(an_alert(), "S", 60))
        await until(lambda: len(receiver.posts) == 1)
    finally:
        await service.stop()
        await listening.stopListening()
    body, headers = receiver.posts[0]
    assert verify_signature(SECRET.encode(), body, headers["x-tillgate-signature"])


@pytest_twisted.ensureDeferred
async def test_email_over_implicit_tls(store, tmp_path):
    files = make_tls_files(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)
    box = MailBox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port(), ssl_context=context)
    controller.start()
    try:
        config = alert_config(
            {"log": False, "email": {"to": ["ho@example.com"], "merchant": False}},
            email={"host": "127.0.0.1", "port": controller.port, "tls": "ssl",
                   "ca_file": str(files.ca)})
        queue = AlertQueue(store)
        service = AlertService(reactor, config, lambda: queue)
        await service.start()
        try:
            await deferred_from_coro(queue.raise_alert(an_alert(), "I", 60))
            await until(lambda: len(box.messages) == 1)
        finally:
            await service.stop()
    finally:
        controller.stop()
    assert box.messages[0][1] == ["ho@example.com"]

"""E-cards (docs/ecards.md) on a gateway running in the test process, over real HTTP, a real
redis-server, the back office's SQLite file and a real SMTP server (aiosmtpd): the e-mail
parsed, its QR code and its Code 128 barcode decoded back to the card number; an order asked
again answers the same order; a delivery scheduled for later waits for its time (a moved clock);
an SMTP server down then back delivers once; a 5xx is a permanent failure shown to the operator;
a resend; a send cut short by a stop is sent once."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import logging
import re
import time
import tomllib
import uuid
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import pytest_twisted
import zxingcpp
from aiosmtpd.controller import Controller
from PIL import Image
from portalclient import Clock
from test_admin_cards import call
from test_admin_issue import CRM, SHOP, TOKENS  # the shop's and the CRM's admin tokens
from twisted.internet import reactor
from twisted.internet.task import deferLater

from gateway.backoffice import ecards as rows
from gateway.config.diff import changes, needs_restart
from gateway.config.model import ConfigError, parse_config
from gateway.embedded_redis import free_port
from gateway.issuance.ecards import ecard_tag
from gateway.issuance.realtime import order_key
from gateway.ledger.cards import show_card
from gateway.metrics import families as metrics
from gateway.reactor import deferred_from_coro
from protocols.model import Op, Request

CONFIG = Path(__file__).resolve().parent.parent / "config" / "tillgate.toml"


def config_extra(smtp_port: int) -> str:
    return TOKENS + f"""
[email]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "cards@example.com"
timeout = 5

[ecards]
member_url = "https://cards.example.com/m/"
poll_seconds = 3600        # the tests move the clock and run the queue themselves
retry_first_seconds = 60
max_attempts = 5
"""


class MailBox:
    """What a real SMTP server was given; `refuse` answers RCPT with that reply instead."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.refuse: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp_port():
    return free_port()


@pytest.fixture
def mailbox(smtp_port):
    box = MailBox()
    controller = Controller(box, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture
def tokens(monkeypatch):
    monkeypatch.setenv("TG_TEST_SHOP", SHOP)
    monkeypatch.setenv("TG_TEST_CRM", CRM)


async def until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await deferLater(reactor, 0.02, lambda: None)


def order_body(**changes) -> dict:
    body = {"program": "secure", "amount": 2500, "recipient_name": "Ann <Lee>",
            "recipient_email": "ann@example.com", "sender_name": "Bob",
            "message": "Happy birthday! <b>not bold</b>"}
    body.update(changes)
    return body


async def order(port: int, body: dict, key: str | None, token: str = SHOP):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await call(port, "/v1/ecards", body, token, headers)


def get(port: int, path: str, token: str = SHOP) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


class Shop:
    """A gateway in this process, its clock for the e-card queue, and its admin port."""

    def __init__(self, gw):
        self.gw = gw.gateway
        self.port = self.gw.http.port.getHost().port
        self.clock = Clock()
        self.gw.ecards.clock = self.clock

    async def engine(self):
        return await deferred_from_coro(self.gw.backoffice.engine())

    async def row(self, order_id: str) -> rows.EcardRow:
        found = await deferred_from_coro(rows.get(await self.engine(), order_id))
        assert found is not None
        return found

    async def run_queue(self) -> None:
        await deferred_from_coro(self.gw.ecards.run_once())

    async def state_is(self, order_id: str, state: str) -> None:
        async def reached() -> bool:
            return (await self.row(order_id)).state == state
        await until(reached)


async def shop(factory, smtp_port: int) -> Shop:
    return Shop(await factory(extra=config_extra(smtp_port)))


def images(msg: EmailMessage) -> dict[str, bytes]:
    return {part.get_filename(): part.get_content() for part in msg.walk()
            if part.get_content_type() == "image/png"}


def decoded(png: bytes) -> list[tuple[str, str]]:
    return [(r.text, r.format.name) for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


@pytest_twisted.ensureDeferred
async def test_the_email_has_both_parts_and_its_codes_decode_to_the_card(
        tillgate_inprocess_factory, tokens, mailbox, smtp_port, caplog):
    caplog.set_level(logging.INFO)
    s = await shop(tillgate_inprocess_factory, smtp_port)
    status, answer = await order(s.port, order_body(), f"mail-{uuid.uuid4()}")
    assert status == 201, answer
    ecard = answer["ecard"]
    await s.state_is(ecard["id"], "sent")
    [msg] = mailbox.messages
    assert msg["To"].addresses[0].addr_spec == "ann@example.com"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    card = re.search(r"Card number: (\S+)", text).group(1)
    pin = re.search(r"PIN: (\d+)", text).group(1)
    assert card[-4:] == ecard["card"][-4:] and card != ecard["card"]  # the answer is masked
    assert len(pin) == 4 and f">{pin}<" in html and card in html
    assert "25.00" in text and "25.00" in html
    assert "https://cards.example.com/m/" in text and 'href="https://cards.example.com/m/"' in html
    # the message and the names are text in the HTML part, never markup
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html and "<b>not bold</b>" not in html
    assert "Ann &lt;Lee&gt;" in html and "<b>not bold</b>" in text
    codes = images(msg)
    assert decoded(codes["card-qr.png"]) == [(card, "QRCode")]
    assert decoded(codes["card-barcode.png"]) == [(card, "Code128")]
    for cid in re.findall(r'src="cid:([^"]+)"', html):  # the HTML refers to both images
        assert any(part["Content-ID"] == f"<{cid}>" for part in msg.walk())
    # the card is the one the ledger issued and loaded; the PIN is no longer kept
    view = await deferred_from_coro(show_card(s.gw.store_service.store, card))
    assert view.status == "active" and view.balance == 2500 and view.program == "secure"
    row = await s.row(ecard["id"])
    assert row.pin_sealed is None and row.sends == 1 and card not in row.card_sealed
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "e-card" in logged and card not in logged  # PINs in logs: the pinguard plugin


@pytest_twisted.ensureDeferred
async def test_the_same_key_answers_the_same_order_never_a_second_card(
        tillgate_inprocess_factory, tokens, mailbox, smtp_port):
    s = await shop(tillgate_inprocess_factory, smtp_port)
    key = f"idem-{uuid.uuid4()}"
    ordered = metrics.REGISTRY.get_sample_value("tillgate_ecards_ordered_total",
                                                {"program": "gift"}) or 0.0
    first = await order(s.port, order_body(program="gift"), key)
    again = await order(s.port, order_body(program="gift"), key)
    assert first[0] == 201 and again[0] == 200
    assert again[1]["ecard"]["id"] == first[1]["ecard"]["id"]
    assert again[1]["ecard"]["card"] == first[1]["ecard"]["card"]
    assert metrics.REGISTRY.get_sample_value("tillgate_ecards_ordered_total",
                                             {"program": "gift"}) == ordered + 1
    other = await order(s.port, order_body(program="gift", amount=3000), key)
    assert other[0] == 409
    await s.state_is(first[1]["ecard"]["id"], "sent")
    await s.run_queue()
    assert len(mailbox.messages) == 1
    # refusals, before anything is issued
    assert (await order(s.port, order_body(), None))[0] == 400
    assert (await order(s.port, order_body(), "k", CRM))[0] == 403
    for bad in ({"amount": 0}, {"amount": 12.5}, {"recipient_email": "nobody"},
                {"program": "nope"}, {"colour": "red"}, {"sender_name": ""},
                {"deliver_at": "tomorrow"}):
        status, answer = await order(s.port, order_body(**bad), f"bad-{uuid.uuid4()}")
        assert status == 400 and answer["error"], bad
    status, answer = await order(s.port, order_body(program="gift", amount=100001),
                                 f"big-{uuid.uuid4()}")
    assert status == 422 and answer["code"] == "61"  # over the program's max_balance


@pytest_twisted.ensureDeferred
async def test_a_scheduled_delivery_waits_for_its_time(tillgate_inprocess_factory, tokens,
                                                       mailbox, smtp_port):
    s = await shop(tillgate_inprocess_factory, smtp_port)
    birthday = int(s.clock.now) + 86400
    status, answer = await order(s.port, order_body(deliver_at=birthday),
                                 f"birthday-{uuid.uuid4()}")
    assert status == 201
    order_id = answer["ecard"]["id"]
    await s.run_queue()
    row = await s.row(order_id)
    assert row.state == "queued" and row.attempts == 0 and not mailbox.messages
    assert row.pin_sealed is not None  # kept, sealed, until it is delivered
    s.clock.now = birthday - 1
    await s.run_queue()
    assert not mailbox.messages
    s.clock.now = birthday + 1
    await s.run_queue()
    assert (await s.row(order_id)).state == "sent" and len(mailbox.messages) == 1
    assert (await s.row(order_id)).pin_sealed is None


@pytest_twisted.ensureDeferred
async def test_smtp_down_then_back_delivers_once(tillgate_inprocess_factory, tokens,
                                                 smtp_port):
    s = await shop(tillgate_inprocess_factory, smtp_port)  # nothing listens on smtp_port yet
    status, answer = await order(s.port, order_body(), f"down-{uuid.uuid4()}")
    assert status == 201
    order_id = answer["ecard"]["id"]

    async def tried() -> bool:
        return (await s.row(order_id)).last_error is not None
    await until(tried)
    row = await s.row(order_id)
    assert row.state == "queued" and row.attempts == 1 and "refused" in row.last_error.lower()
    assert row.next_t >= int(s.clock.now) + 60  # back-off
    await s.run_queue()
    assert s.gw.ecards.health() == {"ecards": "up", "ecards_due": 1}
    s.clock.now += 31 * 60  # past stuck_minutes: the queue says so
    await s.run_queue()
    assert s.gw.ecards.health()["ecards"] == "stuck"
    assert s.gw.health()[1]["ecards"] == "stuck"  # /healthz, never a 503 for it
    assert metrics.REGISTRY.get_sample_value("tillgate_ecards_oldest_due_seconds") > 1800
    row = await s.row(order_id)
    assert row.state == "queued" and row.attempts == 2
    box = MailBox()
    controller = Controller(box, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        await s.run_queue()  # not due yet
        assert not box.messages
        s.clock.now += 121  # the second try's back-off: twice the first
        await s.run_queue()
        await s.run_queue()
        s.clock.now += 3600
        await s.run_queue()
        assert len(box.messages) == 1
        row = await s.row(order_id)
        assert row.state == "sent" and row.attempts == 3 and row.sends == 1
        assert s.gw.ecards.health() == {"ecards": "up", "ecards_due": 0}
    finally:
        controller.stop()


@pytest_twisted.ensureDeferred
async def test_a_5xx_is_a_permanent_failure_shown_then_resent(tillgate_inprocess_factory,
                                                              tokens, mailbox, smtp_port):
    s = await shop(tillgate_inprocess_factory, smtp_port)
    mailbox.refuse = "550 5.1.1 no such mailbox"
    status, answer = await order(s.port, order_body(), f"bounce-{uuid.uuid4()}")
    order_id = answer["ecard"]["id"]
    await s.state_is(order_id, "failed")
    status, listed = await deferred_from_coro(
        asyncio.to_thread(get, s.port, "/v1/ecards?state=failed&limit=500"))
    assert status == 200
    [shown] = [e for e in listed["ecards"] if e["id"] == order_id]
    assert shown["attempts"] == 1 and "550" in shown["last_error"]
    assert (await s.row(order_id)).pin_sealed is not None  # not delivered: still held
    # a resend once the address is fixed on the server's side
    mailbox.refuse = None
    resent = await call(s.port, f"/v1/ecards/{order_id}/resend", {}, SHOP)
    assert resent[0] == 200
    await s.state_is(order_id, "sent")
    assert len(mailbox.messages) == 1
    # a resend of a sent one: a second e-mail with the same card and the same PIN, drawn again
    resent = await call(s.port, f"/v1/ecards/{order_id}/resend", {}, SHOP)
    assert resent[0] == 200
    await s.state_is(order_id, "sent")
    first, second = mailbox.messages
    body = [m.get_body(("plain",)).get_content() for m in (first, second)]
    assert re.search(r"PIN: \d+", body[0]).group(0) == re.search(r"PIN: \d+", body[1]).group(0)
    assert re.search(r"Card number: \S+", body[0]).group(0) == \
        re.search(r"Card number: \S+", body[1]).group(0)
    assert first["Message-ID"] != second["Message-ID"]
    assert (await s.row(order_id)).sends == 2
    assert (await call(s.port, "/v1/ecards/nope/resend", {}, SHOP))[0] == 404
    assert (await call(s.port, f"/v1/ecards/{order_id}/resend", {}, CRM))[0] == 403


@pytest_twisted.ensureDeferred
async def test_a_send_cut_short_by_a_stop_is_sent_once(tillgate_inprocess_factory, tokens,
                                                       mailbox, smtp_port):
    s = await shop(tillgate_inprocess_factory, smtp_port)
    birthday = int(s.clock.now) + 600
    status, answer = await order(s.port, order_body(deliver_at=birthday),
                                 f"cut-{uuid.uuid4()}")
    order_id = answer["ecard"]["id"]
    # a gateway claimed the try and stopped before the SMTP server took the message
    engine = await s.engine()
    assert await deferred_from_coro(rows.claim(engine, order_id, birthday, birthday + 300))
    s.clock.now = birthday + 10
    await s.run_queue()
    assert not mailbox.messages  # its lease has not run out: it may still be sending
    s.clock.now = birthday + 301
    await s.run_queue()
    await s.run_queue()
    assert len(mailbox.messages) == 1
    row = await s.row(order_id)
    assert row.state == "sent" and row.attempts == 2


FIRST_USE = """
[programs.egift]
kind = "gift"
currency = "840"
card_length = 16
prefix = "605009"
ecard_load = "first_use"
"""


@pytest_twisted.ensureDeferred
async def test_first_use_program_issues_a_pre_valued_card_the_till_activates(
        tillgate_inprocess_factory, tokens, mailbox, smtp_port):
    s = Shop(await tillgate_inprocess_factory(extra=config_extra(smtp_port) + FIRST_USE))
    status, answer = await order(s.port, order_body(program="egift", amount=4000),
                                 f"first-use-{uuid.uuid4()}")
    assert status == 201 and answer["ecard"]["load"] == "first_use"
    await s.state_is(answer["ecard"]["id"], "sent")
    text = mailbox.messages[0].get_body(("plain",)).get_content()
    card = re.search(r"Card number: (\S+)", text).group(1)
    store = s.gw.store_service.store
    view = await deferred_from_coro(show_card(store, card))
    assert view.status == "issued" and view.balance == 0 and view.face_value == 4000
    # the first till to meet it activates it with its face value (HOST-SPEC 930060)
    result = await s.gw.processor.submit(Request(
        op=Op.ACTIVATE_PREVALUED, terminal="TILL0001", merchant="STORE0000000001", card=card,
        amount=4000, key=f"till-{uuid.uuid4()}"))
    assert result.approved, result
    view = await deferred_from_coro(show_card(store, card))
    assert view.status == "active" and view.balance == 4000


@pytest_twisted.ensureDeferred
async def test_the_key_stays_bound_to_its_order_after_the_claim_expires(
        tillgate_inprocess_factory, tokens, mailbox, smtp_port):
    s = await shop(tillgate_inprocess_factory, smtp_port)
    key = f"long-{uuid.uuid4()}"
    first = await order(s.port, order_body(program="gift"), key)
    assert first[0] == 201
    # the claim in Redis lives as long as request records; then the row holds the key
    tag = ecard_tag("token:shop", key)
    await deferred_from_coro(s.gw.store_service.store.command("DEL", order_key(tag)))
    assert first[1]["ecard"]["id"] == tag
    assert (await order(s.port, order_body(program="gift", amount=999), key))[0] == 409
    again = await order(s.port, order_body(program="gift"), key)
    assert again[0] == 200 and again[1]["ecard"]["card"] == first[1]["ecard"]["card"]


def test_a_reload_applies_ecards_timings_and_refuses_enabled():
    old = parse_config(tomllib.loads(CONFIG.read_text()), "t")
    timings = replace(old, ecards=replace(old.ecards, poll_seconds=1, stuck_minutes=5))
    assert needs_restart(old, timings) == []
    assert changes(old, timings) == {"settings": {"changed": ["ecards"]}}
    off = replace(old, ecards=replace(old.ecards, enabled=False))
    assert needs_restart(old, off) == ["ecards.enabled: changed; needs a restart"]


def test_config_errors_name_their_path():
    data = tomllib.loads(CONFIG.read_text())
    data["ecards"] = {"member_url": "ftp://x", "retry_first_seconds": 600,
                      "retry_max_seconds": 60, "colour": "red"}
    data["programs"]["loyalty"]["ecard_load"] = "first_use"
    with pytest.raises(ConfigError) as raised:
        parse_config(data, "t")
    text = str(raised.value)
    for path in ("ecards.member_url", "ecards.retry_max_seconds", "ecards.colour",
                 "programs.loyalty.ecard_load"):
        assert path in text, text

"""Card batches in the portal over real HTTP (a gateway in the test process, real Redis, the
maildir of the embedded mail default): a bad row reported by its line number with nothing
stored, a file larger than a form confirmed with the e-mailed code and applied in the
background with its progress, a wrong, expired, exhausted and used code, the body limits, and
the roles."""

from __future__ import annotations

import email
import re
import time
from pathlib import Path

import pytest_twisted
from portalclient import Answer, Client, make_operator, web
from test_portal_cards import journal, state
from test_portal_security import logged_in, start
from twisted.internet import reactor
from twisted.internet.task import deferLater

from gateway.issuance.importfile import ImportBatch
from gateway.ledger import cards
from gateway.reactor import deferred_from_coro
from gateway.web.portal import cardbatch
from protocols.carddata import generate_card_number

IMPORTS = '[imports]\nconfirm_to = ["approver@example.com"]\nmax_tries = 3\n'
DIGEST = re.compile(r'name="batch" value="([0-9a-f]{64})"')


def numbers(gw, count: int) -> list[str]:
    gift = gw.gateway.config.programs["gift"]
    drawn: set[str] = set()
    while len(drawn) < count:
        drawn.add(generate_card_number(gift.prefix, gift.card_length_max, gift.luhn))
    return sorted(drawn)


def csv_of(rows: list[str]) -> bytes:
    return ("card,program,pin,amount\n" + "".join(r + "\n" for r in rows)).encode()


async def upload(client: Client, data: bytes, program: str = "") -> Answer:
    page = await web(client.get, "/ui/batches")
    return await web(client.upload, "/ui/batches", {"csrf": page.csrf, "program": program},
                     {"file": ("cards.csv", data)})


def mailed_codes(gw) -> list[str]:
    """Every batch code in the maildir, oldest first."""
    new = Path(gw.gateway.config.email.maildir) / "new"
    files = sorted(new.iterdir(), key=lambda p: p.stat().st_mtime) if new.exists() else []
    found = []
    for f in files:
        body = email.message_from_bytes(f.read_bytes()).get_payload()
        match = re.search(r"Confirmation code: (\d{8})", body)
        if match:
            found.append(match.group(1))
    return found


async def send_code(client: Client, digest: str, code: str, csrf: str) -> Answer:
    return await web(client.post, "/ui/batches/confirm",
                     {"csrf": csrf, "batch": digest, "code": code})


async def until_done(client: Client, digest: str, seconds: float = 120) -> Answer:
    """The progress page, asked again (as its refresh does) until the batch is done."""
    deadline = time.monotonic() + seconds
    while True:
        page = await web(client.get, f"/ui/batches/progress?b={digest}")
        assert page.status == 200, page.body
        if 'id="state">done' in page.body:
            return page
        assert "Resume" not in page.body, page.body  # stopped
        assert time.monotonic() < deadline, "the batch did not finish in time"
        await deferLater(reactor, 0.2, lambda: None)


async def batch_state(gw, digest: str) -> dict[str, str]:
    from gateway.issuance.importbatch import state_of

    return await deferred_from_coro(state_of(gw.gateway.store_service.store,
                                             ImportBatch(digest, ())))


@pytest_twisted.ensureDeferred
async def test_a_bad_row_is_reported_by_line_and_nothing_is_stored(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, extra=IMPORTS)
    _o, secret = await make_operator(portal, "bat@example.com")
    client = await logged_in(port, "bat@example.com", secret, clock)
    good = numbers(gw, 3)
    answer = await upload(client, csv_of([f"{good[0]},gift,,5.00", f"{good[1]},gift,,5.0.0",
                                          f"{good[2]},nosuch,,", f"{good[0]},gift,,"]))
    assert answer.status == 400 and "Nothing was imported: 3 problem(s)" in answer.body
    for line in ("line 3:", "line 4:", "line 5:"):
        assert line in answer.body
    assert "line 2:" not in answer.body and good[0] not in answer.body
    assert mailed_codes(gw) == []
    for card in good:
        assert await state(gw, card) == {}


@pytest_twisted.ensureDeferred
async def test_a_large_batch_confirmed_with_the_mailed_code_applies_once(
        tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, extra=IMPORTS)
    op, secret = await make_operator(portal, "bea@example.com")
    client = await logged_in(port, "bea@example.com", secret, clock)
    numbers_ = numbers(gw, 2600)
    rows = [f"{n},gift,,{'7.50' if i < 5 else ''}" for i, n in enumerate(numbers_)]
    data = csv_of(rows)
    assert len(data) > 64 * 1024  # more than any other portal form may send
    asked = await upload(client, data, program="gift")
    assert asked.status == 200 and "gift: 2600 card(s), 37.50 to load" in asked.body, asked.body
    digest = DIGEST.search(asked.body).group(1)
    [code] = mailed_codes(gw)
    wrong = await send_code(client, digest, f"{(int(code) + 1) % 10**8:08d}", asked.csrf)
    assert wrong.status == 400 and "2 tries left" in wrong.body
    assert await state(gw, numbers_[0]) == {}  # nothing before the code
    confirmed = await send_code(client, digest, code, asked.csrf)
    assert (confirmed.status, confirmed.location) == (303, f"/ui/batches/progress?b={digest}")
    done = await until_done(client, digest)
    assert "2600 of 2600" in done.body and "refresh" not in done.body
    first, last = await state(gw, numbers_[0]), await state(gw, numbers_[-1])
    assert (first["status"], first["bal"]) == ("active", "750")
    assert last["status"] == "issued"
    [activation] = await journal(gw, numbers_[0])
    assert activation.terminal == f"portal:{op.id}"
    redis = gw.gateway.store_service.store.client
    assert not await deferred_from_coro(redis.exists(cardbatch.held_key(digest)))  # PINs gone
    used = await send_code(client, digest, code, asked.csrf)  # the code a second time
    assert used.status == 409 and "code is used" in used.body
    again = await web(client.post, "/ui/batches/apply", {"csrf": asked.csrf, "batch": digest})
    assert again.status == 400  # done: its file is gone, there is nothing to resume
    reupload = await upload(client, data, program="gift")  # the same file: nothing twice
    assert reupload.location == f"/ui/batches/progress?b={digest}"
    await until_done(client, digest)
    assert not await deferred_from_coro(redis.exists(cardbatch.held_key(digest)))
    assert len(await journal(gw, numbers_[0])) == 1 and len(mailed_codes(gw)) == 1


@pytest_twisted.ensureDeferred
async def test_a_stopped_run_says_why_and_resumes(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, extra=IMPORTS)
    _o, secret = await make_operator(portal, "gus@example.com")
    client = await logged_in(port, "gus@example.com", secret, clock)
    batch = numbers(gw, 3)
    asked = await upload(client, csv_of([f"{n},gift,,1.00" for n in batch]))
    digest = DIGEST.search(asked.body).group(1)
    store = gw.gateway.store_service.store
    gift = gw.gateway.config.programs["gift"]
    # between the code and the run, someone else creates the file's last card
    assert await deferred_from_coro(cards.issue_card(store, gift, batch[2]))
    confirmed = await send_code(client, digest, mailed_codes(gw)[-1], asked.csrf)
    deadline = time.monotonic() + 30
    while True:
        page = await web(client.get, f"/ui/batches/progress?b={digest}")
        if "Resume" in page.body:
            break
        assert time.monotonic() < deadline, page.body
        await deferLater(reactor, 0.1, lambda: None)
    assert confirmed.status == 303 and "line 4: card" in page.body and batch[2] not in page.body
    assert await state(gw, batch[0]) == {}  # stopped before creating any
    await deferred_from_coro(store.command("DEL", cards.state_key(cards.card_id(batch[2]))))
    resumed = await web(client.post, "/ui/batches/apply", {"csrf": page.csrf, "batch": digest})
    assert resumed.location == f"/ui/batches/progress?b={digest}"
    await until_done(client, digest)
    for n in batch:
        assert (await state(gw, n))["bal"] == "100"


@pytest_twisted.ensureDeferred
async def test_expired_exhausted_and_other_operators_codes(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, extra=IMPORTS)
    _a, secret = await make_operator(portal, "cy@example.com")
    _b, other_secret = await make_operator(portal, "di@example.com")
    client = await logged_in(port, "cy@example.com", secret, clock)
    other = await logged_in(port, "di@example.com", other_secret, clock)
    card = numbers(gw, 1)[0]
    data = csv_of([f"{card},gift,,"])
    asked = await upload(client, data)
    digest = DIGEST.search(asked.body).group(1)
    code = mailed_codes(gw)[-1]
    page = await web(other.get, "/ui/batches")
    refused = await send_code(other, digest, code, page.csrf)  # not the one who uploaded it
    assert refused.status == 400 and "No batch of yours" in refused.body
    redis = gw.gateway.store_service.store.client
    await deferred_from_coro(redis.pexpire(f"imp:{{{digest}}}", 1))  # the code's time is up
    await deferLater(reactor, 0.05, lambda: None)
    expired = await send_code(client, digest, code, asked.csrf)
    assert expired.status == 400 and "The code expired" in expired.body
    asked = await upload(client, data)  # a new code
    code = mailed_codes(gw)[-1]
    for left in ("2 tries", "1 try"):
        wrong = await send_code(client, digest, f"{(int(code) + 1) % 10**8:08d}", asked.csrf)
        assert left in wrong.body
    dropped = await send_code(client, digest, f"{(int(code) + 1) % 10**8:08d}", asked.csrf)
    assert dropped.status == 400 and "no tries are left" in dropped.body
    late = await send_code(client, digest, code, asked.csrf)  # the right one, too late
    assert late.status == 400 and await batch_state(gw, digest) == {}
    assert await state(gw, card) == {}


@pytest_twisted.ensureDeferred
async def test_body_limits_csrf_and_roles(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, extra=IMPORTS)
    _h, secret = await make_operator(portal, "ed@example.com")
    _s, staff_secret = await make_operator(portal, "fay@example.com", "staff",
                                           "STORE0000000001")
    client = await logged_in(port, "ed@example.com", secret, clock)
    page = await web(client.get, "/ui/batches")
    big = b"card,program,pin,amount\n" + b"x" * cardbatch.MAX_UPLOAD
    too_big = await web(client.upload, "/ui/batches", {"csrf": page.csrf}, {"file": ("a", big)})
    assert too_big.status == 413
    form_sized = await web(client.post, "/ui/cards", {"csrf": page.csrf, "card": "1" * 70_000})
    assert form_sized.status == 413  # every other route keeps the 64 KiB of a form
    no_csrf = await web(client.upload, "/ui/batches", {}, {"file": ("a", csv_of([]))})
    assert no_csrf.status == 403
    staff = await logged_in(port, "fay@example.com", staff_secret, clock)
    assert (await web(staff.get, "/ui/batches")).status == 403

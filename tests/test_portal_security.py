"""The portal's security over real HTTP, on a gateway in the test process (real Redis, real
sockets, the back office on SQLite and, where the SQL side matters, a real PostgreSQL):
two-step login, session fixation, CSRF, lock-out and its alert, the same answer for unknown and
known accounts, a TOTP code refused the second time, idle and absolute time-outs (the portal's
clock moved, never slept), logout everywhere, the e-mailed code through the maildir, and the
club rule on card lookups (58)."""

from __future__ import annotations

import email
import json
import logging
import re
import ssl
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_twisted
from portalclient import (
    PASSWORD,
    Client,
    Clock,
    code_for,
    login_code,
    login_password,
    make_operator,
    web,
)
from tls_material import make_tls_files
from twisted.internet.defer import succeed

from gateway.backoffice import operators as ops
from gateway.ledger import cards, cardviews, loyalty
from gateway.reactor import deferred_from_coro
from gateway.security.alerts.queue import STREAM
from gateway.web.portal import passwords
from protocols.carddata import generate_card_number

CLUB = """
[merchants.OTHERSTORE00001]
name = "Other Store"
terminals = ["OTHER001"]

[programs.club]
kind = "gift"
currency = "840"
prefix = "605001"
card_length = 16
merchants = ["OTHERSTORE00001"]
"""


async def start(factory, backoffice_url: str | None = None, extra: str = "", **limits: int):
    """A gateway in the test process; `limits` are [portal] settings. The suite's gateways share
    one Redis, so the portal's keys (limits, lock-outs, sessions) are cleared first: no test
    meets the login attempts of another."""
    if backoffice_url is not None:
        extra += f'\n[backoffice]\nurl = "{backoffice_url}"\n'
    if limits:
        extra += "\n[portal]\n" + "".join(f"{k} = {v}\n" for k, v in limits.items())
    gw = await factory(extra=extra)
    redis = gw.gateway.store_service.store.client
    stale = await deferred_from_coro(redis.keys("portal:*"))
    if stale:
        await deferred_from_coro(redis.delete(*stale))
    portal = gw.gateway.portal
    clock = Clock()
    portal.clock = clock
    return gw, portal, gw.gateway.http.port.getHost().port, clock


async def logged_in(port: int, email_address: str, secret: str, clock: Clock) -> Client:
    client = Client(port)
    answer = await web(login_password, client, email_address)
    assert (answer.status, answer.location) == (303, "/ui/login/code")
    answer = await web(login_code, client, code_for(secret, clock.now))
    assert (answer.status, answer.location) == (303, "/ui/"), answer.body
    return client


def without_tokens(body: str) -> str:
    return re.sub(r'value="[^"]*"', 'value=""', body)


@pytest_twisted.ensureDeferred
async def test_two_steps_with_a_new_session_id_at_each(tillgate_inprocess_factory,
                                                       backoffice_url):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, backoffice_url)
    _op, secret = await make_operator(portal, "Ann@Example.com")
    client = Client(port)
    assert (await web(client.get, "/ui/")).location == "/ui/login"  # not logged in
    form = await web(client.get, "/ui/login")
    planted = client.cookie  # what an attacker who fixed the victim's cookie would know
    assert planted and "HttpOnly" in form.cookies[0] and "SameSite=Strict" in form.cookies[0]
    answer = await web(client.post, "/ui/login", {"csrf": form.csrf, "email": "ann@example.com",
                                                  "password": PASSWORD})
    assert answer.location == "/ui/login/code"
    between = client.cookie
    assert between != planted
    assert (await web(client.get, "/ui/")).location == "/ui/login"  # half-way is not in
    answer = await web(login_code, client, code_for(secret, clock.now))
    assert answer.location == "/ui/"
    assert client.cookie not in (planted, between)
    home = await web(client.get, "/ui/")
    assert home.status == 200 and "Welcome, Ann" in home.body
    for old in (planted, between):  # neither earlier id opens anything now
        assert (await web(Client(port, old).get, "/ui/")).location == "/ui/login"
    operator = await deferred_from_coro(_operator(portal, "ann@example.com"))
    assert operator.last_login_t is not None


async def _operator(portal, address: str) -> ops.Operator:
    found = await ops.by_email(await portal.engine(), address)
    assert found is not None
    return found


@pytest_twisted.ensureDeferred
async def test_a_totp_code_is_taken_once(tillgate_inprocess_factory, backoffice_url):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, backoffice_url)
    _op, secret = await make_operator(portal, "bob@example.com")
    code = code_for(secret, clock.now)
    first = Client(port)
    await web(login_password, first, "bob@example.com")
    assert (await web(login_code, first, code)).location == "/ui/"
    second = Client(port)  # someone who saw the code, within the same 30 s
    await web(login_password, second, "bob@example.com")
    refused = await web(login_code, second, code)
    assert refused.status == 200 and "used already" in refused.body
    assert (await web(second.get, "/ui/")).location == "/ui/login"
    clock.advance(30)  # the next code works
    assert (await web(login_code, second, code_for(secret, clock.now))).location == "/ui/"


@pytest_twisted.ensureDeferred
async def test_csrf_token_required_on_every_post(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory)
    _op, secret = await make_operator(portal, "cat@example.com")
    stranger = Client(port)  # a login form posted without the form's token
    refused = await web(stranger.post, "/ui/login", {"email": "cat@example.com",
                                                     "password": PASSWORD})
    assert refused.status == 403 and "Form expired" in refused.body
    client = await logged_in(port, "cat@example.com", secret, clock)
    page = await web(client.get, "/ui/account")
    for fields in ({}, {"csrf": "x" * 43}, {"csrf": ""}):
        refused = await web(client.post, "/ui/account/logout-everywhere", fields)
        assert refused.status == 403
    other = await web(client.post, "/ui/cards", {"csrf": page.csrf, "card": "1"},
                      headers={"Origin": "https://evil.example"})
    assert other.status == 403 and "another site" in other.body
    assert (await web(client.get, "/ui/")).status == 200  # still logged in: nothing happened
    done = await web(client.post, "/ui/account/logout-everywhere", {"csrf": page.csrf})
    assert done.location == "/ui/login?why=everywhere"


@pytest_twisted.ensureDeferred
async def test_lockout_raises_an_alert_and_answers_like_a_wrong_password(
        tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, max_failures=3)
    _op, secret = await make_operator(portal, "dan@example.com")
    client = Client(port)
    answers = [await web(login_password, client, "dan@example.com", "wrong password 1234")
               for _ in range(3)]
    locked = await web(login_password, client, "dan@example.com")  # the right one, too late
    unknown = await web(login_password, client, "nobody@example.com")
    assert {a.status for a in [*answers, locked, unknown]} == {200}
    bodies = {without_tokens(a.body) for a in [*answers, locked, unknown]}
    assert len(bodies) == 1 and "Wrong e-mail address or password" in bodies.pop()
    redis = gw.gateway.store_service.store.client
    alerts = [json.loads(fields[b"a"]) for _id, fields in
              await deferred_from_coro(redis.xrange(STREAM))]
    lockouts = [a for a in alerts if a["rule"] == "portal_lockout"
                and a["value"] == "dan@example.com"]
    assert len(lockouts) == 1 and "3 failed logins" in lockouts[0]["detail"]
    await deferred_from_coro(redis.delete(*await deferred_from_coro(redis.keys("portal:l:*"))))
    assert (await web(login_password, client, "dan@example.com")).location == "/ui/login/code"


@pytest_twisted.ensureDeferred
async def test_unknown_account_costs_one_argon2_verification(tillgate_inprocess_factory,
                                                             monkeypatch):
    """No enumeration by timing: an unknown e-mail is verified against a dummy hash, the same
    argon2id work as a wrong password."""
    gw, portal, port, clock = await start(tillgate_inprocess_factory)
    await make_operator(portal, "eve@example.com")
    calls: list[str] = []
    real = passwords._hasher

    class Counting:  # the real hasher, each verification noted
        def verify(self, stored, password):
            calls.append(stored)
            return real.verify(stored, password)

    monkeypatch.setattr(passwords, "_hasher", Counting())
    await web(login_password, Client(port), "nobody@example.com")
    await web(login_password, Client(port), "eve@example.com", "a wrong password 1")
    assert len(calls) == 2 and calls[0] == passwords._DUMMY and calls[1] != passwords._DUMMY
    assert calls[0].split("$")[:4] == calls[1].split("$")[:4]  # same algorithm and cost


@pytest_twisted.ensureDeferred
async def test_idle_and_absolute_time_outs(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory)
    _op, secret = await make_operator(portal, "fay@example.com")
    client = await logged_in(port, "fay@example.com", secret, clock)
    clock.advance(29 * 60)
    assert (await web(client.get, "/ui/")).status == 200  # 29 idle minutes: still in
    clock.advance(31 * 60)
    assert (await web(client.get, "/ui/")).location == "/ui/login?why=timeout"
    assert client.cookie is None  # the cookie is cleared too

    clock.advance(60)
    client = await logged_in(port, "fay@example.com", secret, clock)
    for _ in range(12 * 3 - 1):  # busy all day: a request every 20 minutes, for 11h40
        clock.advance(20 * 60)
        assert (await web(client.get, "/ui/")).status == 200
    clock.advance(21 * 60)  # 12 h and 1 min after the login
    assert (await web(client.get, "/ui/")).location == "/ui/login?why=timeout"


@pytest_twisted.ensureDeferred
async def test_logout_everywhere_ends_the_other_sessions(tillgate_inprocess_factory,
                                                          backoffice_url):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, backoffice_url)
    _op, secret = await make_operator(portal, "gus@example.com")
    phone = await logged_in(port, "gus@example.com", secret, clock)
    clock.advance(30)
    desk = await logged_in(port, "gus@example.com", secret, clock)
    page = await web(desk.get, "/ui/account")
    assert (await web(desk.post, "/ui/account/logout-everywhere", {"csrf": page.csrf})
            ).location == "/ui/login?why=everywhere"
    assert (await web(phone.get, "/ui/cards")).location == "/ui/login?why=ended"
    assert (await web(desk.get, "/ui/")).location == "/ui/login"


@pytest_twisted.ensureDeferred
async def test_an_emailed_code_from_the_maildir(tillgate_inprocess_factory, backoffice_url,
                                                caplog):
    caplog.set_level(logging.INFO, "gateway.issuance.mailer")
    gw, portal, port, clock = await start(tillgate_inprocess_factory, backoffice_url)
    await make_operator(portal, "hal@example.com", factor="email")
    client = Client(port)
    answer = await web(login_password, client, "hal@example.com")
    assert answer.location == "/ui/login/code", answer.body
    maildir = Path(gw.gateway.config.email.maildir)
    assert maildir == gw.gateway.config.data_dir / "mail"  # no [email]: the embedded default
    code = read_code(maildir)
    said = [r.getMessage() for r in caplog.records if r.name == "gateway.issuance.mailer"]
    assert len(said) == 1 and f"written to {maildir}/new/" in said[0] and code not in said[0]
    page = await web(client.get, "/ui/login/code")
    assert "h***@example.com" in page.body
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert "not right" in (await web(client.post, "/ui/login/code",
                                     {"csrf": page.csrf, "code": wrong})).body
    assert (await web(client.post, "/ui/login/code", {"csrf": page.csrf, "code": code})
            ).location == "/ui/"


def read_code(maildir: Path) -> str:
    """The code in the newest message of the maildir (one file per message in new/)."""
    files = sorted((maildir / "new").iterdir(), key=lambda p: p.stat().st_mtime)
    assert files, f"no mail in {maildir}"
    message = email.message_from_bytes(files[-1].read_bytes())
    found = re.search(r"code is (\d{6})", message.get_payload())
    assert found, message.get_payload()
    return found.group(1)


@pytest_twisted.ensureDeferred
async def test_staff_refused_a_card_outside_their_merchants_club(tillgate_inprocess_factory,
                                                                 caplog):
    caplog.set_level(logging.DEBUG)
    gw, portal, port, clock = await start(tillgate_inprocess_factory, extra=CLUB)
    store = gw.gateway.store_service.store
    config = gw.gateway.config
    club, gift = config.programs["club"], config.programs["gift"]
    club_card = generate_card_number(club.prefix, 16, club.luhn)
    gift_card = generate_card_number(gift.prefix, gift.card_length_max, gift.luhn)
    for program, card in ((club, club_card), (gift, gift_card)):
        assert await deferred_from_coro(cards.issue_card(store, program, card))
    _s, staff_secret = await make_operator(portal, "ida@example.com", "staff",
                                           "STORE0000000001")
    _o, other_secret = await make_operator(portal, "jon@example.com", "staff",
                                           "OTHERSTORE00001")
    _h, head_secret = await make_operator(portal, "kim@example.com")

    async def lookup(client: Client, card: str):
        page = await web(client.get, "/ui/cards")
        return await web(client.post, "/ui/cards", {"csrf": page.csrf, "card": card})

    staff = await logged_in(port, "ida@example.com", staff_secret, clock)
    assert (await web(staff.get, "/ui/")).location == "/ui/staff"  # staff start at their desk
    refused = await lookup(staff, club_card)
    assert refused.status == 403 and "(58" in refused.body
    # Neither the number nor its masked form: the page's random CSRF token and the stylesheet's
    # hash could hold any four digits, so the last four alone would fail now and then.
    assert club_card not in refused.body and cards.mask_card(club_card) not in refused.body
    unknown_club = generate_card_number(club.prefix, 16, club.luhn)
    assert (await lookup(staff, unknown_club)).status == 403  # no hint whether it exists
    shown = await lookup(staff, gift_card)  # a program without a club: every merchant
    assert shown.status == 200 and "issued" in shown.body
    assert gift_card not in shown.body and cards.mask_card(gift_card) in shown.body
    for email_address, secret in (("jon@example.com", other_secret),
                                  ("kim@example.com", head_secret)):
        client = await logged_in(port, email_address, secret, clock)
        assert (await lookup(client, club_card)).status == 200
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for card in (club_card, gift_card, unknown_club):
        assert card not in logged  # masked everywhere
    assert PASSWORD not in logged


@pytest_twisted.ensureDeferred
async def test_lookup_by_barcode_and_qr_payload(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory)
    store = gw.gateway.store_service.store
    gift = gw.gateway.config.programs["gift"]
    card = generate_card_number(gift.prefix, gift.card_length_max, gift.luhn)
    assert await deferred_from_coro(cards.issue_card(store, gift, card))
    _op, secret = await make_operator(portal, "lea@example.com")
    client = await logged_in(port, "lea@example.com", secret, clock)
    day = loyalty.ProgramDays(gift.timezone).day(clock())
    # the suite's gateways share one Redis: other tests' lookups of gift cards count too
    before = (await deferred_from_coro(cardviews.views(store, "gift", day, day)))[day]
    for typed in (card, f"tillgate:card/{card}", f";{card}=2912101?"):
        page = await web(client.get, "/ui/cards")
        shown = await web(client.post, "/ui/cards", {"csrf": page.csrf, "card": typed})
        assert shown.status == 200 and cards.mask_card(card) in shown.body, typed
    page = await web(client.get, "/ui/cards")
    bad = await web(client.post, "/ui/cards", {"csrf": page.csrf, "card": "%B123^X"})
    assert bad.status == 400 and "not a card we can read" in bad.body
    # three cards shown: three staff views of the program today; the unreadable one is none
    seen = await deferred_from_coro(cardviews.views(store, "gift", day, day))
    assert seen[day] == {"staff": before["staff"] + 3, "member": before["member"]}


@pytest.mark.parametrize("path", ["/ui/", "/ui/cards", "/ui/account"])
def test_pages_need_a_login(path, tillgate_gateway):
    answer = Client(tillgate_gateway.ports["http"]).get(path)
    assert (answer.status, answer.location) == (303, "/ui/login")
    assert "default-src 'none'" in answer.headers["content-security-policy"]


@pytest_twisted.ensureDeferred
async def test_api_tokens_screen_for_head_office_only(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory)
    _h, head_secret = await make_operator(portal, "max@example.com")
    _s, staff_secret = await make_operator(portal, "ned@example.com", "merchant_manager",
                                           "STORE0000000001")
    manager = await logged_in(port, "ned@example.com", staff_secret, clock)
    assert (await web(manager.get, "/ui/tokens")).status == 403
    page = await web(manager.get, "/ui/account")
    assert (await web(manager.request, "POST", "/ui/tokens/create", {
        "csrf": page.csrf, "name": "x", "scope": "cards:read"})).status == 403

    head = await logged_in(port, "max@example.com", head_secret, clock)
    page = await web(head.get, "/ui/tokens")
    created = await web(head.post, "/ui/tokens/create", {"csrf": page.csrf, "name": "crm",
                                                         "scope": "cards:read"})
    secret = re.search(r'id="token-secret">([^<]+)<', created.body)
    assert created.status == 200 and secret, created.body
    token_id = re.search(r"Token (rt-[0-9a-f]+) created", created.body).group(1)
    assert secret.group(1) not in (await web(head.get, "/ui/tokens")).body  # shown once

    def api(secret_text: str) -> int:
        return Client(port).request("POST", "/v1/cards/show", headers={
            "Authorization": f"Bearer {secret_text}"}).status

    assert await web(api, secret.group(1)) == 400  # let in: the empty body is the problem
    switched = await web(head.post, "/ui/tokens/switch", {"csrf": page.csrf, "id": token_id,
                                                          "action": "disable"})
    assert switched.location == "/ui/tokens?done=disabled"
    assert await web(api, secret.group(1)) in (401, 403)  # refused from the next request


@pytest_twisted.ensureDeferred
async def test_with_tls_the_cookie_is_secure_and_host_only(tillgate_inprocess_factory, tmp_path):
    files = make_tls_files(tmp_path)
    gw, portal, port, clock = await start(
        tillgate_inprocess_factory, extra=f'[http.tls]\ncert = "{files.cert}"\n'
                                          f'key = "{files.key}"\n')
    _op, secret = await make_operator(portal, "oz@example.com")
    client = Client(port, tls=ssl.create_default_context(cafile=str(files.ca)))
    form = await web(client.get, "/ui/login")
    (cookie,) = form.cookies
    assert cookie.startswith("__Host-tg_portal=") and "; Secure" in cookie
    assert "; Path=/" in cookie and "Domain" not in cookie
    answer = await web(client.post, "/ui/login", {"csrf": form.csrf, "email": "oz@example.com",
                                                  "password": PASSWORD})
    assert answer.location == "/ui/login/code"
    assert (await web(login_code, client, code_for(secret, clock.now))).location == "/ui/"
    assert (await web(client.get, "/ui/")).status == 200


@pytest_twisted.ensureDeferred
async def test_a_lockout_during_the_second_step_stops_that_login(tillgate_inprocess_factory):
    """Someone with the password is at the code step; guesses from elsewhere lock the account:
    the right code no longer logs them in."""
    gw, portal, port, clock = await start(tillgate_inprocess_factory, max_failures=2)
    _op, secret = await make_operator(portal, "pat@example.com")
    half_way = Client(port)
    assert (await web(login_password, half_way, "pat@example.com")).location == "/ui/login/code"
    page = await web(half_way.get, "/ui/login/code")
    for _ in range(2):
        await web(login_password, Client(port), "pat@example.com", "not the password 1")
    answer = await web(half_way.post, "/ui/login/code",
                       {"csrf": page.csrf, "code": code_for(secret, clock.now)})
    assert answer.location == "/ui/login"
    assert (await web(half_way.get, "/ui/")).location == "/ui/login"


@pytest_twisted.ensureDeferred
async def test_login_attempts_per_address_are_limited(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, address_attempts=3)
    await make_operator(portal, "quin@example.com")
    client = Client(port)
    answers = [await web(login_password, client, f"guess{n}@example.com", "guess password 1")
               for n in range(3)]  # three different accounts: no account lock-out
    assert {a.status for a in answers} == {200}
    over = await web(login_password, client, "quin@example.com")  # even the right password
    assert over.status == 429 and "Too many attempts" in over.body


@pytest_twisted.ensureDeferred
async def test_a_reload_applies_portal_time_outs_and_refuses_enabled(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory)
    gateway = gw.gateway
    _op, secret = await make_operator(portal, "rae@example.com")
    client = await logged_in(port, "rae@example.com", secret, clock)
    shorter = replace(gateway.config, portal=replace(gateway.config.portal, idle_minutes=1))
    gateway.reloader.load = lambda _path: succeed(shorter)
    outcome = await gateway.reload("test")
    assert outcome.applied, outcome.errors
    clock.advance(90)  # within the old 30 idle minutes, over the new one
    assert (await web(client.get, "/ui/")).location == "/ui/login?why=timeout"
    off = replace(shorter, portal=replace(shorter.portal, enabled=False))
    gateway.reloader.load = lambda _path: succeed(off)
    refused = await gateway.reload("test")
    assert not refused.applied
    assert refused.errors == ["portal.enabled: changed; needs a restart"]

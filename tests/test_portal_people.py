"""Operators, clubs and API keys in the portal, over real HTTP on a gateway in the test process
(real Redis, real sockets; the back office on SQLite and a real PostgreSQL where the SQL side
matters): what a merchant manager may and may not do to whom, staff refused the pages, a named
club binding staff and tills to a program (58 outside it), club config errors by path, a
reload that changes clubs, and API keys disabled and expired."""

from __future__ import annotations

import copy
import email
import logging
import re
import time
from pathlib import Path

import pytest
import pytest_twisted
from portalclient import Client, make_operator, web
from test_portal_security import logged_in, start
from twisted.internet.defer import succeed

from gateway.backoffice import operators as ops
from gateway.config.model import parse_config
from gateway.config.sections import ConfigError
from gateway.ledger import cards
from gateway.reactor import deferred_from_coro
from protocols.carddata import generate_card_number

HOME, OTHER = "STORE0000000001", "OTHERSTORE00001"
CLUBS = f"""
[merchants.{OTHER}]
name = "Other Store"
terminals = ["OTHER001", "OTHER002"]

[programs.club]
kind = "gift"
currency = "840"
prefix = "605001"
card_length = 16

[clubs.north]
programs = ["club"]
merchants = ["{OTHER}"]
terminals = ["OTHER001"]
"""


async def _person(portal, address: str) -> ops.Operator:
    async def get():
        return await ops.by_email(await portal.engine(), address)

    found = await deferred_from_coro(get())
    assert found is not None
    return found


async def _post(client: Client, page: str, path: str, fields: dict[str, str]):
    form = await web(client.get, page)
    return await web(client.post, path, {"csrf": form.csrf, **fields})


@pytest_twisted.ensureDeferred
async def test_a_manager_manages_their_own_merchants_staff_only(
        tillgate_inprocess_factory, backoffice_url, caplog):
    caplog.set_level(logging.INFO)
    gw, portal, port, clock = await start(tillgate_inprocess_factory, backoffice_url, CLUBS)
    head, _ = await make_operator(portal, "hana@example.com")
    manager, manager_secret = await make_operator(portal, "max@example.com",
                                                  "merchant_manager", HOME)
    peer, _ = await make_operator(portal, "mia@example.com", "merchant_manager", HOME)
    mine, mine_secret = await make_operator(portal, "sid@example.com", "staff", HOME)
    theirs, _ = await make_operator(portal, "tom@example.com", "staff", OTHER)
    client = await logged_in(port, "max@example.com", manager_secret, clock)
    staff = await logged_in(port, "sid@example.com", mine_secret, clock)

    listed = await web(client.get, "/ui/operators")
    assert listed.status == 200 and "sid@example.com" in listed.body
    for hidden in ("tom@example.com", "hana@example.com", "mia@example.com"):
        assert hidden not in listed.body
    for target in (theirs, head, peer, manager):  # another merchant's, head office, a peer, self
        assert (await web(client.get, f"/ui/operators/edit?id={target.id}")).status == 403
        for path, fields in (("/ui/operators/status", {"action": "disable"}),
                             ("/ui/operators/reset", {"what": "password"}),
                             ("/ui/operators/reset", {"what": "second-factor"}),
                             ("/ui/operators/clubs", {"club": "north"})):
            refused = await _post(client, "/ui/operators", path, {"id": str(target.id),
                                                                  **fields})
            assert refused.status == 403, (target.email, path)
    assert (await _person(portal, "tom@example.com")).active
    assert (await _person(portal, "hana@example.com")).password_hash is not None

    # never a role above staff, never another merchant, for a new operator or an old one
    promoted = await _post(client, "/ui/operators", "/ui/operators/role", {
        "id": str(mine.id), "role": "merchant_manager", "merchant": HOME})
    assert promoted.status == 403 and (await _person(portal, "sid@example.com")).role == "staff"
    count = len(await deferred_from_coro(_all(portal)))  # nobody added by the refusals
    for role, merchant in (("merchant_manager", HOME), ("head_office", ""), ("staff", OTHER)):
        assert (await _post(client, "/ui/operators", "/ui/operators/add", {
            "email": "eve@example.com", "name": "Eve", "role": role, "merchant": merchant,
            "second_factor": "totp", "delivery": "show"})).status == 403
    assert len(await deferred_from_coro(_all(portal))) == count

    # their own staff: add (the link shown once), disable (sessions end), reset, enable
    added = await _post(client, "/ui/operators", "/ui/operators/add", {
        "email": "Uma@Example.com", "name": "Uma", "role": "staff", "merchant": HOME,
        "second_factor": "email", "delivery": "show"})
    link = re.search(r'id="set-password-link">([^<]+)<', added.body)
    assert added.status == 200 and link and "/ui/set-password?t=" in link.group(1), added.body
    uma = await _person(portal, "uma@example.com")
    assert (uma.role, uma.merchant, uma.password_hash) == ("staff", HOME, None)
    assert link.group(1) not in (await web(client.get, "/ui/operators")).body  # once
    assert (await web(Client(port).get, link.group(1).split(str(port), 1)[1])).status == 200

    before = await _person(portal, "sid@example.com")
    assert (await _post(client, "/ui/operators", "/ui/operators/status", {
        "id": str(mine.id), "action": "disable"})).location.endswith("done=disabled")
    assert (await web(staff.get, "/ui/cards")).location == "/ui/login?why=ended"
    after = await _person(portal, "sid@example.com")
    assert after.status == "disabled" and after.session_gen == before.session_gen + 1
    reset = await _post(client, "/ui/operators", "/ui/operators/reset", {
        "id": str(mine.id), "what": "password", "delivery": "show"})
    assert reset.status == 200 and "/ui/set-password?t=" in reset.body
    assert (await _person(portal, "sid@example.com")).password_hash is None
    await _post(client, "/ui/operators", "/ui/operators/reset", {"id": str(mine.id),
                                                                 "what": "second-factor"})
    await _post(client, "/ui/operators", "/ui/operators/status", {"id": str(mine.id),
                                                                  "action": "enable"})
    final = await _person(portal, "sid@example.com")
    assert final.active and not final.totp_enrolled and final.session_gen == before.session_gen + 4
    shown = await web(client.get, f"/ui/operators/edit?id={mine.id}")
    assert shown.status == 200 and "Last login" in shown.body

    logged = "\n".join(r.getMessage() for r in caplog.records)
    for done in (f"operator {manager.id} added operator {uma.id} (staff of {HOME})",
                 f"operator {manager.id} disabled operator {mine.id}",
                 f"operator {manager.id} reset the password of operator {mine.id}",
                 f"operator {manager.id} reset the second factor of operator {mine.id}",
                 f"operator {manager.id} enabled operator {mine.id}",
                 f"operator {manager.id} (merchant_manager of {HOME}) refused managing "
                 f"operator {theirs.id}"):
        assert done in logged, done
    assert link.group(1).rsplit("=", 1)[1] not in logged  # the link's token is never logged


async def _all(portal) -> list[ops.Operator]:
    return await ops.all_operators(await portal.engine())


@pytest_twisted.ensureDeferred
async def test_head_office_changes_roles_and_mails_the_link(tillgate_inprocess_factory,
                                                            backoffice_url):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, backoffice_url, CLUBS)
    _h, head_secret = await make_operator(portal, "hugo@example.com")
    client = await logged_in(port, "hugo@example.com", head_secret, clock)
    added = await _post(client, "/ui/operators", "/ui/operators/add", {
        "email": "vic@example.com", "name": "Vic", "role": "merchant_manager",
        "merchant": OTHER, "second_factor": "totp", "delivery": "email"})
    assert added.status == 200 and "set-password-link" not in added.body
    mail = sorted((Path(gw.gateway.config.email.maildir) / "new").iterdir())
    assert len(mail) == 1
    message = email.message_from_bytes(mail[0].read_bytes())
    assert message["To"] == "vic@example.com"
    link = re.search(r"(/ui/set-password\?t=[A-Za-z0-9_-]+)",
                     message.get_payload(decode=True).decode())
    assert link and (await web(Client(port).get, link.group(1))).status == 200
    vic = await _person(portal, "vic@example.com")
    assert (vic.role, vic.merchant) == ("merchant_manager", OTHER)
    made = await _post(client, "/ui/operators", "/ui/operators/role", {
        "id": str(vic.id), "role": "staff", "merchant": OTHER})
    assert made.location.endswith("done=role")
    assert (await _person(portal, "vic@example.com")).role == "staff"
    await _post(client, "/ui/operators", "/ui/operators/clubs", {"id": str(vic.id),
                                                                 "club": "north"})
    await _post(client, "/ui/operators", "/ui/operators/role", {   # the same merchant
        "id": str(vic.id), "role": "staff", "merchant": OTHER})
    assert (await _person(portal, "vic@example.com")).clubs == frozenset({"north"})
    await _post(client, "/ui/operators", "/ui/operators/role", {   # another merchant
        "id": str(vic.id), "role": "staff", "merchant": HOME})
    moved = await _person(portal, "vic@example.com")
    assert (moved.merchant, moved.clubs) == (HOME, frozenset())
    bad = await _post(client, "/ui/operators", "/ui/operators/role", {
        "id": str(vic.id), "role": "staff", "merchant": "NOSUCHSTORE"})
    assert bad.status == 403
    mine = await _person(portal, "hugo@example.com")
    assert (await _post(client, "/ui/operators", "/ui/operators/status", {
        "id": str(mine.id), "action": "disable"})).status == 403  # not oneself


@pytest_twisted.ensureDeferred
async def test_staff_are_refused_the_people_pages(tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory)
    target, _ = await make_operator(portal, "wes@example.com", "staff", HOME)
    _s, secret = await make_operator(portal, "xia@example.com", "staff", HOME)
    staff = await logged_in(port, "xia@example.com", secret, clock)
    for path in ("/ui/operators", "/ui/clubs", f"/ui/operators/edit?id={target.id}"):
        assert (await web(staff.get, path)).status == 403, path
    page = await web(staff.get, "/ui/cards")
    assert 'href="/ui/operators"' not in page.body
    assert (await web(staff.post, "/ui/operators/status", {
        "csrf": page.csrf, "id": str(target.id), "action": "disable"})).status == 403
    assert (await _person(portal, "wes@example.com")).active


@pytest_twisted.ensureDeferred
async def test_a_named_club_binds_staff_to_its_programs(tillgate_inprocess_factory,
                                                         backoffice_url):
    gw, portal, port, clock = await start(tillgate_inprocess_factory, backoffice_url, CLUBS)
    gateway = gw.gateway
    store = gateway.store_service.store
    club = gateway.config.programs["club"]
    card = generate_card_number(club.prefix, 16, club.luhn)
    assert await deferred_from_coro(cards.issue_card(store, club, card))
    _m, manager_secret = await make_operator(portal, "yan@example.com", "merchant_manager",
                                             OTHER)
    _hm, home_manager_secret = await make_operator(portal, "zed@example.com",
                                                   "merchant_manager", HOME)
    inside, inside_secret = await make_operator(portal, "abe@example.com", "staff", OTHER)
    outside, outside_secret = await make_operator(portal, "bo@example.com", "staff", HOME)

    async def lookup(client: Client):
        return await _post(client, "/ui/cards", "/ui/cards", {"card": card})

    member = await logged_in(port, "abe@example.com", inside_secret, clock)
    stranger = await logged_in(port, "bo@example.com", outside_secret, clock)
    manager = await logged_in(port, "yan@example.com", manager_secret, clock)
    home_manager = await logged_in(port, "zed@example.com", home_manager_secret, clock)
    refused = await lookup(member)  # their merchant is in the club, they are not (yet)
    assert refused.status == 403 and "(58" in refused.body
    assert (await lookup(manager)).status == 200  # managers: every club of their merchant
    assert (await lookup(home_manager)).status == 403
    # a manager of a merchant outside the club cannot put their staff in it
    assert (await _post(home_manager, "/ui/operators", "/ui/operators/clubs", {
        "id": str(outside.id), "club": "north"})).status == 403
    assert (await _person(portal, "bo@example.com")).clubs == frozenset()
    clubs_page = await web(manager.get, "/ui/clubs")
    assert clubs_page.status == 200 and "north" in clubs_page.body
    assert "north" not in (await web(home_manager.get, "/ui/clubs")).body
    put = await _post(manager, "/ui/operators", "/ui/operators/clubs", {
        "id": str(inside.id), "club": "north"})
    assert put.location.endswith("done=clubs")
    assert (await _person(portal, "abe@example.com")).clubs == frozenset({"north"})
    assert (await lookup(member)).status == 200  # from their next request
    assert (await lookup(stranger)).status == 403

    # a reload that drops the club opens the program to every merchant; one that moves the
    # club to the other merchant closes it to the member again
    raw = copy.deepcopy(gateway.config.raw)
    raw["clubs"]["north"].update(merchants=[HOME], terminals=["TILL0001"])
    moved = parse_config(raw, "moved")
    gateway.reloader.load = lambda _path: succeed(moved)
    outcome = await gateway.reload("test")
    assert outcome.applied, outcome.errors
    assert (await lookup(member)).status == 403
    assert (await lookup(home_manager)).status == 200
    del raw["clubs"]
    gateway.reloader.load = lambda _path: succeed(parse_config(raw, "open"))
    assert (await gateway.reload("test")).applied
    assert (await lookup(stranger)).status == 200


def test_a_club_binds_tills_to_its_programs(tillgate_gateway_factory):
    """Over TGL/1 to a gateway subprocess: of the club's merchant only its listed till is let
    in; another till of that merchant and a till of a merchant outside get 58."""
    gw = tillgate_gateway_factory(extra=CLUBS)
    card = gw.issue_card("club")
    for terminal, merchant, rc in (("OTHER002", OTHER, "58"), ("TILL0001", HOME, "58"),
                                   ("OTHER001", OTHER, "00")):
        with gw.till("tgl", terminal=terminal, merchant=merchant) as till:
            reply = till.activate(card.number, 1000).reply
            assert reply is not None and reply.rc == rc, terminal


@pytest.mark.parametrize(("club", "error"), [
    ({"programs": ["nope"], "merchants": [HOME]}, "clubs.north.programs: unknown program 'nope'"),
    ({"programs": ["gift"], "merchants": ["NOPE"]},
     "clubs.north.merchants: unknown merchant 'NOPE'"),
    ({"programs": ["gift"], "merchants": [HOME], "terminals": ["BHN00001"]},
     "clubs.north.terminals: terminal 'BHN00001' is not a terminal of the club's merchants"),
    ({"programs": ["gift"]}, "clubs.north.merchants: is required"),
    ({"merchants": [HOME]}, "clubs.north.programs: is required"),
    ({"programs": [], "merchants": [HOME]}, "clubs.north.programs: name at least one program"),
    ({"programs": ["gift"], "merchants": [HOME], "tills": []},
     "clubs.north.tills: is not a known setting"),
])
def test_club_config_errors_are_named_by_path(club, error):
    import tomllib

    from gateway.config.defaults import DEFAULT_CONFIG_PATH

    with open(DEFAULT_CONFIG_PATH, "rb") as f:
        raw = tomllib.load(f)
    raw["clubs"] = {"north": club}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    assert error in caught.value.errors


def test_clubs_compile_into_the_tills_each_program_admits():
    import tomllib

    from gateway.config.defaults import DEFAULT_CONFIG_PATH

    with open(DEFAULT_CONFIG_PATH, "rb") as f:
        raw = tomllib.load(f)
    raw["merchants"]["M2"] = {"name": "Two", "terminals": ["T21", "T22"]}
    raw["programs"]["gift"]["merchants"] = ["BHNRESELLER0001"]  # the unnamed club
    raw["clubs"] = {"a": {"programs": ["gift", "loyalty"], "merchants": ["M2"],
                          "terminals": ["T21"]},
                    "b": {"programs": ["loyalty"], "merchants": [HOME]}}
    config = parse_config(raw)
    programs = config.programs
    assert programs["gift"].club_terminals == {"BHN00001", "T21"}
    assert programs["loyalty"].club_terminals == {"T21", "TILL0001", "TILL0002"}
    assert programs["loyalty"].club_merchants == {"M2", HOME}
    assert programs["secure"].club_terminals is None  # in no club: every till


@pytest_twisted.ensureDeferred
async def test_api_keys_disabled_or_expired_are_refused_at_the_next_request(
        tillgate_inprocess_factory):
    gw, portal, port, clock = await start(tillgate_inprocess_factory)
    gw.gateway.auth.clock = clock  # the API's clock moves with the portal's
    _h, secret = await make_operator(portal, "cy@example.com")
    head = await logged_in(port, "cy@example.com", secret, clock)
    today = time.strftime("%Y-%m-%d", time.gmtime(clock.now))
    made = {}
    for name, expires in (("crm", ""), ("temp", today)):
        created = await _post(head, "/ui/tokens", "/ui/tokens/create", {
            "name": name, "scope": "terminals:read", "expires": expires})
        assert created.status == 200, created.body
        made[name] = (re.search(r"Token (rt-[0-9a-f]+) created", created.body).group(1),
                      re.search(r'id="token-secret">([^<]+)<', created.body).group(1))

    def api(token_secret: str) -> int:
        return Client(port).request("GET", "/v1/terminals/TILL0001", headers={
            "Authorization": f"Bearer {token_secret}"}).status

    assert await web(api, made["crm"][1]) == 200 and await web(api, made["temp"][1]) == 200
    page = await web(head.get, "/ui/tokens")
    ends = time.strftime("%Y-%m-%d", time.gmtime((int(clock.now) // 86400 + 1) * 86400))
    assert f'{ends}</span> <span class="nowrap">00:00 UTC' in page.body  # the end of today
    assert "never" in page.body  # crm's expiry
    assert page.body.count('class="status-enabled"') == 2
    switched = await _post(head, "/ui/tokens", "/ui/tokens/switch", {
        "id": made["crm"][0], "action": "disable"})
    assert switched.location == "/ui/tokens?done=disabled"
    assert await web(api, made["crm"][1]) == 401
    clock.now = (int(clock.now) // 86400 + 1) * 86400  # midnight UTC: the last day is over
    assert await web(api, made["temp"][1]) == 401
    head = await logged_in(port, "cy@example.com", secret, clock)  # the old session idled out
    listed = await web(head.get, "/ui/tokens")
    assert 'class="status-expired"' in listed.body and 'class="status-disabled"' in listed.body
    past = await _post(head, "/ui/tokens", "/ui/tokens/create", {
        "name": "late", "scope": "terminals:read", "expires": today})
    assert past.status == 400 and "in the future" in past.body


@pytest_twisted.ensureDeferred
async def test_the_operators_list_is_paged_by_id(tillgate_inprocess_factory):
    # With every operator on one page, a network of a few thousand staff made the page slow
    # and long; it now shows 100 at a time, keyset by id, each page in the actor's scope.
    gw, portal, port, clock = await start(tillgate_inprocess_factory)
    _boss, secret = await make_operator(portal, "boss@example.com")

    async def many():
        engine = await portal.engine()
        for i in range(130):
            await ops.add_operator(engine, f"s{i:03d}@example.com", f"Staff {i:03d}", "staff",
                                   HOME if i % 2 else "BHNRESELLER0001")
    await deferred_from_coro(many())
    boss = await logged_in(port, "boss@example.com", secret, clock)
    first = await web(boss.get, "/ui/operators")
    rows = re.findall(r'data-label="E-mail" class="wrap">([^<]+)<', first.body)
    assert len(rows) == 100 and rows[0] == "boss@example.com"
    after = re.search(r'href="/ui/operators\?after=(\d+)">Next page', first.body)
    assert after and "First page" not in first.body
    second = await web(boss.get, f"/ui/operators?after={after.group(1)}")
    more = re.findall(r'data-label="E-mail" class="wrap">([^<]+)<', second.body)
    assert len(more) == 31 and not set(more) & set(rows) and more[-1] == "s129@example.com"
    assert "Next page" not in second.body and 'href="/ui/operators">First page' in second.body

    _m, msecret = await make_operator(portal, "mia@example.com", "merchant_manager", HOME)
    manager = await logged_in(port, "mia@example.com", msecret, clock)
    page = await web(manager.get, "/ui/operators")
    theirs = re.findall(r'data-label="E-mail" class="wrap">([^<]+)<', page.body)
    assert len(theirs) == 65 and "Next page" not in page.body  # their merchant's staff only
    assert (await web(manager.get, "/ui/operators?after=x")).status == 200  # junk: page one

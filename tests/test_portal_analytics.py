"""The portal's analytics, staff report and rewards screen over real HTTP, on a gateway in the
test process (real Redis, real sockets, the back office on SQLite and on a real PostgreSQL):
figures equal the journal's rows (written as the feed writes them, tests/analyticsdata.py) and
Redis's card views, the CSV equals the page's table, a manager gets their merchant's figures
and no other club's program, staff and managers are refused what is not theirs, and a reward
added in the page is claimed by a till over TGL/1, then its claim voided in the page after a
confirmation step (points and stock come back)."""

from __future__ import annotations

import csv
import functools
import html
import io
import re
import secrets

import pytest_twisted
from analyticsdata import rows as journal_rows
from isohelpers import new_card
from linetill import tgl_request
from portalclient import Client, make_operator, web
from reportdata import at
from sqlalchemy import insert
from test_portal_security import CLUB, logged_in, start
from wireclients import LineClient

from gateway.backoffice import schema, summaries
from gateway.backoffice.summaries import configured_zones
from gateway.ledger import cardviews, opcounters
from gateway.reactor import deferred_from_coro
from protocols.model import RC, Op, Request

ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
CELL = re.compile(r"<t[dh][^>]*>(.*?)</t[dh]>", re.S)
NOV = "from=2026-11-23&to=2026-11-25&by=day"


def table(body: str, table_id: str = "figures") -> list[list[str]]:
    """The rows of the page's table `table_id` (its header first), as text."""
    found = re.search(rf'<table id="{table_id}">(.*?)</table>', body, re.S)
    assert found, body[:2000]
    return [[html.unescape(c) for c in CELL.findall(r)] for r in ROW.findall(found.group(1))]


def csv_rows(body: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body)))


def private(factory, redis_url: str):
    """The gateway factory on the `redis_url` Redis (flushed for the test), not the suite's
    shared one: the rewards, claims and card views these tests make stay out of other tests'
    catalogue and counts."""
    return functools.partial(factory, redis_url=redis_url)


async def setup(factory, backoffice_url: str, redis_url: str):
    gw, portal, port, clock = await start(private(factory, redis_url), backoffice_url,
                                          extra=CLUB)

    async def fill():
        engine = await portal.engine()
        async with engine.begin() as conn:
            await conn.execute(insert(schema.journal_entries), journal_rows())
            # as the feed would have summed them (it writes the journal and the summaries)
            await conn.run_sync(summaries.rebuild, configured_zones(portal.config.programs))
        store = portal.store()
        program = portal.config.programs["loyalty"]
        for when in ("2026-11-24 10:00:00", "2026-11-24 11:00:00", "2026-11-25 10:00:00"):
            await cardviews.count_view(store, program, "staff", at(when))
        await cardviews.count_view(store, program, "member", at("2026-11-25 12:00:00"))

    await deferred_from_coro(fill())
    return gw, portal, port, clock


async def log_in(portal, port, clock, address: str, role: str, merchant: str | None = None
                 ) -> Client:
    _op, secret = await make_operator(portal, address, role, merchant)
    assert secret is not None
    return await logged_in(port, address, secret, clock)


@pytest_twisted.ensureDeferred
async def test_analytics_figures_and_csv_equal_the_journal(tillgate_inprocess_factory,
                                                           backoffice_url, redis_url):
    _gw, portal, port, clock = await setup(tillgate_inprocess_factory, backoffice_url,
                                           redis_url)
    boss = await log_in(portal, port, clock, "boss@example.com", "head_office")
    page = await web(boss.get, f"/ui/analytics?program=loyalty&{NOV}")
    assert page.status == 200, page.body[:2000]
    shown = table(page.body)
    assert shown[0] == ["day", "program", "Card views by staff", "Card views by members",
                        "Activations", "Loads", "Value loaded", "Redemptions",
                        "Value redeemed", "Points accrued", "Rewards redeemed", "Active cards"]
    assert shown[1:] == [
        ["2026-11-23", "loyalty", "0", "0", "0", "0", "0.00", "0", "0.00", "0", "0", "0"],
        ["2026-11-24", "loyalty", "2", "0", "0", "0", "0.00", "0", "0.00", "320", "1", "1"],
        ["2026-11-25", "loyalty", "1", "1", "0", "0", "0.00", "0", "0.00", "50", "0", "1"]]
    # the charts: one SVG each with a title, its numbers in a table beside it
    assert page.body.count('<svg viewBox="0 0 600 200" role="img"') == 5
    assert '<title id="chart-points_accrued-title">Points accrued</title>' in page.body
    assert "Points accrued: 370 in all" in page.body
    download = await web(boss.get, f"/ui/analytics.csv?program=loyalty&{NOV}")
    assert download.status == 200
    assert download.headers["content-type"] == "text/csv; charset=utf-8"
    assert download.headers["content-disposition"] == (
        'attachment; filename="analytics-loyalty-2026-11-23-2026-11-25-day.csv"')
    got = csv_rows(download.body)
    assert got[0] == ["day", "program", "staff_views", "member_views", "activations", "loads",
                      "loaded", "redemptions", "redeemed", "points_accrued",
                      "rewards_redeemed", "active_cards"]
    assert got[1:] == shown[1:]  # the CSV is the page's table
    gift = table((await web(boss.get, "/ui/analytics?program=gift&from=2026-11-01&to="
                                      "2026-11-30&by=month")).body)
    assert gift[1:] == [["2026-11-01", "gift", "0", "0", "2", "1", "10.00", "2", "32.49", "0",
                         "0", "2"]]  # the 23rd's activation and the 25th's load are in
    bad = await web(boss.get, "/ui/analytics?program=loyalty&from=2026-11-30&to=2026-11-01")
    assert bad.status == 400 and "To: on or after From." in bad.body
    assert 'aria-describedby="error"' in bad.body
    long = await web(boss.get, "/ui/analytics?program=loyalty&from=2025-01-01&to=2026-11-30")
    assert long.status == 400 and "choose week or month" in long.body
    weeks = await web(boss.get, "/ui/analytics?program=loyalty&from=2025-01-01&to=2026-11-30"
                                "&by=week")
    assert weeks.status == 200 and len(table(weeks.body)) == 1 + 101  # from Wed 1 Jan 2025


@pytest_twisted.ensureDeferred
async def test_a_manager_sees_their_merchant_and_staff_nothing(tillgate_inprocess_factory,
                                                              backoffice_url, redis_url):
    _gw, portal, port, clock = await setup(tillgate_inprocess_factory, backoffice_url,
                                           redis_url)
    manager = await log_in(portal, port, clock, "meg@example.com", "merchant_manager",
                           "STORE0000000001")
    month = "from=2026-11-01&to=2026-11-30&by=month"
    mine = table((await web(manager.get, f"/ui/analytics?program=loyalty&{month}")).body)
    # 395 points in the month, 25 of them at another merchant: not this manager's
    assert mine[1][9:] == ["370", "1", "2"]
    refused = await web(manager.get, f"/ui/analytics?program=club&{month}")
    assert refused.status == 400 and "choose one of the list" in refused.body
    assert (await web(manager.get, f"/ui/analytics.csv?program=club&{month}")).status == 400
    assert 'value="club"' not in (await web(manager.get, "/ui/analytics")).body
    staff = table((await web(manager.get, "/ui/staff-report?from=2026-11-01&to=2026-12-31")
                   ).body)
    assert [r[0] for r in staff[1:]] == ["ANNA"]  # BERT served at another merchant
    assert (await web(manager.get, "/ui/rewards")).status == 403  # head office only
    clerk = await log_in(portal, port, clock, "sam@example.com", "staff", "STORE0000000001")
    for path in ("/ui/analytics", "/ui/analytics.csv", "/ui/staff-report",
                 "/ui/staff-report.csv", "/ui/rewards", "/ui/rewards/claims"):
        answer = await web(clerk.get, path)
        assert answer.status == 403 and "Your role does not open this page." in answer.body


@pytest_twisted.ensureDeferred
async def test_staff_report_and_its_csv(tillgate_inprocess_factory, backoffice_url,
                                        redis_url):
    _gw, portal, port, clock = await setup(tillgate_inprocess_factory, backoffice_url,
                                           redis_url)
    boss = await log_in(portal, port, clock, "boss@example.com", "head_office")
    query = "from=2026-11-01&to=2026-12-31"
    page = await web(boss.get, f"/ui/staff-report?{query}")
    shown = table(page.body)
    assert shown == [
        ["Staff member", "Program", "Transactions", "Points awarded", "Rewards validated",
         "Value loaded", "Value redeemed", "Members served"],
        ["ANNA", "loyalty", "3", "250", "1", "0.00", "0.00", "2"],
        ["BERT", "loyalty", "2", "25", "0", "0.00", "0.00", "1"]]
    download = await web(boss.get, f"/ui/staff-report.csv?program=&{query}")
    got = csv_rows(download.body)
    assert got[0] == ["opid", "program", "transactions", "points_awarded", "rewards_validated",
                      "loaded", "redeemed", "members_served"]
    assert got[1:] == shown[1:]
    one_day = table((await web(boss.get, "/ui/staff-report?program=loyalty&from=2026-11-25"
                                         "&to=2026-11-25")).body)
    assert one_day[1:] == [["ANNA", "loyalty", "1", "50", "0", "0.00", "0.00", "1"]]


@pytest_twisted.ensureDeferred
async def test_a_reward_added_in_the_page_is_claimed_at_a_till_and_voided(
        tillgate_inprocess_factory, backoffice_url, redis_url):
    gw, portal, port, clock = await start(private(tillgate_inprocess_factory, redis_url),
                                          backoffice_url)
    boss = await log_in(portal, port, clock, "boss@example.com", "head_office")
    rid = "T" + secrets.token_hex(4).upper()  # the suite's Redis outlives a test
    listing = await web(boss.get, "/ui/rewards?program=loyalty")
    assert listing.status == 200
    form = {"csrf": listing.csrf, "program": "loyalty", "id": rid, "name": "Tea",
            "points": "30", "stock": "1", "valid_from": "", "valid_to": "2999-12-31",
            "tier": ""}
    bad = await web(boss.post, "/ui/rewards/add", {**form, "points": "0"})
    assert bad.status == 400 and "Points: at least 1." in bad.body
    assert (await web(boss.post, "/ui/rewards/add", {**form, "csrf": "forged"})).status == 403
    added = await web(boss.post, "/ui/rewards/add", form)
    assert (added.status, added.location) == (303, "/ui/rewards?program=loyalty&done=added")
    assert (await web(boss.post, "/ui/rewards/add", form)).status == 409
    rows = {r[0]: r for r in table((await web(boss.get, added.location)).body, "rewards")}
    assert rows[rid][:5] == [rid, "Tea", "30", "1", "0"]
    by = await deferred_from_coro(portal.store().command("HGET", f"{{rw:loyalty}}:{rid}", "by"))
    assert by.decode().startswith("portal:")

    card, _ = await new_card(gw.gateway, "loyalty")
    run = str(secrets.randbelow(10**9))  # request keys of their own, as `rid`
    activated = await gw.gateway.processor.submit(Request(
        op=Op.ACTIVATE, card=card, terminal="TILL0001", merchant="STORE0000000001",
        key=f"L:TILL0001:STORE0000000001:{run}:20261205"))
    assert activated.code == RC.APPROVED
    line_port = next(lst.port for lst in gw.gateway.config.listeners if lst.name == "line")

    def till(*fields: dict[str, str]) -> list[dict[str, str]]:
        """The requests one after the other (a claim after the earn it needs), on one line."""
        with LineClient(line_port) as client:
            return [client.batch([tgl_request(term="TILL0001", merch="STORE0000000001", **f)])[0]
                    for f in fields]

    def counted() -> tuple[int, int, int]:
        return (opcounters.OPERATIONS.labels("loyalty", "earn").value,
                opcounters.OPERATIONS.labels("loyalty", "reward_claim").value,
                opcounters.POINTS_ACCRUED.labels("loyalty").value)

    before = counted()
    earn = {"id": f"{run}1", "op": "earn", "card": card, "amt": "10000", "opid": "ANNA"}
    earned, claimed, sold_out, again = await web(
        till, earn, {"id": f"{run}2", "op": "predeem", "card": card, "reward": rid,
                     "opid": "ANNA"},
        {"id": f"{run}3", "op": "predeem", "card": card, "reward": rid, "opid": "ANNA"},
        earn)  # a retransmission: its stored answer again, not a second earn
    # Prometheus: one earn of 100 points and one claim (the refused claim and the replay are
    # not counted)
    assert [a - b for a, b in zip(counted(), before, strict=True)] == [1, 1, 100]
    assert again == earned
    assert earned.get("rc") == "00", earned
    assert (claimed["rc"], claimed["pts"]) == ("00", "70")
    assert (sold_out["rc"], sold_out.get("msg")) == ("05", "out of stock")

    # the edit form: the stock untouched is not written back; a change is
    edit = await web(boss.get, f"/ui/rewards/edit?program=loyalty&id={rid}")
    assert edit.status == 200 and 'name="stock_shown" value="0"' in edit.body
    assert 'id="edit-name" name="name" type="text" value="Tea"' in edit.body
    changed = await web(boss.post, "/ui/rewards/update", {
        "csrf": edit.csrf, "program": "loyalty", "id": rid, "name": "Green tea",
        "points": "30", "stock": "0", "stock_shown": "0", "valid_from": "",
        "valid_to": "2999-12-31", "tier": ""})
    assert changed.location == "/ui/rewards?program=loyalty&done=updated"

    claims = await web(boss.get, "/ui/rewards/claims?program=loyalty")
    listed = [r for r in table(claims.body, "claims")[1:] if r[2] == rid]
    assert len(listed) == 1 and listed[0][1] == "claim" and listed[0][4] == "-30"
    key = listed[0][7]
    assert html.escape(card) not in claims.body  # the card is masked
    confirm = await web(boss.get, f"/ui/rewards/void?program=loyalty&key={key}")
    assert confirm.status == 200 and "Void this claim" in confirm.body
    voided = await web(boss.post, "/ui/rewards/void", {"csrf": confirm.csrf,
                                                        "program": "loyalty", "key": key})
    assert voided.location == "/ui/rewards/claims?program=loyalty&done=voided"
    again = await web(boss.post, "/ui/rewards/void", {"csrf": confirm.csrf,
                                                      "program": "loyalty", "key": key})
    assert again.status == 409 and "voided already" in again.body
    rows = {r[0]: r for r in table((await web(boss.get, "/ui/rewards?program=loyalty")).body,
                                   "rewards")}
    assert rows[rid][:4] == [rid, "Green tea", "30", "1"]  # the item is back
    (reclaimed,) = await web(till, {"id": f"{run}4", "op": "predeem", "card": card,
                                    "reward": rid, "opid": "ANNA"})
    assert (reclaimed["rc"], reclaimed["pts"]) == ("00", "70")  # and the points were

    switched = await web(boss.post, "/ui/rewards/switch", {
        "csrf": confirm.csrf, "program": "loyalty", "id": rid, "action": "disable"})
    assert switched.location == "/ui/rewards?program=loyalty&done=disabled"
    (refused,) = await web(till, {"id": f"{run}5", "op": "predeem", "card": card,
                                  "reward": rid, "opid": "ANNA"})
    assert refused["rc"] == "12"

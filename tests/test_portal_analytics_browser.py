"""Analytics, the staff report and the rewards screen in a real headless Chromium against a
real `tillgate serve` subprocess: a reward added in the page, earned for and claimed at a till
over TGL/1 by a staff member, the claim voided after the confirmation step, a card looked up
(a staff card view), then the analytics page's charts and table once the journal feed has
brought the entries to the back office, its CSV download equal to the table, the staff report,
and the analytics page on a 360 px phone. Screenshots: portal-analytics*.png,
portal-rewards*.png, portal-staffreport.png (docs/portal.md)."""

from __future__ import annotations

import csv
import time

import pytest
from browser import PHONE, add_operator, base_url, cli, issued_card, log_in
from linetill import tgl_request
from wireclients import LineClient

from gateway.testing import GatewayProcess

FEED_WAIT = 60  # seconds for the journal feed to bring the till's entries to the back office


@pytest.fixture
def gateway(tmp_path):
    process = GatewayProcess.prepare(tmp_path).start()
    yield process
    process.stop()


def till(gateway: GatewayProcess, *requests: dict[str, str]) -> list[dict[str, str]]:
    with LineClient(gateway.ports["line"]) as client:
        return [client.batch([tgl_request(term="TILL0001", merch="STORE0000000001", **r)])[0]
                for r in requests]


def cells(page, selector: str) -> list[list[str]]:
    return [[c.inner_text().strip() for c in row.locator("td, th").all()]
            for row in page.locator(f"{selector} tr").all()]


def test_analytics_staff_report_and_rewards_in_a_browser(gateway, chromium, shots, tmp_path):
    base = base_url(gateway)
    card = issued_card(gateway, "loyalty", activate="0")
    add_operator(gateway, "boss@example.com", "head_office", "Bea Boss")

    def scenario(browser):
        page = browser.new_page(viewport={"width": 1024, "height": 900})
        log_in(page, gateway, "boss@example.com")
        page.get_by_role("link", name="Rewards").first.click()
        page.locator("#reward-id").fill("TEA")
        page.get_by_label("Name").fill("Pot of tea")
        page.get_by_label("Points").fill("30")
        page.get_by_label("Stock").fill("5")
        page.get_by_label("STORE0000000001").check()
        page.get_by_role("button", name="Add reward").click()
        assert "The reward is added." in page.content()
        assert cells(page, "#rewards")[1][:5] == ["COFFEE", "Coffee", "100", "unlimited", "0"]
        assert cells(page, "#rewards")[2][:5] == ["TEA", "Pot of tea", "30", "5", "0"]
        shots(page, "rewards")

        earned, claimed = till(gateway, {"id": "1", "op": "earn", "card": card, "amt": "12000",
                                         "opid": "ANNA"},
                               {"id": "2", "op": "predeem", "card": card, "reward": "TEA",
                                "opid": "ANNA"})
        assert (earned["rc"], claimed["rc"], claimed["pts"]) == ("00", "00", "90")

        page.get_by_role("link", name="Claims of loyalty").click()
        page.get_by_role("link", name="Void").first.click()
        assert "Void this claim" in page.content() and "Pot of tea" not in page.url
        shots(page, "rewards-void")
        page.get_by_role("button", name="Void this claim").click()
        assert "The claim is voided" in page.content()

        page.get_by_role("link", name="Card lookup").first.click()
        page.get_by_label("Card number, barcode or QR code").fill(card)
        page.get_by_role("button", name="Look up").click()

        deadline = time.monotonic() + FEED_WAIT
        while True:
            page.goto(base + "/ui/analytics?program=loyalty")
            rows = cells(page, "#figures")
            today = rows[-1]
            if today[9] == "120" or time.monotonic() > deadline:
                break
            page.wait_for_timeout(500)
        header = rows[0]
        assert header[:4] == ["day", "program", "Card views by staff", "Card views by members"]
        # the last row is today: one staff view, 120 points, one reward claimed, one card
        assert (today[2], today[9], today[10], today[11]) == ("1", "120", "1", "1"), rows
        assert len(rows) == 1 + 30 and page.locator("figure.chart svg").count() == 5
        shots(page, "analytics")
        with page.expect_download() as info:
            page.get_by_role("link", name="Download these figures as CSV").click()
        saved = tmp_path / "analytics.csv"
        info.value.save_as(saved)
        with open(saved, newline="") as f:
            assert list(csv.reader(f))[1:] == rows[1:]

        page.get_by_role("link", name="Staff report").first.click()
        staff = cells(page, "#figures")
        # the earn, the claim and its void (made by the portal's operator, not ANNA)
        assert staff[1] == ["ANNA", "loyalty", "2", "120", "1", "0.00", "0.00", "1"], staff
        shots(page, "staffreport")

        phone = browser.new_page(**PHONE)
        phone.context.add_cookies(page.context.cookies())
        phone.goto(base + "/ui/analytics?program=loyalty&by=week")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360
        shots(phone, "analytics-phone")

    chromium(scenario)
    listed = cli(gateway, "rewards", "list", "--program", "loyalty")
    assert '"TEA"' in listed and '"claimed": 0' in listed.replace(" ", " ")

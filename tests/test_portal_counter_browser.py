"""The staff dashboard on a 360 px phone and online transaction entry on a desktop, in a real
headless Chromium (tests/browser.py) against a real `tillgate serve` on the default config:
a staff member earns on a purchase, claims a reward and reopens the card from their recent
interactions; a merchant manager enters a load, confirms it, and sees the till's answer.

Screenshots `portal-staff-*.png` and `portal-entry-*.png` are docs/portal.md's pictures
(TILLGATE_SCREENSHOTS=1 refreshes them in docs/img)."""

from __future__ import annotations

import time

import pytest
from browser import PHONE, add_operator, base_url, cli, issued_card, log_in

from gateway.testing import GatewayProcess
from protocols.model import mask_card

STORE = "STORE0000000001"


@pytest.fixture
def gateway(tmp_path):
    process = GatewayProcess.prepare(tmp_path).start()
    yield process
    process.stop()


def test_staff_earn_claim_and_recent_on_a_phone(gateway, chromium, shots):
    card = issued_card(gateway, "loyalty", activate="0")
    cli(gateway, "rewards", "add", "--program", "loyalty", "MUG", "--name", "Mug", "--points",
        "500", "--stock", "3")
    add_operator(gateway, "sam@example.com", "staff", "Sam Staff", STORE)

    def scenario(browser):
        phone = browser.new_context(**PHONE)
        page = phone.new_page()
        log_in(page, gateway, "sam@example.com")
        assert page.url.endswith("/ui/staff")  # staff land on their dashboard
        assert page.evaluate("document.activeElement.id") == "card"  # a scanner types here
        page.locator("#card").fill(card)
        page.get_by_role("button", name="Open card").click()
        assert mask_card(card) in page.content() and card not in page.content()
        page.get_by_label("Purchase amount").fill("120.00")
        page.get_by_role("button", name="Add purchase").click()
        assert page.locator("#answer-code").inner_text() == "00"
        assert page.locator("#answer-moved").inner_text() == "120"
        assert page.locator("#answer-tier").inner_text() == "BRONZE"
        assert "Mug: 500 points (not enough points)" in page.content()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        shots(page, "staff-earn")
        page.get_by_label("Coffee: 100 points").check()
        page.get_by_role("button", name="Claim reward").click()
        assert page.locator("#answer-code").inner_text() == "00"
        assert page.locator("#answer-points").inner_text() == "20"
        shots(page, "staff-claim")
        # the journal reaches the back office through its feed: wait for it, with a deadline
        deadline = time.monotonic() + 30
        page.goto(base_url(gateway) + "/ui/staff")
        while mask_card(card) not in page.content():
            assert time.monotonic() < deadline, "recent interactions never listed the card"
            page.wait_for_timeout(250)
            page.reload()
        assert "2 entries" in page.content()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        shots(page, "staff-recent")
        page.get_by_role("button", name=mask_card(card)).click()
        assert page.locator("#card-points").inner_text() == "20"
        phone.close()

    chromium(scenario)


def test_manager_enters_a_load_with_a_confirmation(gateway, chromium, shots):
    card = issued_card(gateway, "gift", activate="25.00")
    add_operator(gateway, "max@example.com", "merchant_manager", "Max Manager", STORE)

    def scenario(browser):
        page = browser.new_page(viewport={"width": 1024, "height": 720})
        log_in(page, gateway, "max@example.com")
        page.get_by_role("link", name="Transaction entry").first.click()
        page.get_by_label("Card number, barcode or QR code").fill(card)
        page.get_by_label("Load").check()
        page.get_by_label("Amount").fill("10.00")
        page.get_by_label("Invoice number").fill("INV-1001")
        shots(page, "entry-form")
        page.get_by_role("button", name="Check").click()
        assert "Nothing has been sent yet" in page.content()
        assert "WEB00001" in page.content() and mask_card(card) in page.content()
        shots(page, "entry-confirm")
        page.get_by_role("button", name="Send").click()
        assert page.locator("#answer-code").inner_text() == "00"
        assert page.locator("#answer-balance").inner_text() == "35.00"
        shots(page, "entry-answer")
        shown = cli(gateway, "cards", "show", card, "--json")
        assert '"balance": 3500' in shown

    chromium(scenario)

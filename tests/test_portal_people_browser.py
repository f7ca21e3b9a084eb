"""Operators, clubs and API keys in a real headless Chromium (tests/browser.py) against a real
`tillgate serve`: head office adds a merchant manager (the set-password link shown once), the
manager adds a staff member and puts them in a club, the staff member then sees a card of the
club's program on a phone; an API key made with a last day, disabled, and refused by the API.
The tables fit their region at 1024 px and 360 px (nothing scrolls sideways).

Screenshots: portal-people-*.png and portal-clubs-*.png (docs/portal.md).
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request

import pytest
from browser import PHONE, add_operator, base_url, issued_card, log_in
from portalclient import PASSWORD
from test_portal_people import CLUBS, OTHER

from gateway.testing import GatewayProcess
from protocols.model import mask_card


@pytest.fixture
def gateway(tmp_path):
    process = GatewayProcess.prepare(tmp_path, extra=CLUBS).start()
    yield process
    process.stop()


def _fits(page, region: str) -> bool:
    """The region's table needs no sideways scrolling, nor does the page."""
    return page.evaluate(
        "([sel]) => { const r = document.querySelector(sel);"
        " return r.scrollWidth <= r.clientWidth"
        " && document.documentElement.scrollWidth <= window.innerWidth; }", [region])


def _set_password(browser, base: str, link: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(base + link)
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("The same again").fill(PASSWORD)
    page.get_by_role("button", name="Set password").click()
    assert "Your password is set" in page.content()
    context.close()


def _add(page, email: str, name: str, role: str, merchant: str) -> str:
    """Fill the add form (codes by e-mail, link shown) and return the link shown once."""
    page.get_by_label("E-mail (their login name)").fill(email)
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Role").select_option(role)
    page.get_by_label("Merchant").select_option(merchant)
    page.get_by_label("Codes by e-mail").check()
    page.get_by_role("button", name="Add").click()
    link = page.locator("#set-password-link").inner_text()
    return re.sub(r"^https?://[^/]+", "", link)


def test_head_office_adds_a_manager_who_adds_staff_to_a_club(gateway, chromium, shots):
    base = base_url(gateway)
    card = issued_card(gateway, "club")
    add_operator(gateway, "boss@example.com", "head_office", "Bea Boss")

    def scenario(browser):
        head = browser.new_context(viewport={"width": 1024, "height": 720}).new_page()
        log_in(head, gateway, "boss@example.com")
        head.get_by_role("link", name="Operators").first.click()
        link = _add(head, "mo@example.com", "Mo Manager", "merchant_manager", OTHER)
        assert "/ui/set-password?t=" in link
        shots(head, "people-added")
        assert _fits(head, "div.scroll")
        _set_password(browser, base, link)

        manager = browser.new_context(viewport={"width": 1024, "height": 720}).new_page()
        log_in(manager, gateway, "mo@example.com")
        manager.goto(base + "/ui/operators")
        assert manager.get_by_label("Role").locator("option").all_inner_texts() == ["staff"]
        staff_link = _add(manager, "sal@example.com", "Sal Staff", "staff", OTHER)
        _set_password(browser, base, staff_link)
        manager.goto(base + "/ui/operators")
        assert "boss@example.com" not in manager.content()  # head office is not theirs
        manager.get_by_role("link", name="Manage sal@example.com").click()
        manager.get_by_label("north").check()
        manager.get_by_role("button", name="Save clubs").click()
        assert "Their clubs are saved" in manager.content()
        shots(manager, "people-staff")
        manager.get_by_role("link", name="All operators").click()
        manager.get_by_role("link", name="clubs", exact=True).click()
        assert "Sal Staff" in manager.locator("table").inner_text()
        shots(manager, "clubs-list")

        phone = browser.new_context(**PHONE).new_page()
        log_in(phone, gateway, "sal@example.com")  # staff land on their dashboard
        phone.goto(base_url(gateway) + "/ui/cards")
        phone.get_by_label("Card number, barcode or QR code").fill(card)
        phone.get_by_role("button", name="Look up").click()
        assert mask_card(card) in phone.content() and "(58" not in phone.content()
        shots(phone, "clubs-staff-phone")

    chromium(scenario)


def test_an_api_key_made_with_a_last_day_then_disabled_is_refused(gateway, chromium, shots):
    base = base_url(gateway)
    add_operator(gateway, "boss@example.com", "head_office", "Bea Boss")
    now = time.time()
    last_day = time.strftime("%Y-%m-%d", time.gmtime(now + 30 * 86400))
    ends = time.strftime("%Y-%m-%d", time.gmtime(now + 31 * 86400))  # the day after it

    def api(secret: str) -> int:
        request = urllib.request.Request(base + "/v1/terminals/TILL0001",
                                         headers={"Authorization": f"Bearer {secret}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status
        except urllib.error.HTTPError as e:
            e.close()
            return e.code

    def scenario(browser):
        page = browser.new_context(viewport={"width": 1024, "height": 720}).new_page()
        log_in(page, gateway, "boss@example.com")
        page.goto(base + "/ui/tokens")
        secrets = {}
        for name in ("point-of-sale integration", "crm"):
            page.get_by_label("Name").fill(name)
            page.get_by_label("terminals:read").check()
            page.get_by_label("cards:read").check()
            page.get_by_label("Expires after").fill(last_day)
            page.get_by_role("button", name="Create token").click()
            token_id = re.search(r"Token (rt-[0-9a-f]+) created", page.content()).group(1)
            secrets[token_id] = page.locator("#token-secret").inner_text()
        expiries = page.locator("td[data-label=Expires]").all_inner_texts()
        assert expiries == [f"{ends} 00:00 UTC"] * 2, expiries
        token_id, secret = next(iter(secrets.items()))
        assert api(secret) == 200
        page.get_by_role("button", name=f"Disable {token_id}").click()
        assert "The token is disabled" in page.content()
        assert api(secret) == 401
        assert _fits(page, "div.scroll")
        shots(page, "people-tokens")
        phone = browser.new_context(**PHONE).new_page()
        log_in(phone, gateway, "boss@example.com")
        phone.goto(base + "/ui/tokens")
        assert _fits(phone, "div.scroll")
        shots(phone, "people-tokens-phone")
        return secrets

    secrets = chromium(scenario)
    assert [api(s) for s in secrets.values()] == [401, 200]

"""The portal in a real headless Chromium (Debian's `chromium`, driven by Playwright; nothing
downloads a browser) against a real `tillgate serve` subprocess: the first head-office login
with the TOTP secret read off the enrolment page, a card lookup, logout everywhere, and a staff
member on a 360 px wide phone logging in with a code read from the maildir.

The screenshots these tests take are docs/portal.md's pictures: with TILLGATE_SCREENSHOTS=1 they
are written to docs/img/portal-*.png (to refresh the docs), otherwise into the test's temporary
directory (so a test run leaves the checkout clean).

The fixtures `chromium` and `shots` (conftest.py) and the helpers of tests/browser.py are shared
by every browser test.
"""

from __future__ import annotations

import pyotp
import pytest
from browser import LINK, PHONE, base_url, cli, issued_card, maildir, newest_code
from portalclient import PASSWORD

from gateway.testing import GatewayProcess
from protocols.model import mask_card


@pytest.fixture
def gateway(tmp_path):
    process = GatewayProcess.prepare(tmp_path).start()
    yield process
    process.stop()


def test_head_office_first_login_lookup_and_logout_everywhere(gateway, chromium, shots):
    base = base_url(gateway)
    card = issued_card(gateway)
    added = cli(gateway, "users", "add", "--email", "boss@example.com", "--name", "Bea Boss",
                "--role", "head_office")
    link = LINK.search(added)
    assert link

    def scenario(browser):
        page = browser.new_page(viewport={"width": 1024, "height": 720})
        page.goto(base + link.group(1))
        page.get_by_label("New password").fill(PASSWORD)
        page.get_by_label("The same again").fill(PASSWORD)
        page.get_by_role("button", name="Set password").click()
        assert "Your password is set" in page.content()
        page.get_by_label("E-mail address").fill("boss@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        shots(page, "login")
        page.get_by_role("button", name="Next").click()
        assert page.url.endswith("/ui/login/enrol")
        assert page.locator("figure.qr svg").count() == 1
        secret = page.locator("#secret").inner_text().replace(" ", "")
        shots(page, "enrol")
        page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
        page.get_by_role("button", name="Confirm").click()
        assert page.url.endswith("/ui/") and "Welcome, Bea Boss" in page.content()
        shots(page, "home")
        page.keyboard.press("Tab")  # the first stop is the skip link, which lands on main
        assert page.evaluate("document.activeElement.className") == "skip"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        page.get_by_role("link", name="Card lookup").first.click()
        page.get_by_label("Card number, barcode or QR code").fill(card)
        page.get_by_role("button", name="Look up").click()
        content = page.content()
        assert mask_card(card) in content and card not in content
        assert "25.00" in content and "activate" in content
        shots(page, "card")
        page.get_by_role("link", name="API tokens").click()
        page.get_by_label("Name").fill("crm")
        page.get_by_label("cards:read").check()
        page.get_by_role("button", name="Create token").click()
        assert page.locator("#token-secret").count() == 1
        shots(page, "tokens")
        page.get_by_role("link", name="My account").click()
        shots(page, "account")
        page.get_by_role("button", name="Log out everywhere").click()
        assert "logged out everywhere" in page.content()
        page.goto(base + "/ui/")  # the browser's old cookie opens nothing now
        assert page.url.endswith("/ui/login")

    chromium(scenario)
    assert card not in gateway.log


def test_staff_on_a_phone_with_an_emailed_code(gateway, chromium, shots):
    base = base_url(gateway)
    card = issued_card(gateway)
    cli(gateway, "users", "add", "--email", "sam@example.com", "--name", "Sam Staff", "--role",
        "staff", "--merchant", "STORE0000000001", "--second-factor", "email", "--password",
        stdin=PASSWORD + "\n")

    def scenario(browser):
        phone = browser.new_context(**PHONE)
        page = phone.new_page()
        page.goto(base + "/ui/login")
        page.get_by_label("E-mail address").fill("sam@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Next").click()
        assert "s***@example.com" in page.content()
        page.get_by_label("Code").fill(newest_code(maildir(gateway)))
        shots(page, "phone-code")
        page.get_by_role("button", name="Log in").click()
        assert page.url.endswith("/ui/staff")  # staff start at their dashboard
        page.goto(base + "/ui/cards")
        page.get_by_label("Card number, barcode or QR code").fill(f"tillgate:card/{card}")
        page.get_by_role("button", name="Look up").click()
        assert mask_card(card) in page.content()
        # usable at 360 px: nothing wider than the screen but the history's own scroller
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        shots(page, "phone-card")
        phone.close()

    chromium(scenario)

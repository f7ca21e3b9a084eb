"""The portal in a real headless Chromium (Debian's `chromium`, driven by Playwright; nothing
downloads a browser) against a real `tillgate serve` subprocess: the first head-office login
with the TOTP secret read off the enrolment page, a card lookup, logout everywhere, and a staff
member on a 360 px wide phone logging in with a code read from the maildir.

The screenshots these tests take are docs/portal.md's pictures: with TILLGATE_SCREENSHOTS=1 they
are written to docs/img/portal-*.png (to refresh the docs), otherwise into the test's temporary
directory (so a test run leaves the checkout clean).

Without chromium or playwright the tests skip with the reason; TILLGATE_REQUIRE_CHROMIUM=1 (set
by .ci/run, which installs chromium) makes that a failure.
"""

from __future__ import annotations

import csv
import email
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyotp
import pytest
from portalclient import PASSWORD

from gateway.testing import GatewayProcess
from protocols.model import mask_card

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
LINK = re.compile(r"(/ui/set-password\?t=\S+)")


def _browser_missing() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"no {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


@pytest.fixture
def chromium():
    """A launcher of headless Chromium, for a scenario run in a worker thread (Playwright's
    sync API must not run on a thread whose asyncio loop is the reactor's)."""
    missing = _browser_missing()
    if missing:
        if os.environ.get("TILLGATE_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"Chromium is required here (TILLGATE_REQUIRE_CHROMIUM=1): {missing}")
        pytest.skip(f"browser tests skipped: {missing}")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

    def run(scenario):
        def in_thread():
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS,
                                            headless=True)
                try:
                    return scenario(browser)
                finally:
                    browser.close()

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(in_thread).result(timeout=180)

    return run


@pytest.fixture
def shots(tmp_path):
    folder = DOCS_IMG if os.environ.get("TILLGATE_SCREENSHOTS") == "1" else tmp_path / "img"
    folder.mkdir(parents=True, exist_ok=True)

    def shoot(page, name: str) -> None:
        page.screenshot(path=str(folder / f"portal-{name}.png"), full_page=True)

    return shoot


@pytest.fixture
def gateway(tmp_path):
    process = GatewayProcess.prepare(tmp_path).start()
    yield process
    process.stop()


def cli(gateway: GatewayProcess, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(gateway.command(*args), input=stdin, capture_output=True, text=True,
                          timeout=60, cwd=gateway.workdir)
    assert done.returncode == 0, done.stderr
    return done.stdout


def issued_card(gateway: GatewayProcess) -> str:
    out = gateway.workdir / "cards.csv"
    cli(gateway, "cards", "issue", "--program", "gift", "--count", "1", "--activate", "25.00",
        "--out", str(out))
    with open(out, newline="") as f:
        return next(csv.DictReader(f))["card"]


def newest_code(maildir: Path) -> str:
    files = sorted((maildir / "new").iterdir(), key=lambda p: p.stat().st_mtime)
    message = email.message_from_bytes(files[-1].read_bytes())
    found = re.search(r"code is (\d{6})", message.get_payload())
    assert found
    return found.group(1)


def test_head_office_first_login_lookup_and_logout_everywhere(gateway, chromium, shots):
    base = f"http://127.0.0.1:{gateway.ports['http']}"
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
    base = f"http://127.0.0.1:{gateway.ports['http']}"
    card = issued_card(gateway)
    cli(gateway, "users", "add", "--email", "sam@example.com", "--name", "Sam Staff", "--role",
        "staff", "--merchant", "STORE0000000001", "--second-factor", "email", "--password",
        stdin=PASSWORD + "\n")
    maildir = gateway.workdir / "var" / "mail"

    def scenario(browser):
        phone = browser.new_context(viewport={"width": 360, "height": 740},
                                    device_scale_factor=2, is_mobile=True, has_touch=True)
        page = phone.new_page()
        page.goto(base + "/ui/login")
        page.get_by_label("E-mail address").fill("sam@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Next").click()
        assert "s***@example.com" in page.content()
        page.get_by_label("Code").fill(newest_code(maildir))
        shots(page, "phone-code")
        page.get_by_role("button", name="Log in").click()
        assert page.url.endswith("/ui/cards")  # staff start at the card lookup
        page.get_by_label("Card number, barcode or QR code").fill(f"tillgate:card/{card}")
        page.get_by_role("button", name="Look up").click()
        assert mask_card(card) in page.content()
        # usable at 360 px: nothing wider than the screen but the history's own scroller
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        shots(page, "phone-card")
        phone.close()

    chromium(scenario)

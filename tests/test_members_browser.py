"""The member page in a real headless Chromium (Debian's `chromium` through Playwright), against
a real `tillgate serve` subprocess, on a desktop and on a 360 px phone: sign in with the card's
number and PIN, the history, registering the card, reporting it lost, after which a till over
TCP is refused with 62; and a PIN locked by wrong tries at a till refuses the page too.

Its screenshots are docs/members.md's pictures (member-*.png): with TILLGATE_SCREENSHOTS=1 in
docs/img/, otherwise in the test's temporary directory.
"""

from __future__ import annotations

import csv

import pytest
from browser import PHONE, base_url, cli

from gateway.config.model import load_config
from gateway.sim.till import Till
from gateway.testing import GatewayProcess

LOGO = (b'<svg xmlns="http://www.w3.org/2000/svg" width="48" height="48">'
        b'<rect width="48" height="48" rx="10" fill="#fff"/>'
        b'<path d="M10 34 L24 10 L38 34 Z" fill="#c2410c"/></svg>')


@pytest.fixture
def gateway(tmp_path):
    logo = tmp_path / "acme.svg"
    logo.write_bytes(LOGO)
    process = GatewayProcess.prepare(tmp_path, extra=f"""
[programs.secure.brand]
name = "Acme Gift Card"
colour = "#0b3d91"
accent = "#c2410c"
logo = "{logo}"
""").start()
    yield process
    process.stop()


def secure_card(gateway: GatewayProcess, amount: str = "25.00") -> tuple[str, str]:
    """A card of the PIN program `secure`, issued and activated: (number, PIN)."""
    out = gateway.workdir / f"secure-{len(list(gateway.workdir.glob('secure-*')))}.csv"
    cli(gateway, "cards", "issue", "--program", "secure", "--count", "1", "--activate", amount,
        "--out", str(out))
    with open(out, newline="") as f:
        row = next(csv.DictReader(f))
    return row["card"], row["pin"]


def till_rc(gateway: GatewayProcess, op: str, card: str, pin: str, amount: int = 0,
            invoice: str | None = None) -> str:
    """A till of the default config (TILL0001) over TCP, ISO 8583."""
    with Till.from_config(load_config(gateway.config_path), "iso") as till:
        exchange = (till.balance(card, pin=pin) if op == "balance"
                    else getattr(till, op)(card, amount, pin=pin, invoice=invoice))
        assert exchange.reply is not None
        return exchange.reply.rc


def sign_in(page, base: str, card: str, pin: str) -> None:
    page.goto(base + "/m/?p=secure")
    page.get_by_label("Card number").fill(card)
    page.get_by_label("PIN", exact=True).fill(pin)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_history_register_and_report_lost(gateway, chromium, member_shots):
    base = base_url(gateway)
    card, pin = secure_card(gateway)
    for n, amount in enumerate((450, 1200, 300)):
        assert till_rc(gateway, "redeem", card, pin, amount, invoice=f"INV{n}") == "00"

    def scenario(browser):
        page = browser.new_page(viewport={"width": 1024, "height": 760})
        page.goto(base + "/m/?p=secure")
        assert "Acme Gift Card" in page.title()
        page.get_by_label("Card number").fill(card)
        page.get_by_label("PIN", exact=True).fill(pin)
        member_shots(page, "signin")
        page.get_by_role("button", name="Sign in").click()
        assert page.url.endswith("/m/card")
        assert page.locator("#value").inner_text() == "5.50"
        assert page.locator("#number").inner_text() == card
        assert page.locator(".qr svg").count() == 1 and page.locator(".barcode svg").count() == 1
        rows = page.locator("tbody tr")
        assert rows.count() == 4 and "Purchase" in rows.first.inner_text()
        assert "-3.00" in rows.first.inner_text() and "Activation" in rows.last.inner_text()
        assert card not in page.url
        member_shots(page, "card")
        page.get_by_role("link", name="Register this card to your profile").click()
        page.get_by_label("Your name").fill("Ada Lovelace")
        page.get_by_label("E-mail address").fill("ada@example.org")
        page.get_by_label("You may e-mail me offers").check()
        member_shots(page, "register")
        page.get_by_role("button", name="Register").click()
        assert "registered to your profile" in page.locator("[role=status]").inner_text()
        page.get_by_label("Block this card now").check()
        page.get_by_role("button", name="Report lost").click()
        assert "Your card is blocked" in page.content()
        assert page.locator("#status").inner_text() == "suspended"
        member_shots(page, "lost")
        page.get_by_role("button", name="Sign out").click()
        assert "You are signed out" in page.content()

    chromium(scenario)
    assert till_rc(gateway, "balance", card, pin) == "62"  # the till refuses the card now
    listed = cli(gateway, "customers", "list", "--json")
    assert "ada@example.org" in listed and "Ada Lovelace" in listed


def test_a_pin_locked_at_the_till_locks_the_page_on_a_phone(gateway, chromium, member_shots):
    base = base_url(gateway)
    locked, pin = secure_card(gateway)
    wrong = f"{(int(pin) + 1) % 10 ** len(pin):0{len(pin)}d}"
    assert [till_rc(gateway, "balance", locked, wrong) for _ in range(3)] == ["55", "55", "75"]
    card, card_pin = secure_card(gateway, "40.00")

    def scenario(browser):
        context = browser.new_context(**PHONE)
        try:
            page = context.new_page()
            sign_in(page, base, locked, pin)  # the right PIN: the card is locked
            assert page.url.endswith("/m/signin?p=secure")
            assert "do not open a card here" in page.locator("[role=alert]").inner_text()
            member_shots(page, "phone-refused")
            sign_in(page, base, card, card_pin)
            assert page.url.endswith("/m/card")
            assert page.locator("#value").inner_text() == "40.00"
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, width  # nothing wider than the phone
            member_shots(page, "phone-card")
        finally:
            context.close()

    chromium(scenario)
    assert till_rc(gateway, "balance", locked, pin) == "75"

"""The customers pages in a real headless Chromium against a real `tillgate serve` subprocess:
customers imported with `tillgate customers import` (a card linked, activated at a till's
merchant by `cards issue --activate`), the list and its next page, a search by name and by
card number, a customer's page with the card's balance, and a search on a 360 px phone.
Screenshots: portal-customers-*.png (docs/portal.md)."""

from __future__ import annotations

import pytest
from browser import PHONE, add_operator, base_url, cli, issued_card, log_in

from gateway.testing import GatewayProcess


@pytest.fixture
def gateway(tmp_path):
    process = GatewayProcess.prepare(tmp_path).start()
    yield process
    process.stop()


def cells(page, selector: str) -> list[list[str]]:
    return [[c.inner_text().strip() for c in row.locator("td, th").all()]
            for row in page.locator(f"{selector} tr").all()]


def test_customers_in_a_browser(gateway, chromium, shots, tmp_path):
    card = issued_card(gateway, "gift", activate="25.00")
    names = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov"]
    lines = ["code,name,email,phone,type,status,consent,notes,cards"]
    for i in range(1, 61):
        name = names[i - 1] if i <= len(names) else f"Customer {i:03d}"
        lines.append(f"C{i:04d},{name},c{i:03d}@example.com,+44 20 7946 {i:04d},,active,"
                     f"{'yes' if i % 2 else 'no'},,{card if i == 1 else ''}")
    upload = tmp_path / "customers.csv"
    upload.write_text("\n".join(lines) + "\n")
    cli(gateway, "customers", "import", str(upload))
    add_operator(gateway, "boss@example.com", "head_office", "Bea Boss")

    def scenario(browser):
        page = browser.new_page(viewport={"width": 1024, "height": 900})
        log_in(page, gateway, "boss@example.com")
        page.get_by_role("link", name="Customers").first.click()
        assert "60 customers." in page.content()
        rows = cells(page, "#customers")
        assert len(rows) == 1 + 50 and rows[1][:2] == ["C0001", "Ada Lovelace"]
        shots(page, "customers-list")
        page.get_by_role("link", name="Next page").click()
        assert [r[0] for r in cells(page, "#customers")[1:]] == [
            f"C{i:04d}" for i in range(51, 61)]
        page.get_by_label("Name, e-mail, phone or card number").fill("grace")
        page.get_by_role("button", name="Search").click()
        assert [r[1] for r in cells(page, "#customers")[1:]] == ["Grace Hopper"]
        page.get_by_label("Name, e-mail, phone or card number").fill(card)
        page.get_by_role("button", name="Search").click()
        assert [r[1] for r in cells(page, "#customers")[1:]] == ["Ada Lovelace"]
        assert card not in page.content()  # shown back masked
        shots(page, "customers-search")
        page.get_by_role("link", name="C0001").click()
        assert cells(page, "#cards")[1][2:4] == ["active", "25.00"]
        assert card not in page.content()
        shots(page, "customers-one")

        phone = browser.new_page(**PHONE)
        log_in(phone, gateway, "boss@example.com")
        phone.goto(base_url(gateway) + "/ui/customers?q=customer+01")  # 10: a short shot
        assert len(cells(phone, "#customers")) == 1 + 10
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["viewport"]["width"]
        shots(phone, "customers-phone")

    chromium(scenario)

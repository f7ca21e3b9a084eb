"""Card pages and batches in a real headless Chromium (Debian's `chromium` through Playwright)
against a real `tillgate serve` subprocess: a head-office operator creates cards, rolls back a
card's last transaction with its confirmation step, and uploads a CSV batch that they confirm
with the code read from the gateway's maildir, then follows its progress page (which refreshes
itself: no script) to the end. Screenshots: docs/img/portal-cards-*.png."""

from __future__ import annotations

import email
import re

import pytest
from browser import add_operator, cli, log_in, maildir

from gateway.testing import GatewayProcess
from protocols.carddata import generate_card_number
from protocols.model import mask_card

IMPORTS = '[imports]\nconfirm_to = ["approver@example.com"]\n'
NUMBER = re.compile(r"\b(603953\d{13})\b")


@pytest.fixture
def gateway(tmp_path):
    process = GatewayProcess.prepare(tmp_path, extra=IMPORTS).start()
    yield process
    process.stop()


def batch_code(gateway: GatewayProcess) -> str:
    files = sorted((maildir(gateway) / "new").iterdir(), key=lambda p: p.stat().st_mtime)
    for f in reversed(files):
        found = re.search(r"Confirmation code: (\d{8})",
                          email.message_from_bytes(f.read_bytes()).get_payload())
        if found:
            return found.group(1)
    raise AssertionError("no batch code in the maildir")


def test_create_roll_back_and_a_batch_confirmed_with_the_mailed_code(gateway, chromium, shots,
                                                                     tmp_path):
    add_operator(gateway, "head@example.com", "head_office", "Hana Head")
    gift = "603953"
    batch = sorted({generate_card_number(gift, 19, True) for _ in range(300)})
    upload = tmp_path / "batch.csv"
    upload.write_text("card,program,pin,amount\n" + "".join(f"{n},gift,,10.00\n" for n in batch))

    def scenario(browser):
        page = browser.new_page(viewport={"width": 1024, "height": 720})
        log_in(page, gateway, "head@example.com")
        page.get_by_role("link", name="Create cards").first.click()
        page.get_by_label("Program").select_option("gift")
        page.get_by_label("Number of cards").fill("2")
        page.get_by_label("Activate with").fill("25.00")
        shots(page, "cards-create")
        page.get_by_role("button", name="Create").click()
        assert "2 card(s) of program gift" in page.content()
        created = NUMBER.findall(page.locator("table").inner_text())
        assert len(created) == 2
        shots(page, "cards-created")
        page.get_by_role("link", name="Card lookup").first.click()
        page.get_by_label("Card number, barcode or QR code").fill(created[0])
        page.get_by_role("button", name="Look up").click()
        assert created[0] not in page.content() and mask_card(created[0]) in page.content()
        shots(page, "cards-actions")
        page.get_by_role("button", name="Roll back the last transaction").click()
        assert "activate of +25.00" in page.content()
        shots(page, "cards-rollback")
        page.get_by_role("button", name="Yes: roll back the last transaction").click()
        assert "Rolled back the activate of +25.00" in page.content()
        page.get_by_role("link", name="Batches").first.click()
        page.get_by_label("CSV file").set_input_files(str(upload))
        page.get_by_role("button", name="Check the file and send the code").click()
        assert "gift: 300 card(s), 3000.00 to load" in page.content()
        page.get_by_label("Confirmation code").fill(batch_code(gateway))
        shots(page, "cards-batch-code")
        page.get_by_role("button", name="Confirm and create the cards").click()
        assert "/ui/batches/progress" in page.url
        page.locator("#state", has_text="done").wait_for(timeout=120_000)  # by its refresh
        assert "300 of 300" in page.content()
        shots(page, "cards-batch-done")
        return created

    created = chromium(scenario)
    shown = cli(gateway, "cards", "show", created[0], "--json")
    assert '"balance": 0' in shown
    for number in (batch[0], batch[-1]):
        assert '"balance": 1000' in cli(gateway, "cards", "show", number, "--json")

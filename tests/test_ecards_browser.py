"""The portal's e-card page in real headless Chromium against a `tillgate serve` subprocess:
a head-office operator orders an e-card, sees its e-mail sent (the gateway's maildir holds it,
its QR code decodes to the card), and resends it; the screenshot is docs' picture."""

from __future__ import annotations

import base64
import email
import io
import re
import time
from email import policy

import pytest
import zxingcpp
from browser import add_operator, base_url, log_in, maildir
from PIL import Image

from gateway.testing import GatewayProcess


@pytest.fixture
def gateway(tmp_path):
    process = GatewayProcess.prepare(tmp_path).start()
    yield process
    process.stop()


def ecard_mails(gateway: GatewayProcess) -> list[email.message.EmailMessage]:
    found = []
    new = maildir(gateway) / "new"
    for path in sorted(new.iterdir()) if new.is_dir() else []:
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if "gift card" in str(msg["Subject"]):
            found.append(msg)
    return found


def wait_for_text(page, url: str, text: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in page.content():
        assert time.monotonic() < deadline, f"{text!r} never shown"
        page.wait_for_timeout(200)
        page.goto(url)


def test_order_an_ecard_see_it_sent_and_resend_it(gateway, chromium, shots):
    add_operator(gateway, "boss@example.com", "head_office", "Bea Boss")
    url = base_url(gateway) + "/ui/ecards"

    def scenario(browser):
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        log_in(page, gateway, "boss@example.com")
        page.get_by_role("link", name="E-cards").first.click()
        assert page.url == url
        page.get_by_label("Program").select_option("secure")
        page.get_by_label("Amount").fill("30.00")
        page.get_by_label("Recipient's name").fill("Dee Day")
        page.get_by_label("Recipient's e-mail").fill("dee@example.com")
        page.get_by_label("From").fill("Bea at the shop")
        page.get_by_label("Message").fill("Happy birthday, Dee!")
        page.get_by_role("button", name="Order and send").click()
        assert "The e-card is ordered" in page.content()
        wait_for_text(page, url, "state-sent")
        assert "dee@example.com" in page.content() and "30.00" in page.content()
        shots(page, "ecards-order")
        page.get_by_role("button", name="Resend the e-mail to dee@example.com").click()
        assert "queued to be sent again" in page.content()
        # a bad order is refused with its reason, and the form keeps what was typed
        page.get_by_label("Amount").fill("12.345")
        page.get_by_label("Recipient's name").fill("Eve")
        page.get_by_label("Recipient's e-mail").fill("eve@example.com")
        page.get_by_label("From").fill("Bea")
        page.get_by_role("button", name="Order and send").click()
        assert "Amount: a sum such as 25.00" in page.inner_text("#error")
        assert page.get_by_label("Recipient's name").input_value() == "Eve"
        shots(page, "ecards-refused")
        page.close()

    chromium(scenario)
    deadline = time.monotonic() + 20
    while len(ecard_mails(gateway)) < 2:
        assert time.monotonic() < deadline, "the resend never arrived"
        time.sleep(0.1)
    first, second = ecard_mails(gateway)
    text = first.get_body(("plain",)).get_content()
    card = re.search(r"Card number: (\S+)", text).group(1)
    qr = next(p for p in first.walk() if p.get_filename() == "card-qr.png")
    assert [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.get_content())))] \
        == [card]
    assert card in second.get_body(("plain",)).get_content()

    def as_a_mail_client_shows_it(browser):  # the e-mail's HTML, its images by Content-ID
        html = first.get_body(("html",)).get_content()
        for part in first.walk():
            if part["Content-ID"]:
                data = base64.b64encode(part.get_content()).decode()
                html = html.replace(f"cid:{part['Content-ID'][1:-1]}",
                                    f"data:image/png;base64,{data}")
        page = browser.new_page(viewport={"width": 640, "height": 900})
        page.set_content(html)
        assert "Happy birthday, Dee!" in page.inner_text("body")
        shots(page, "ecards-email")
        page.close()

    chromium(as_a_mail_client_shows_it)

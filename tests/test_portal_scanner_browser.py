"""The camera scanner in a real headless Chromium against a real `tillgate serve` subprocess,
with Chromium's fake camera: fed a video of a real issued card's QR code
(tests/fakecamera.py), the scanner reads it, fills the field and the lookup shows the card; the
camera stops on Escape and when the page is hidden; a refused or missing camera and a browser
without script leave the typed field working. Phone-sized (360 px), as the staff use it.

The `chromium` fixture skips these without Chromium (conftest.py); the camera's flags need a
runner of their own (tests/browser.py's chromium_runner). Screenshots: portal-scanner-*.png
(docs/portal.md, "Scanning with the camera").
"""

from __future__ import annotations

import pytest
from browser import PHONE, add_operator, base_url, chromium_runner, issued_card, log_in
from fakecamera import qr_video

from gateway.testing import GatewayProcess
from protocols.model import mask_card

FAKE_CAMERA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
FIELD = "Card number, barcode or QR code"
STATE = "document.querySelector('.scanner').dataset.state"


@pytest.fixture
def gateway(tmp_path):
    process = GatewayProcess.prepare(tmp_path).start()
    yield process
    process.stop()


@pytest.fixture
def staff(gateway):
    add_operator(gateway, "sam@example.com", "staff", "Sam Staff", merchant="STORE0000000001")
    return "sam@example.com"


def in_state(page, state: str) -> None:
    """Wait until the scanner is in `state` (its data-state; a selector, as the page's CSP
    refuses the eval of a waited-for expression)."""
    page.locator(f".scanner[data-state={state}]").wait_for(state="attached", timeout=20_000)


def watch_console(page) -> list[str]:
    """Messages the page logs: a CSP violation (an inline script, an eval) would show here."""
    seen: list[str] = []
    page.on("console", lambda message: seen.append(message.text))
    page.on("pageerror", lambda error: seen.append(str(error)))
    return seen


def test_the_camera_reads_a_cards_qr_code_and_looks_it_up(gateway, staff, chromium, tmp_path,
                                                           shots):
    card = issued_card(gateway)
    video = qr_video(tmp_path / "card.y4m", f"tillgate:card/{card}")
    run = chromium_runner([*FAKE_CAMERA, f"--use-file-for-fake-video-capture={video}"])

    def scenario(browser):
        context = browser.new_context(**PHONE)
        page = context.new_page()
        console = watch_console(page)
        log_in(page, gateway, staff)  # staff land on their dashboard; these test the lookup
        page.goto(base_url(gateway) + "/ui/cards")
        assert page.url.endswith("/ui/cards")
        scan = page.get_by_role("button", name="Scan with camera")
        scan.click()
        page.get_by_role("heading", name=f"Card {mask_card(card)}").wait_for(timeout=20_000)
        content = page.content()
        assert "25.00" in content and card not in content
        assert page.get_by_label(FIELD).input_value() == ""  # nothing filled back in
        assert page.evaluate(STATE) == "idle"  # the answer's page, its scanner ready again
        shots(page, "scanner-card")
        assert not [m for m in console if "Content Security Policy" in m or "Error" in m], \
            console
        context.close()

    run(scenario)


def test_the_camera_stops_on_escape_and_when_the_page_is_hidden(gateway, staff, chromium, shots):
    run = chromium_runner(FAKE_CAMERA)  # Chromium's own test picture: no code to read

    def scenario(browser):
        context = browser.new_context(**PHONE)
        page = context.new_page()
        log_in(page, gateway, staff)  # staff land on their dashboard; these test the lookup
        page.goto(base_url(gateway) + "/ui/cards")
        scan = page.get_by_role("button", name="Scan with camera")
        scan.focus()
        page.keyboard.press("Enter")  # by keyboard
        in_state(page, "scanning")
        assert page.evaluate("document.activeElement.className") == "scan-stop"
        assert page.get_by_role("status").inner_text().startswith("Camera on.")
        assert scan.get_attribute("aria-expanded") == "true"
        page.evaluate("window.track = document.querySelector('.scan-video')"
                      ".srcObject.getVideoTracks()[0]")
        assert page.evaluate("window.track.readyState") == "live"
        shots(page, "scanner-camera")
        page.keyboard.press("Escape")
        in_state(page, "idle")
        assert page.evaluate("window.track.readyState") == "ended"
        assert page.get_by_role("status").inner_text() == "Camera stopped."
        assert page.evaluate("document.activeElement.className") == "scan-start"
        assert page.locator(".scan-view").is_hidden()

        scan.click()
        in_state(page, "scanning")
        page.evaluate("window.track = document.querySelector('.scan-video')"
                      ".srcObject.getVideoTracks()[0]")
        page.evaluate("window.dispatchEvent(new PageTransitionEvent('pagehide'))")
        page.wait_for_function("() => window.track.readyState === 'ended'")
        assert page.evaluate(STATE) == "idle"
        context.close()

    run(scenario)


@pytest.mark.parametrize(("flags", "said"), [
    ([*FAKE_CAMERA[1:], "--deny-permission-prompts"], "The camera was not allowed."),
    (["--use-fake-ui-for-media-stream"], "No camera was found."),
], ids=["permission-denied", "no-camera"])
def test_without_a_camera_the_typed_field_works(gateway, staff, chromium, flags, said, shots):
    card = issued_card(gateway)

    def scenario(browser):
        context = browser.new_context(**PHONE)
        page = context.new_page()
        log_in(page, gateway, staff)  # staff land on their dashboard; these test the lookup
        page.goto(base_url(gateway) + "/ui/cards")
        page.get_by_role("button", name="Scan with camera").click()
        in_state(page, "failed")
        assert page.get_by_role("status").inner_text().startswith(said)
        assert page.evaluate("document.activeElement.id") == "card"  # back to typing
        if "--deny-permission-prompts" in flags:
            shots(page, "scanner-denied")
        page.get_by_label(FIELD).fill(card)
        page.get_by_role("button", name="Look up").click()
        assert mask_card(card) in page.content()
        context.close()

    chromium_runner(flags)(scenario)


def test_without_script_there_is_no_scan_button_and_the_field_works(gateway, staff, chromium):
    card = issued_card(gateway)

    def scenario(browser):
        context = browser.new_context(**PHONE, java_script_enabled=False)
        page = context.new_page()
        log_in(page, gateway, staff)  # staff land on their dashboard; these test the lookup
        page.goto(base_url(gateway) + "/ui/cards")
        assert page.locator(".scanner").count() == 1 and page.locator(".scanner").is_hidden()
        assert page.get_by_role("button", name="Scan with camera").count() == 0
        page.get_by_label(FIELD).fill(card)
        page.get_by_role("button", name="Look up").click()
        assert mask_card(card) in page.content()
        context.close()

    chromium(scenario)

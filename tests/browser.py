"""Shared parts of the browser tests: real headless Chromium (Debian's `chromium`, driven by
Playwright; nothing downloads a browser) against a real `tillgate serve` subprocess.

The fixtures `chromium` and `shots` live in conftest.py; this module holds the plain helpers
every browser test uses: the CLI of the gateway under test, a card issued through it, operators
added through `tillgate users`, and a login with the code the gateway e-mailed to its maildir.

Screenshots (the `shots` fixture) are docs' pictures: with TILLGATE_SCREENSHOTS=1 they are
written to docs/img/portal-*.png (`member_shots`: member-*.png), otherwise into the test's
temporary directory.
"""

from __future__ import annotations

import csv
import email
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from portalclient import PASSWORD

from gateway.testing import GatewayProcess

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
LINK = re.compile(r"(/ui/set-password\?t=\S+)")
PHONE = {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}


def browser_missing() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"no {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


def chromium_runner(extra_args: list[str] | None = None):
    """A function that runs `scenario(browser)` in a worker thread (Playwright's sync API must
    not run on a thread whose asyncio loop is the reactor's) and returns what it returns."""

    def run(scenario):
        def in_thread():
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM,
                                            args=ARGS + (extra_args or []), headless=True)
                try:
                    return scenario(browser)
                finally:
                    browser.close()

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(in_thread).result(timeout=180)

    return run


def screenshot_folder(tmp_path: Path) -> Path:
    folder = DOCS_IMG if os.environ.get("TILLGATE_SCREENSHOTS") == "1" else tmp_path / "img"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shooter(tmp_path: Path, prefix: str):
    """`shoot(page, name)`: a full-page screenshot as <prefix>-<name>.png (the `shots` and
    `member_shots` fixtures)."""
    folder = screenshot_folder(tmp_path)

    def shoot(page, name: str) -> None:
        page.screenshot(path=str(folder / f"{prefix}-{name}.png"), full_page=True)

    return shoot


def base_url(gateway: GatewayProcess) -> str:
    return f"http://127.0.0.1:{gateway.ports['http']}"


def cli(gateway: GatewayProcess, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(gateway.command(*args), input=stdin, capture_output=True, text=True,
                          timeout=60, cwd=gateway.workdir)
    assert done.returncode == 0, done.stderr
    return done.stdout


def issued_card(gateway: GatewayProcess, program: str = "gift",
                activate: str | None = "25.00") -> str:
    out = gateway.workdir / f"cards-{program}-{len(list(gateway.workdir.glob('cards-*')))}.csv"
    extra = ["--activate", activate] if activate else []
    cli(gateway, "cards", "issue", "--program", program, "--count", "1", *extra,
        "--out", str(out))
    with open(out, newline="") as f:
        return next(csv.DictReader(f))["card"]


def maildir(gateway: GatewayProcess) -> Path:
    return gateway.workdir / "var" / "mail"


def newest_code(folder: Path) -> str:
    files = sorted((folder / "new").iterdir(), key=lambda p: p.stat().st_mtime)
    message = email.message_from_bytes(files[-1].read_bytes())
    found = re.search(r"code is (\d{6})", message.get_payload())
    assert found
    return found.group(1)


def add_operator(gateway: GatewayProcess, address: str, role: str, name: str = "",
                 merchant: str | None = None) -> None:
    """An operator with PASSWORD whose second factor is a code by e-mail (to the maildir)."""
    extra = ["--merchant", merchant] if merchant else []
    cli(gateway, "users", "add", "--email", address, "--name", name or address.split("@")[0],
        "--role", role, *extra, "--second-factor", "email", "--password",
        stdin=PASSWORD + "\n")


def log_in(page, gateway: GatewayProcess, address: str) -> None:
    """Both steps of the login of an operator made by add_operator; the page ends logged in."""
    page.goto(base_url(gateway) + "/ui/login")
    page.get_by_label("E-mail address").fill(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Code").fill(newest_code(maildir(gateway)))
    page.get_by_role("button", name="Log in").click()
    assert "/ui/login" not in page.url, page.content()[:500]

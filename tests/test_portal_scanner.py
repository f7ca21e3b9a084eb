"""The camera scanner's files and headers over real HTTP, on a gateway in the test process: the
vendored decoder is the pinned release, the card lookup (and only a route that opts in) may
run our script files and ask for the camera, every other page keeps the policy that runs no
script, and the script files are served with a year's cache under URLs that carry their hash.
The scanner itself runs in a browser in test_portal_scanner_browser.py."""

from __future__ import annotations

import hashlib
import re

import pytest_twisted
from portalclient import Client, make_operator, web
from test_portal_security import logged_in, start

from gateway.web.portal import pages, scripts
from gateway.web.portal.scripts import JSQR, JSQR_DIR, JSQR_SHA256, JSQR_VERSION, SCANNER

SCRIPT_TAG = re.compile(r'<script src="(/ui/static/[^"]+)" defer></script>')
CAMERA_ROUTES = {("GET", "cards"), ("POST", "cards"), ("GET", "staff"), ("POST", "staff"),
                 ("POST", "staff/open"), ("POST", "staff/earn"), ("POST", "staff/points"),
                 ("POST", "staff/claim")}


def _policy(answer) -> tuple[str, str]:
    return answer.headers["content-security-policy"], answer.headers["permissions-policy"]


def test_the_vendored_decoder_is_the_pinned_release():
    body = (JSQR_DIR / "jsQR.js").read_bytes()
    assert hashlib.sha256(body).hexdigest() == JSQR_SHA256, \
        "jsQR.js is not the pinned release: see its VENDORED.md before changing the hash"
    note = (JSQR_DIR / "VENDORED.md").read_text()
    assert JSQR_SHA256 in note and f"jsqr@{JSQR_VERSION}" in note
    assert "Apache License" in (JSQR_DIR / "LICENSE").read_text()
    assert JSQR.body == body


def test_the_scripts_need_no_eval():
    # the camera pages' CSP has no 'unsafe-eval' (the browser test would see the refusal too)
    for script in scripts.SCRIPTS:
        text = script.body.decode()
        assert not re.search(r"\beval\(|new Function\(|setTimeout\(\s*['\"]", text), \
            script.name


def test_only_the_pages_with_a_card_field_opt_in_to_the_camera():
    # a new page with the scanner is added here on purpose, with its template's one line
    assert {key for key, route in pages.routes().items() if route.camera} == CAMERA_ROUTES


@pytest_twisted.ensureDeferred
async def test_the_camera_policy_on_the_lookup_and_the_strict_one_everywhere_else(
        tillgate_inprocess_factory):
    _gw, portal, port, clock = await start(tillgate_inprocess_factory)
    _op, secret = await make_operator(portal, "hal@example.com")
    client = await logged_in(port, "hal@example.com", secret, clock)

    lookup = await web(client.get, "/ui/cards")
    csp, permissions = _policy(lookup)
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe" not in csp and "'self' " not in csp.split("script-src")[1]
    assert permissions == "camera=(self)"
    assert SCRIPT_TAG.findall(lookup.body) == [JSQR.url, SCANNER.url]
    assert 'data-scanner-for="card" hidden' in lookup.body  # shown only by the script
    answered = await web(client.post, "/ui/cards", {"csrf": lookup.csrf, "card": "%B123^X"})
    assert answered.status == 400 and _policy(answered) == (csp, permissions)

    for method, path in pages.routes():
        if method != "GET" or (method, path) in CAMERA_ROUTES or path.startswith("static/"):
            continue
        answer = await web(client.get, f"/ui/{path}")
        csp, permissions = _policy(answer)
        assert "script-src" not in csp and csp.startswith("default-src 'none';"), path
        assert permissions == "camera=()", path
        assert "<script" not in answer.body, path
    missing = await web(Client(port).get, "/ui/nowhere")
    assert missing.status == 404 and "script-src" not in _policy(missing)[0]
    # the staff dashboard's card field has the scanner too
    _m, manager_secret = await make_operator(portal, "mia@example.com", "merchant_manager",
                                             "STORE0000000001")
    manager = await logged_in(port, "mia@example.com", manager_secret, clock)
    desk = await web(manager.get, "/ui/staff")
    assert desk.status == 200 and _policy(desk)[1] == "camera=(self)"
    assert SCRIPT_TAG.findall(desk.body) == [JSQR.url, SCANNER.url]
    assert 'data-scanner-for="card" hidden' in desk.body


@pytest_twisted.ensureDeferred
async def test_the_script_files_are_cached_for_a_year_under_their_hash(
        tillgate_inprocess_factory):
    _gw, _portal, port, _clock = await start(tillgate_inprocess_factory)
    for script in (JSQR, SCANNER):
        path, version = script.url.split("?v=")
        assert version == hashlib.sha256(script.body).hexdigest()[:12]
        answer = await web(Client(port).get, script.url)  # no session needed
        assert answer.status == 200 and answer.body.encode() == script.body
        assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert answer.headers["x-content-type-options"] == "nosniff"

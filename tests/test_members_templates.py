"""The member page's templates as markup (the rules of tests/test_portal_templates.py): every
template a handler names exists and is shipped, and every page, rendered with the values its
handler passes, has `lang`, a title, one h1, the skip link first, a label for every field, the
CSRF field in every POST form, unique ids, its error tied to fields, values escaped; the card
page's codes are markup."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from pagemarkup import Markup, check_page, parse, templates_named

from gateway.config.members import Brand
from gateway.web.members.codes import barcode_svg, qr_svg
from gateway.web.members.render import HERE, Renderer

CARD = SimpleNamespace(status="active", balance=2550, points=120, tier="SILVER",
                       points_expiring=40, points_expiry="2027-12-31", expiry=None)
ENTRY = {"t": 1_800_000_000, "what": "Purchase", "dv": -1250, "dp": 0, "bal": 2550, "pts": 0}
NUMBER = "6051001234567890"
BRAND = Brand(name="Acme <Gift>", colour="#0b3d91", accent="#c2410c", logo="/x.svg")

PAGES = [
    ("error.html", {"title": "Not found", "text": "There is no such page."}),
    ("signin.html", {"title": "Sign in", "error": "That card number and PIN do not open a "
                     "card here.", "brand": BRAND, "program_id": "member",
                     "brand_css": "/m/brand/member.css", "logo_url": "/m/logo/member"}),
    ("signin.html", {"title": "Sign in", "email_error": "Enter the e-mail address.",
                     "message": "You are signed out."}),
    ("code.html", {"title": "Enter your code", "error": "That code is not right."}),
    ("card.html", {"title": "Acme", "card": CARD, "mask": "605100******7890", "number": NUMBER,
                   "loyalty": False, "qr": qr_svg(NUMBER), "bars": barcode_svg(NUMBER),
                   "entries": [ENTRY], "older": "1-0", "paged": True, "cards": [],
                   "selected": 0, "signed_in": True, "message": "Your card is registered."}),
    ("card.html", {"title": "Acme", "card": CARD, "mask": "605100******7890", "number": None,
                   "loyalty": True, "qr": None, "bars": None, "entries": [], "older": None,
                   "paged": False, "selected": 1, "signed_in": True,
                   "cards": [{"mask": "605100******7890", "index": 0},
                             {"mask": "605100******1111", "index": 1}]}),
    ("register.html", {"title": "Register your card", "mask": "605100******7890",
                       "name": "<Ada>", "email": "x", "consent": True, "signed_in": True,
                       "problems": {"email": "Enter an e-mail address."},
                       "error": "Check the fields marked below."}),
]


def _parse(template: str, values: dict) -> tuple[str, Markup]:
    return parse(Renderer(), template, values)


def test_every_template_a_handler_names_exists_and_is_shipped():
    named = templates_named(HERE)
    assert named >= {"signin.html", "card.html", "error.html"}
    assert named <= {template for template, _values in PAGES}
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert '"gateway.web.members" = ["templates/*.html", "static/*.css"]' in pyproject


@pytest.mark.parametrize(("template", "values"), PAGES,
                         ids=[f"{t}-{i}" for i, (t, _v) in enumerate(PAGES)])
def test_page_markup(template, values):
    html, m = _parse(template, values)
    check_page(html, m, values, "/m/")
    assert ("Sign out" in html) == bool(values.get("signed_in"))


def test_values_are_escaped_and_the_codes_are_markup():
    html, _m = _parse("register.html", dict(PAGES[6][1]))
    assert 'value="&lt;Ada&gt;"' in html
    html, _m = _parse("signin.html", dict(PAGES[1][1]))
    assert "Acme &lt;Gift&gt;" in html and "<Gift>" not in html
    assert '<link rel="stylesheet" href="/m/brand/member.css">' in html
    html, _m = _parse("card.html", dict(PAGES[4][1]))
    assert '<svg width="' in html and 'class="bars"' in html
    assert 'href="/m/card?before=1-0"' in html and NUMBER in html

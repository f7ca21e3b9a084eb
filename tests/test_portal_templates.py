"""The portal's templates as markup: every template a handler names exists, and every page,
rendered with the values its handler passes, keeps the rules docs/portal.md sets for all of
them: `lang` and a `<title>`, the skip link first, a `<label>` for every field, the CSRF field in
every POST form, unique ids, an error tied to its fields. (The templates were once lost because
`.gitignore` hid them; the pages' behaviour is tested over HTTP in test_portal_security.py and
in a browser in test_portal_browser.py.)"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
from pagemarkup import Markup, check_page, parse, templates_named

from gateway.backoffice.reports.period import Period
from gateway.web.portal.cardref import ACTIONS
from gateway.web.portal.charts import bar_chart
from gateway.web.portal.render import HERE, Renderer

HEAD = SimpleNamespace(id=1, display_name="Bea <Boss>", role="head_office", merchant=None,
                       email="boss@example.com", second_factor="totp", last_login_t=1)
STAFF = SimpleNamespace(display_name="Sam", role="staff", merchant="STORE0000000001",
                        email="sam@example.com", second_factor="email", last_login_t=None)
ENTRY = SimpleNamespace(t=1_800_000_000, op="redeem", dv=-1250, dp=0, bal=1250, pts=0,
                        terminal="T1", merchant="M1", undo=None)
CARD = {"card": "603953******1234", "program": "gift", "status": "active", "balance": 2500,
        "points": 0, "expiry": None}
TOKENS = [{"id": "ops", "name": "", "scopes": ["health"], "source": "config", "expires": None,
           "created": None, "enabled": True, "last_used": None, "state": "enabled"},
          {"id": "rt-1", "name": "crm", "scopes": ["cards:read"], "source": "runtime",
           "created": "2026-12-01T00:00:00Z", "expires": None, "enabled": False,
           "last_used": "2027-01-01T00:00:00Z", "state": "disabled"}]
LOYALTY_CARD = {**CARD, "program": "loyalty", "points": 640, "tier": "SILVER",
                "points_expiry": "2027-12-05", "points_expiring": 40}
POINTS_ONLY = SimpleNamespace(points_only=True, invoice_required=True, pin_required=True)
REWARDS = [(SimpleNamespace(id="COFFEE", name="Coffee", points=100, stock=3), None),
           (SimpleNamespace(id="MUG", name="Mug", points=900, stock=None), "not enough points")]
ANSWER = SimpleNamespace(code="00", meaning="approved", approved=True, loyalty=True, amount=1250,
                         balance=None, points=664, tier="SILVER", moved=24, message=None)
RECENT = [{"card": "7700****0001", "ch": "a" * 32, "program": "loyalty", "entries": 2,
           "last": "2027-01-01T10:00:00Z"}]
ENTRY_SENT = {"what": "load", "amount": 2500, "card": "603954******0001", "terminal": "WEB00001",
              "merchant": "STORE0000000001", "invoice": "INV-1"}
CONFIRM = {"what": "purchase (redeem)", "amount": 1250, "amount_text": "12.50",
           "invoice": "INV-1", "terminal": "WEB00001", "merchant": "STORE0000000001",
           "program": "secure", "kind": "purchase", "needs_pin": True}
MANAGER = SimpleNamespace(display_name="Max", role="merchant_manager",
                          merchant="STORE0000000001", email="max@example.com",
                          second_factor="totp", last_login_t=None)
PERSON = SimpleNamespace(id=7, display_name="Ida <I>", role="staff", merchant="STORE0000000001",
                         email="ida@example.com", status="active", second_factor="totp",
                         totp_enrolled=False, password_hash=None, clubs=frozenset({"north"}),
                         created_t=1, last_login_t=None)
CLUB = SimpleNamespace(name="north", programs=("loyalty",), merchants=("STORE0000000001",),
                       terminals=("TILL0001",))

MANAGER = SimpleNamespace(display_name="Meg", role="merchant_manager", merchant="STORE0000000001",
                          email="meg@example.com", second_factor="totp", last_login_t=1)
PROGRAMS = [SimpleNamespace(id="gift", kind="gift"), SimpleNamespace(id="loyalty", kind="loyalty")]
CHOSEN = SimpleNamespace(first="2026-11-23", last="2026-11-24", by="day")
CHARTS = [bar_chart(f"chart-{n}", n.title(), ["2026-11-23", "2026-11-24"], [3, 0])
          for n in ("views", "points")]
FOUND = SimpleNamespace(
    program=SimpleNamespace(id="loyalty"), chosen=CHOSEN,
    period=Period(dt.date(2026, 11, 23), dt.date(2026, 11, 24), dt.UTC),
    columns=("day", "program", "staff_views"), rows=[("2026-11-23", "loyalty", 3)])
CUSTOMER = {"code": "C0001", "name": "Ada <Lovelace>", "email": "ada@example.com",
            "phone": "+44 20 7946 0001", "type": None, "status": "active", "consent": True,
            "consent_time": None, "notes": "", "created": "2026-11-24T09:00:00Z"}
REWARD = {"program": "loyalty", "id": "MUG", "name": "Mug <b>", "points": 30, "stock": None,
          "valid_from": None, "valid_to": "2999-12-31", "clubs": ["STORE0000000001"],
          "tier": "", "enabled": True, "claimed": 2, "source": "store"}
CLAIM = {"id": "1-0", "time": "2026-11-24T10:00:00Z", "op": "claim", "reward": "MUG",
         "card": "77******12", "points": -30, "terminal": "TILL0001",
         "merchant": "STORE0000000001", "key": "L:TILL0001:k1", "operator": "ANNA",
         "orig": None, "voided": False}
LOYALTY = SimpleNamespace(id="loyalty", kind="loyalty")

# (template, values as the handler passes them, with an error where the page can show one)
PAGES = [
    ("error.html", {"title": "Not found", "text": "There is no such page."}),
    ("login.html", {"title": "Log in", "error": "Wrong e-mail address or password.",
                    "message": "You are logged out."}),
    ("code.html", {"title": "Second step", "factor": "email", "masked_email": "s***@x.com",
                   "error": "That code is not right or has expired."}),
    ("code.html", {"title": "Second step", "factor": "totp", "masked_email": "s***@x.com",
                   "error": None}),
    ("enrol.html", {"title": "Set up", "qr": "<svg></svg>", "secret": "ABCD EFGH",
                    "action": "account/enrol", "error": "That code is not right.",
                    "operator": HEAD}),
    ("set_password.html", {"title": "Set your password", "token": "t", "error": "Too short."}),
    ("home.html", {"title": "Home", "operator": HEAD}),
    ("cards.html", {"title": "Card lookup", "card": None, "entries": [], "operator": STAFF,
                    "error": "No card 603953******1234 was issued."}),
    ("cards.html", {"title": "Card lookup", "card": CARD, "loyalty": False, "entries": [ENTRY],
                    "operator": HEAD, "actions": list(ACTIONS), "labels": ACTIONS, "ref": "r",
                    "message": "Changed: active -> suspended."}),
    ("cards.html", {"title": "Card lookup", "card": {**CARD, "points": 40}, "loyalty": True,
                    "entries": [ENTRY], "operator": STAFF, "actions": ["suspend"],
                    "labels": ACTIONS, "ref": "r", "error": "Your role may not close a card."}),
    ("account.html", {"title": "My account", "operator": STAFF, "error": "Not right."}),
    ("tokens.html", {"title": "Admin API tokens", "tokens": TOKENS, "scopes": ["health"],
                     "secret": "s3cret", "created": TOKENS[1], "operator": HEAD,
                     "today": "2027-01-01",
                     "error": "Name is missing."}),
    ("card_confirm.html", {"title": "Transfer the balance?", "action": "transfer",
                           "label": "Transfer the balance", "card": "603953******1234",
                           "what": "Everything moves.", "undo": None, "ref": "r",
                           "target": "603953******9876", "target_ref": "t", "key": "k",
                           "operator": HEAD}),
    ("card_confirm.html", {"title": "Roll back?", "action": "rollback", "label": "Roll back",
                           "card": "603953******1234", "what": "A compensating entry.",
                           "undo": "reload of +10.00", "ref": "r", "target": None,
                           "target_ref": "", "key": "k", "operator": HEAD}),
    ("card_new.html", {"title": "Create cards", "programs": ["gift", "secure"], "max_cards": 100,
                       "order": "o", "entered": {"program": "secure", "count": "<3>",
                                                 "activate": "", "face": ""},
                       "operator": HEAD, "error": "Number of cards: a whole number."}),
    ("card_issued.html", {"title": "Cards created", "program": "secure", "loyalty": False,
                          "pins": True, "again": True, "operator": HEAD,
                          "cards": [SimpleNamespace(card="6039541234567890", pin="1234",
                                                    status="active", balance=2500, points=0)],
                          "order": {"program": "secure", "count": "1", "activate": "25.00",
                                    "face": "", "order": "o"}}),
    ("batch.html", {"title": "Card batches", "stage": "upload", "programs": ["gift"],
                    "problems": ["line 3: amount '5.0.0': expected a number"], "more": 2,
                    "max_mib": 4, "operator": HEAD, "error": "Nothing was imported."}),
    ("batch.html", {"title": "Card batches", "stage": "code", "programs": ["gift"],
                    "problems": [], "more": 0, "max_mib": 4, "digest": "d" * 64,
                    "summary": "gift: 3 card(s)", "minutes": 15, "confirm_to": "a@example.com",
                    "operator": HEAD, "error": "That code is not right: 2 tries left."}),
    ("batch_progress.html", {"title": "Card batch", "digest": "d" * 64, "state": "confirmed",
                             "cards": 10, "at": 4, "percent": 40, "running": False,
                             "refresh": 0, "resumable": True, "operator": HEAD,
                             "stopped": "line 4: card 603953******1234 already exists"}),
    ("staff.html", {"title": "Staff dashboard", "card": None, "answer": None, "recent": [],
                    "recent_note": "", "recent_days": 7, "operator": STAFF,
                    "error": "No program has card numbers like this one."}),
    ("staff.html", {"title": "Staff dashboard", "card": LOYALTY_CARD, "ch": "a" * 32,
                    "nonce": "0" * 16, "program": POINTS_ONLY, "loyalty": True, "earns": True,
                    "rewards": REWARDS, "answer": ANSWER, "recent": RECENT, "recent_note": "",
                    "recent_days": 7, "operator": STAFF, "error": "Points: a whole number."}),
    ("staff.html", {"title": "Staff dashboard", "card": CARD, "ch": "a" * 32,
                    "nonce": "0" * 16, "program": POINTS_ONLY, "loyalty": False,
                    "earns": False, "rewards": [], "answer": None, "recent": None,
                    "recent_note": "Recent interactions cannot be read just now.",
                    "recent_days": 7, "operator": MANAGER}),
    ("entry.html", {"title": "Transaction entry", "kinds": {"purchase": "Purchase"},
                    "merchants": ["STORE0000000001"], "answer": None, "operator": HEAD,
                    "error": "Choose a merchant."}),
    ("entry.html", {"title": "Transaction entry", "kinds": {"purchase": "Purchase"},
                    "merchants": ["STORE0000000001"], "answer": ANSWER, "sent": ENTRY_SENT,
                    "operator": MANAGER}),
    ("entry.html", {"title": "Transaction entry", "kinds": {"purchase": "Purchase"},
                    "merchants": [], "answer": None, "operator": MANAGER}),
    ("entry_confirm.html", {"title": "Confirm the transaction", "entry": CONFIRM,
                            "card": "603954******0001", "ch": "a" * 32, "nonce": "0" * 16,
                            "operator": MANAGER}),
    ("ecards.html", {"title": "E-cards", "operator": HEAD, "programs": [], "orders": [],
                     "total": 0, "order_key": "k" * 22, "form": {}, "loyalty": set(),
                     "stuck": None, "error": "Amount: a sum such as 25.00."}),
    ("ecards.html", {"title": "E-cards", "operator": HEAD, "programs": [], "total": 2,
                     "order_key": "k" * 22, "form": {"recipient_name": "Ann <b>"},
                     "loyalty": {"loyalty"}, "stuck": "The e-mail queue is stuck.",
                     "orders": [{"id": "a" * 32, "program": "gift", "amount": 2500,
                                 "card": "603953*********0123", "recipient_name": "Ann",
                                 "recipient_email": "ann@example.com", "state": "failed",
                                 "sent_t": None, "next_t": 1800000000, "attempts": 12,
                                 "last_error": "SMTP x:25: (550, b'no such user')"},
                                {"id": "b" * 32, "program": "loyalty", "amount": 500,
                                 "card": "77******12", "recipient_name": "Bo",
                                 "recipient_email": "bo@example.com", "state": "sent",
                                 "sent_t": 1800000000, "next_t": 1800000000, "attempts": 1,
                                 "last_error": None}]}),
    ("tokens.html", {"title": "Admin API tokens", "tokens": [], "scopes": ["health"],
                     "secret": None, "created": None, "operator": HEAD, "today": "2027-01-01",
                     "wide": True}),
    ("operators.html", {"title": "Operators", "wide": True, "people": [PERSON],
                        "roles": ("staff",), "merchants": ("STORE0000000001",),
                        "factors": ("totp", "email"), "link": "http://x/ui/set-password?t=1",
                        "added": PERSON, "operator": HEAD, "error": "Give a name.",
                        "next_after": 7, "paged": True}),
    ("operator.html", {"title": "Operator ida@example.com", "person": PERSON,
                       "roles": ("head_office", "staff"), "merchants": ("STORE0000000001",),
                       "clubs": ("north", "south"), "link": "http://x/ui/set-password?t=1",
                       "operator": HEAD}),
    ("clubs.html", {"title": "Clubs", "wide": True, "operator": STAFF,
                    "clubs": [{"club": CLUB, "members": [PERSON]}],
                    "unnamed": [SimpleNamespace(id="club", merchants=("OTHER",))]}),
    ("analytics.html", {"title": "Analytics", "programs": PROGRAMS, "headings": {},
                        "found": FOUND, "charts": CHARTS, "csv_query": "program=loyalty",
                        "chosen": CHOSEN, "program_id": "loyalty", "zone": "UTC",
                        "operator": MANAGER}),
    ("analytics.html", {"title": "Analytics", "programs": PROGRAMS, "headings": {},
                        "found": None, "charts": [], "csv_query": "", "chosen": CHOSEN,
                        "program_id": "", "operator": HEAD, "error": "To: on or after From."}),
    ("staff_report.html", {"title": "Staff report", "programs": PROGRAMS,
                           "columns": ("opid", "program"), "headings": {"opid": "Staff member",
                                                                        "program": "Program"},
                           "found": SimpleNamespace(program="", period=FOUND.period,
                                                    rows=[("ANNA", "loyalty")]),
                           "csv_query": "", "program_id": "", "chosen": CHOSEN,
                           "operator": HEAD}),
    ("staff_report.html", {"title": "Staff report", "programs": PROGRAMS, "columns": (),
                           "headings": {}, "found": None, "csv_query": "", "program_id": "",
                           "chosen": CHOSEN, "operator": MANAGER, "error": "From: a date."}),
    ("customers.html", {"title": "Customers", "customers": [CUSTOMER], "total": 120,
                        "search": "ada", "query": "ada", "card_search": False, "after": "C0001",
                        "next_after": "C0002", "operator": MANAGER}),
    ("customers.html", {"title": "Customers", "customers": [], "total": 0, "search": "",
                        "query": "", "card_search": False, "after": None, "next_after": None,
                        "operator": HEAD}),
    ("customer.html", {"title": "Customer Ada", "operator": HEAD, "entries": [
        {"t": 1764000000, "card": "603953******1234", "program": "gift", "op": "activate",
         "dv": "25.00", "dp": 0, "bal": "25.00", "pts": 0, "merchant": "STORE0000000001"}],
        "customer": {**CUSTOMER, "cards": [
            {"card": "603953******1234", "program": "gift", "status": "active",
             "balance": 2500, "points": 0, "balance_text": "25.00",
             "linked": "2026-11-24T09:00:00Z"}]}}),
    ("customer.html", {"title": "Customer", "operator": MANAGER, "customer": None}),
    ("rewards.html", {"title": "Rewards", "programs": [LOYALTY], "program": LOYALTY,
                      "rewards": [REWARD, {**REWARD, "id": "CUP", "enabled": False}],
                      "merchants": ["STORE0000000001", "BHNRESELLER0001"],
                      "tiers": ["BRONZE", "SILVER"], "form": {"id": "X"}, "operator": HEAD,
                      "error": "Points: at least 1."}),
    ("reward_edit.html", {"title": "Reward MUG", "program": LOYALTY, "reward": REWARD,
                          "merchants": ["STORE0000000001"], "tiers": [], "operator": HEAD,
                          "error": "Valid_to: before valid_from."}),
    ("claims.html", {"title": "Reward claims", "program": LOYALTY,
                     "claims": [CLAIM, {**CLAIM, "id": "2-0", "voided": True}],
                     "chosen": CHOSEN, "zone": "UTC", "operator": HEAD}),
    ("claims.html", {"title": "Reward claims", "program": LOYALTY, "claims": None,
                     "chosen": CHOSEN, "operator": HEAD, "error": "To: on or after From."}),
    ("claim_void.html", {"title": "Void a claim", "program": LOYALTY, "claim": CLAIM,
                         "operator": HEAD}),
]


def _parse(template: str, values: dict) -> tuple[str, Markup]:
    return parse(Renderer(), template, values)


def test_every_template_a_handler_names_exists():
    named = templates_named(HERE)
    assert named >= {"login.html", "cards.html", "error.html"}  # the pattern finds them
    covered = {template for template, _values in PAGES}
    assert named <= covered, f"pages not checked below: {sorted(named - covered)}"


@pytest.mark.parametrize(("template", "values"), PAGES,
                         ids=[f"{t}-{i}" for i, (t, _v) in enumerate(PAGES)])
def test_page_markup(template, values):
    html, m = _parse(template, values)
    check_page(html, m, values, "/ui/")
    if values.get("error"):  # the portal's forms have one error, tied to every field
        assert all(f.get("aria-describedby") == "error" for f in m.fields)
    if values.get("operator") is HEAD:
        assert "Bea &lt;Boss&gt;" in html and "<Boss>" not in html  # autoescaped
    if values.get("operator") is not None:
        assert ('href="/ui/tokens"' in html) == (values["operator"].role == "head_office")
        assert ('href="/ui/operators"' in html) == (values["operator"].role != "staff"
                                                     or template == "clubs.html")


def test_the_card_page_shows_only_the_masked_number_and_fills_nothing_back():
    html, m = _parse("cards.html", dict(PAGES[8][1]))
    assert "603953******1234" in html and "12.50" in html and "-12.50" in html
    card_field = next(f for f in m.fields if f.get("name") == "card")
    assert card_field.get("value") is None and "autofocus" in card_field
    assert 'class="scroll" role="region"' in html  # the history scrolls in its own region


def test_a_value_is_escaped_but_the_qr_code_is_markup():
    html, _m = _parse("enrol.html", {"title": "Set up", "qr": '<svg id="q"></svg>',
                                     "secret": "<b>", "action": "login/enrol", "error": None})
    assert '<svg id="q"></svg>' in html and '<code class="secret" id="secret">&lt;b&gt;' in html


def test_templates_and_static_files_are_shipped_in_the_package():
    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml")
                              .read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["gateway.web.portal"]
    files = [p.relative_to(HERE) for folder in ("templates", "static")
             for p in (HERE / folder).rglob("*") if p.is_file()]
    assert any(p.suffix == ".js" for p in files)
    unshipped = [str(p) for p in files if not any(p.match(g) for g in globs)]
    assert not unshipped, f"not in the package data {globs}: {unshipped}"


def test_a_failure_is_answered_even_when_the_error_page_cannot_render():
    # With the templates missing, the portal's error handler raised and the request was never
    # answered: a client waited until its own time-out. It now answers 503 in plain text.
    from twisted.python.failure import Failure
    from twisted.web.test.requesthelper import DummyRequest

    from gateway.web.portal.web import PortalResource

    class Broken:
        def page(self, template, values):
            raise LookupError(f"{template} is missing")

    request = DummyRequest([b"cards"])
    request.path = b"/ui/cards"
    request._disconnected = False  # server.Request has it; the dummy does not
    PortalResource(None, {}, Broken())._failed(Failure(RuntimeError("store down")), request)
    assert request.finished and request.responseCode == 503
    assert request.responseHeaders.getRawHeaders(b"content-type") == [
        b"text/plain; charset=utf-8"]
    assert b"cannot answer just now" in b"".join(request.written)

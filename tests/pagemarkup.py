"""The markup rules every server-rendered page keeps (docs/portal.md, docs/members.md), checked
on a template rendered with the values its handler passes: `lang` and a `<title>`, one h1, the
skip link first and the focus target it moves to, a `<label>` for every field, the CSRF field in
every POST form, unique ids, an error tied to its fields, no inline style (the CSP allows none).
Used by tests/test_portal_templates.py and tests/test_members_templates.py.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

NAMED = re.compile(r'"([a-z_]+\.html)"')
VOID = {"meta", "link", "input", "br", "img", "hr", "path", "rect"}
SHARED = Path(__file__).resolve().parent.parent / "gateway" / "web" / "templates"


class Markup(HTMLParser):
    """What the checks need: open tags (to find unclosed ones), ids, labels, fields, forms."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.problems: list[str] = []
        self.ids: list[str] = []
        self.labelled: set[str] = set()
        self.fields: list[dict[str, str | None]] = []
        self.forms: list[dict] = []
        self.focusable: list[dict[str, str | None]] = []
        self.html: dict[str, str | None] = {}
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.html = a
        if "id" in a:
            self.ids.append(a["id"] or "")
        if tag == "label" and a.get("for"):
            self.labelled.add(a["for"] or "")
        if tag == "form":
            self.forms.append({**a, "fields": []})
        if tag in ("input", "button") and self.forms and "form" in self.open:
            self.forms[-1]["fields"].append(a)
        if tag == "input" and a.get("type") not in ("hidden", "radio", "checkbox"):
            self.fields.append(a)
        if tag in ("a", "input", "button") and a.get("type") != "hidden":
            self.focusable.append({"tag": tag, **a})
        self._in_title = tag == "title"
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:]}")
        else:
            self.open.pop()
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def parse(renderer: Any, template: str, values: dict) -> tuple[str, Markup]:
    html = renderer.page(template, {"csrf": "CSRF-TOKEN", **values}).decode()
    markup = Markup()
    markup.feed(html)
    markup.close()
    return html, markup


def templates_named(package: Path) -> set[str]:
    """The templates a site's handlers name (`"x.html"` in its modules); each must exist, in
    the site's templates or the shared ones."""
    named = {name for source in package.glob("*.py") for name in NAMED.findall(
        source.read_text())}
    missing = sorted(n for n in named if not (package / "templates" / n).is_file()
                     and not (SHARED / n).is_file())
    assert not missing, f"templates named by {package.name} but missing: {missing}"
    return named


def check_page(html: str, m: Markup, values: dict, root: str) -> None:
    assert not m.problems and m.open == [], (m.problems, m.open)
    assert m.html.get("lang") == "en"
    assert m.title.startswith(values["title"])
    assert html.count("<h1>") == 1
    dup = {i for i in m.ids if m.ids.count(i) > 1}
    assert not dup, f"ids used twice: {dup}"
    first = m.focusable[0]
    assert first.get("class") == "skip" and first.get("href") == "#main"
    assert 'id="main" tabindex="-1"' in html  # the skip link moves focus there
    for field in m.fields:
        assert field.get("id") in m.labelled, f"no <label> for {field}"
    for form in m.forms:
        if (form.get("method") or "").lower() == "post":
            assert form["action"].startswith(root), form
            hidden = [f for f in form["fields"] if f.get("name") == "csrf"]
            assert hidden and hidden[0].get("value") == "CSRF-TOKEN", form
    if values.get("error"):
        assert 'role="alert" id="error"' in html
        assert any(f.get("aria-describedby") for f in m.fields)
    assert "style=" not in html  # the CSP allows no inline style

"""The member page's templates (Jinja2, autoescape on) and stylesheets: one plain stylesheet,
and per program a small one with its brand's colours (`/m/brand/<program>.css`), since the
Content-Security-Policy allows no inline style. Each URL carries a hash of its content, so it
is cached for a year and a changed one is fetched at once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from gateway.config.members import Brand
from gateway.web.site import stylesheet, template_environment

HERE = Path(__file__).parent
CSS = stylesheet(HERE / "static" / "members.css")
CSS_VERSION = hashlib.sha256(CSS).hexdigest()[:12]


def brand_css(brand: Brand) -> bytes:
    """The brand's colours over the plain stylesheet (empty for a brand without colours)."""
    rules = []
    if brand.colour:
        rules.append(f".top {{ background: {brand.colour}; }}")
    if brand.accent:
        rules.append(f"button, .button {{ background: {brand.accent}; }}\n"
                     f"a {{ color: {brand.accent}; }}\n.value {{ border-color: {brand.accent}; }}")
    return ("\n".join(rules) + "\n").encode()


def version(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:12]


class Renderer:
    def __init__(self) -> None:
        self.env = template_environment(HERE / "templates",
                                        f"/m/static/members.css?v={CSS_VERSION}")

    def page(self, template: str, values: dict[str, Any]) -> bytes:
        base = {"csrf": "", "message": None, "error": None, "signed_in": False,
                "brand": Brand(), "brand_css": None, "logo_url": None, "program_id": ""}
        return self.env.get_template(template).render({**base, **values}).encode()

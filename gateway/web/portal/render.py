"""Templates (Jinja2, autoescape on for every template) and the one stylesheet.

The stylesheet's URL carries a hash of its content (`/ui/static/portal.css?v=<hash>`), so it
is cached for a year (`immutable`) and a new release's file is fetched at once anyway.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from gateway.web.portal.scripts import SCRIPTS
from gateway.web.site import money as _money
from gateway.web.site import when as _when

HERE = Path(__file__).parent
CSS = (HERE / "static" / "portal.css").read_bytes()
CSS_VERSION = hashlib.sha256(CSS).hexdigest()[:12]


class Renderer:
    def __init__(self) -> None:
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"),
                               autoescape=select_autoescape(default=True, default_for_string=True),
                               undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.filters["money"] = _money
        self.env.filters["when"] = _when
        self.env.globals["css_url"] = f"/ui/static/portal.css?v={CSS_VERSION}"
        self.env.globals["script_urls"] = [script.url for script in SCRIPTS]  # scanner.html

    def page(self, template: str, values: dict[str, Any]) -> bytes:
        base = {"csrf": "", "operator": None, "message": None, "error": None}
        return self.env.get_template(template).render({**base, **values}).encode()

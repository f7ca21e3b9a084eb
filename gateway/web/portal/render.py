"""Templates (Jinja2, autoescape on for every template) and the one stylesheet.

The stylesheet's URL carries a hash of its content (`/ui/static/portal.css?v=<hash>`), so it
is cached for a year (`immutable`) and a new release's file is fetched at once anyway.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from gateway.web.portal.scripts import SCRIPTS
from gateway.web.site import stylesheet, template_environment

HERE = Path(__file__).parent
CSS = stylesheet(HERE / "static" / "portal.css")
CSS_VERSION = hashlib.sha256(CSS).hexdigest()[:12]


class Renderer:
    def __init__(self) -> None:
        self.env = template_environment(HERE / "templates",
                                        f"/ui/static/portal.css?v={CSS_VERSION}")
        self.env.globals["script_urls"] = [script.url for script in SCRIPTS]  # scanner.html

    def page(self, template: str, values: dict[str, Any]) -> bytes:
        base = {"csrf": "", "operator": None, "message": None, "error": None}
        return self.env.get_template(template).render({**base, **values}).encode()

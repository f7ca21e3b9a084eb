"""The portal's only scripts: the camera scanner (static/scanner.js, ours) and the QR decoder
it uses (jsQR 1.4.0, vendored unchanged under static/vendor/, Apache-2.0).

Every other page runs no script at all (its CSP says `default-src 'none'`); a route that shows
the scanner opts in (`Route(..., camera=True)`, gateway/web/portal/web.py). Each file's URL
carries a hash of its content, like the stylesheet's, so it is cached for a year and a new
release's file is fetched at once anyway.

This module only reads the files: their routes are in gateway/web/portal/scanner.py, their
URLs reach the templates through render.py.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).parent / "static"
JSQR_VERSION = "1.4.0"
JSQR_DIR = STATIC / "vendor" / f"jsqr-{JSQR_VERSION}"
# the SHA-256 of the release's dist/jsQR.js (VENDORED.md next to it says where it came from);
# tests/test_portal_scanner.py compares the file with it, so the file cannot drift unnoticed
JSQR_SHA256 = "bc40c8a15196236b2314db0856f72ca0b49980cd5413b8c852a7349f5fee0859"
JAVASCRIPT = b"text/javascript; charset=utf-8"


@dataclass(frozen=True)
class Script:
    name: str  # the path under /ui/static/
    body: bytes

    @property
    def url(self) -> str:
        return f"/ui/static/{self.name}?v={hashlib.sha256(self.body).hexdigest()[:12]}"


def _script(name: str) -> Script:
    return Script(name, (STATIC / name).read_bytes())


SCANNER = _script("scanner.js")
JSQR = _script(f"vendor/jsqr-{JSQR_VERSION}/jsQR.js")
SCRIPTS = (JSQR, SCANNER)  # in the order the page loads them: the decoder first

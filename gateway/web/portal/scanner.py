"""The camera scanner's script files, served from `/ui/static/` with a year's cache (their URLs
carry their hash: gateway/web/portal/scripts.py).

A page shows the scanner with one line in its template, next to its card field:

    {% import 'scanner.html' as scanner %}
    {{ scanner.camera('card') }}

and its routes (GET and POST) get `camera=True` in pages.py, which gives them the CSP that
lets these two files run and the Permissions-Policy that lets them ask for the camera. The
script fills the field with what the QR code holds and submits the form: the server decodes
it with protocols.carddata as it does typed input, so the scanner adds no way in that the
typed field has not.
"""

from __future__ import annotations

from gateway.web.portal.scripts import JAVASCRIPT, SCRIPTS, Script
from gateway.web.portal.web import STATIC_CACHE, Asset, Ctx, Handler, Reply, Route


def _serve(script: Script) -> Handler:
    async def serve(ctx: Ctx) -> Reply:
        return Asset(script.body, JAVASCRIPT, STATIC_CACHE)

    return serve


ROUTES = {("GET", f"static/{script.name}"): Route(_serve(script), None) for script in SCRIPTS}

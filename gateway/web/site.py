"""What every server-rendered site on the admin listener shares (the operators' portal under
`/ui/`, the member page under `/m/`): the headers of every answer, the body limit and the
Origin check of a POST, the form, query and source address of a request, the session cookie,
the reply types handlers return, and the template filters for money and times.

Neither site imports the other; both import this (and gateway/web/sessions.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from twisted.web import resource, server

from gateway.reactor import deferred_from_coro

MAX_BODY = 64 * 1024
# No script runs (the QR codes and barcodes are inline SVG markup, not scripts or data: images),
# no camera, no framing, nothing cached, no Referer leaving the site (a link's token stays home).
# A portal page with the camera scanner widens two of these (gateway/web/portal/web.py).
CSP = (b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       b"frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    b"content-security-policy": CSP,
    b"permissions-policy": b"camera=()",
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
    b"cache-control": b"no-store",
}
STATIC_CACHE = b"public, max-age=31536000, immutable"


@dataclass
class Page:
    template: str
    values: dict[str, Any] = field(default_factory=dict)
    status: int = 200


@dataclass
class Redirect:
    location: str  # a path under the site's root (/ui/, /m/)


@dataclass
class Asset:
    body: bytes
    content_type: bytes
    cache: bytes
    filename: str | None = None  # a download (Content-Disposition: attachment) of this name


Reply = Page | Redirect | Asset


def post_refusal(request: Any, max_body: int = MAX_BODY) -> tuple[int, str, str] | None:
    """A POST refused before anything else: a body over `max_body` (413; MAX_BODY but where a
    page takes a file), or an Origin header naming another site (403). None when it may go on."""
    length = request.content.seek(0, 2)
    request.content.seek(0)
    if length > max_body:
        return 413, "Too large", "That form was larger than any of ours."
    origin = request.getHeader(b"origin")
    if origin is not None and origin != b"null":
        host = request.getHeader(b"host") or b""
        if urlsplit(origin.decode("ascii", "replace")).netloc.encode() != host:
            return 403, "Refused", "That form came from another site."
    return None


def form_of(request: Any) -> dict[str, str]:
    """The urlencoded form (twisted.web parsed it into request.args): first value of each."""
    out: dict[str, str] = {}
    for name, values in (request.args or {}).items():
        if values:
            out[name.decode("utf-8", "replace")] = values[0].decode("utf-8", "replace")
    return out


def query_of(request: Any) -> dict[str, str]:
    raw = request.uri.split(b"?", 1)[1] if b"?" in request.uri else b""
    return dict(parse_qsl(raw.decode("utf-8", "replace")))


def address_of(request: Any) -> str:
    peer = request.getClientAddress()
    return getattr(peer, "host", "unix")


def session_cookie(request: Any, name: str, value: str, tls: bool, expire: bool = False) -> None:
    """HttpOnly (no script reads it), SameSite=Strict (never sent with a request another
    site starts, a second wall behind the CSRF token), Secure (and a `__Host-` name, the
    caller's) with TLS; a session cookie (no Max-Age: gone when the browser closes), the
    server ends it anyway."""
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if tls:
        parts.append("Secure")
    if expire:
        parts.append("Max-Age=0")
    request.responseHeaders.addRawHeader(b"set-cookie", "; ".join(parts).encode())


def send(request: Any, status: int, content_type: bytes, body: bytes) -> None:
    """Finish the request with this answer, unless the client has gone."""
    if request.finished or request._disconnected:
        return
    request.setResponseCode(status)
    request.setHeader(b"content-type", content_type)
    request.write(body)
    request.finish()


class SiteResource(resource.Resource):
    """The one twisted.web resource of a site (the portal's, the member page's): every answer
    gets HEADERS and is worked out by the subclass's coroutine `_answer(request)`; a failure is
    logged and answered 503 with the site's error page, or plain text when even that cannot be
    rendered, so no request is left unanswered."""

    isLeaf = True
    site = "site"  # names the site in log lines
    unavailable = "This page cannot answer just now. Try again in a moment."
    renderer: Any  # the site's Renderer (error.html)

    async def _answer(self, request: Any) -> None:
        raise NotImplementedError

    def render(self, request):
        for name, value in HEADERS.items():
            request.setHeader(name, value)
        d = deferred_from_coro(self._answer(request))
        d.addErrback(self._failed, request)
        return server.NOT_DONE_YET

    def _failed(self, failure, request) -> None:
        log = logging.getLogger(type(self).__module__)
        log.error("%s: %s %s failed: %s", self.site, request.method.decode(), request.path.decode(
            "ascii", "replace")[:100], failure.getErrorMessage())
        text = self.unavailable
        try:
            body = self.renderer.page("error.html", {"title": "Not available", "text": text})
        except Exception as e:  # a broken template must not leave the request unanswered
            log.error("%s: error.html cannot be rendered either: %s", self.site, e)
            send(request, 503, b"text/plain; charset=utf-8", text.encode() + b"\n")
            return
        send(request, 503, b"text/html; charset=utf-8", body)


def money(minor: int) -> str:
    """Minor units as text with two decimals, by integer arithmetic (never a float)."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(int(minor)), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def when(epoch: int | float | None) -> str:
    if not epoch:
        return "never"
    return dt.datetime.fromtimestamp(int(epoch), dt.UTC).strftime("%Y-%m-%d %H:%M UTC")

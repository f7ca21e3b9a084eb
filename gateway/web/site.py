"""What every server-rendered site on the admin listener shares (the operators' portal under
`/ui/`, the member page under `/m/`): the headers of every answer, the body limit and the
Origin check of a POST, the form, query and source address of a request, the session cookie,
the reply types handlers return, the resource that routes a request through the checks both
sites make (SiteResource), and the template filters for money and times.

Neither site imports the other; both import this (and gateway/web/sessions.py).
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from twisted.web import resource, server

from gateway.ledger.store import UnacknowledgedWrite
from gateway.reactor import deferred_from_coro

MAX_BODY = 64 * 1024
# No script runs (the QR codes and barcodes are inline SVG markup, not scripts or data: images),
# no camera, no framing, nothing cached, no Referer leaving the site (a link's token stays home).
# A page with the camera scanner (a route's `camera`) widens two of these: CAMERA_HEADERS.
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
# a page with the camera scanner: the site's own script files run (no inline script, no eval)
# and the page may ask for the camera; every other page keeps HEADERS
CAMERA_HEADERS = {
    b"content-security-policy": CSP + b"; script-src 'self'",
    b"permissions-policy": b"camera=(self)",
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


@dataclass
class Ctx:
    """What a handler gets: the request, the form, the session and the path's tail. Each site
    adds what its handlers need (the portal its service and the operator, as `ctx.portal`)."""

    request: Any
    method: str
    form: dict[str, str]
    query: dict[str, str]
    now: float
    address: str
    tail: str = ""  # the rest of the path of a prefix route (`brand/<tail>`)
    session: Any = None  # gateway.web.sessions.Session
    new_session: Any = None  # set by a handler that opened one: sent as the cookie
    drop_cookie: bool = False


class SiteResource(resource.Resource):
    """The one twisted.web resource of a site (the portal's, the member page's): routes a
    request to its handler after the checks every page shares, in this order:

    1. HEADERS on every answer (CAMERA_HEADERS where the route shows the camera scanner);
    2. a POST body over the route's `max_body` is refused (413), and a POST whose Origin is
       another site (403), before anything else happens;
    3. then the subclass's `_gate` (the session, the CSRF token of a POST: `_load_session`,
       `_csrf_refused`), then the handler; its Reply is sent by `_reply`.

    A failure is logged and answered 503 with the site's error page, or plain text when even
    that cannot be rendered, so no request is left unanswered.

    `service` is the site's SiteService (gateway/web/service.py); `routes` maps (method, path)
    to a route with `handler`, `stage`, `max_body` and `camera`; a path `head/*` matches any
    one segment after `head/`, given to the handler as `ctx.tail`.
    """

    isLeaf = True
    site = "site"  # names the site in log lines
    root = "/"  # where the site is mounted: redirects are relative to it
    unavailable = "This page cannot answer just now. Try again in a moment."

    def __init__(self, service: Any, routes: dict[tuple[str, str], Any], renderer: Any):
        super().__init__()
        self.service = service
        self.routes = routes
        self.renderer = renderer  # the site's Renderer: page(template, values) -> bytes

    def render(self, request):
        for name, value in HEADERS.items():
            request.setHeader(name, value)
        d = deferred_from_coro(self._answer(request))
        d.addErrback(self._failed, request)
        return server.NOT_DONE_YET

    def _route(self, method: str, path: str) -> tuple[Any, str]:
        route = self.routes.get((method, path))
        if route is not None:
            return route, ""
        head, sep, tail = path.partition("/")
        if sep and tail and "/" not in tail:
            return self.routes.get((method, head + "/*")), tail
        return None, ""

    async def _answer(self, request: Any) -> None:
        method = request.method.decode("ascii", "replace")
        path = "/".join(p.decode("utf-8", "replace") for p in request.postpath).strip("/")
        route, tail = self._route(method, path)
        if route is None:
            if any(p == path for _m, p in self.routes):
                return self._error(request, 405, "Not allowed",
                                   "This page does not take that kind of request.")
            return self._error(request, 404, "Not found", "There is no such page.")
        if getattr(route, "camera", False):
            for name, value in CAMERA_HEADERS.items():
                request.setHeader(name, value)
        if method == "POST":
            refused = post_refusal(request, getattr(route, "max_body", MAX_BODY))
            if refused:
                return self._error(request, *refused)
        ctx = self._context(request=request, method=method,
                            form=form_of(request) if method == "POST" else {},
                            query=query_of(request), now=self.service.clock(),
                            address=address_of(request), tail=tail)
        outcome = await self._gate(ctx, route)
        reply = outcome if outcome is not None else await route.handler(ctx)
        self._reply(ctx, reply)

    def _context(self, **fields: Any) -> Any:
        """The site's Ctx for one request."""
        raise NotImplementedError

    async def _gate(self, ctx: Any, route: Any) -> Reply | None:
        """What the route needs before its handler runs; a Reply when the request stops here."""
        raise NotImplementedError

    async def _load_session(self, ctx: Any) -> bool:
        """The session named by the cookie into ctx.session; one that timed out is dropped
        (and its cookie with it). True when it had timed out."""
        service = self.service
        sid = ctx.request.getCookie(service.cookie_name.encode())
        if sid:
            ctx.session = await service.sessions().load(sid.decode("ascii", "replace"))
        if ctx.session is not None and service.timed_out(ctx.session, ctx.now):
            await service.sessions().drop(ctx.session)
            ctx.session, ctx.drop_cookie = None, True
            return True
        return False

    def _csrf_refused(self, ctx: Any) -> Page | None:
        """The synchronizer token: a POST must carry its session's CSRF token."""
        sent = ctx.form.get("csrf", "")
        if ctx.session is not None and hmac.compare_digest(sent.encode(),
                                                           ctx.session.csrf.encode()):
            return None
        logging.getLogger(type(self).__module__).warning(
            "%s: %s without a valid CSRF token from %s refused", self.site,
            ctx.request.path.decode("ascii", "replace")[:100], ctx.address)
        return Page("error.html", {"title": "Form expired", "text":
                    "This form is out of date or did not come from this site. "
                    "Open the page again and send it again."}, 403)

    def _error(self, request: Any, status: int, title: str, text: str) -> None:
        send(request, status, b"text/html; charset=utf-8",
             self.renderer.page("error.html", {"title": title, "text": text}))

    def _reply(self, ctx: Any, reply: Reply) -> None:
        request, service = ctx.request, self.service
        if ctx.new_session is not None:
            session_cookie(request, service.cookie_name, ctx.new_session.sid, service.tls)
        elif ctx.drop_cookie:
            session_cookie(request, service.cookie_name, "", service.tls, expire=True)
        if isinstance(reply, Redirect):
            request.setHeader(b"location", (self.root + reply.location).encode())
            send(request, 303, b"text/plain; charset=utf-8", b"")
        elif isinstance(reply, Asset):
            request.setHeader(b"cache-control", reply.cache)
            if reply.filename:
                request.setHeader(b"content-disposition",
                                  f'attachment; filename="{reply.filename}"'.encode())
            send(request, 200, reply.content_type, reply.body)
        else:
            send(request, reply.status, b"text/html; charset=utf-8",
                 self.renderer.page(reply.template, self._values(ctx, reply)))

    def _values(self, ctx: Any, reply: Page) -> dict[str, Any]:
        """What a page's template gets: the CSRF token of its forms, and the handler's values
        (a site adds its own)."""
        session = ctx.new_session or ctx.session
        return {"csrf": session.csrf if session else "", **reply.values}

    def _failed(self, failure, request) -> None:
        log = logging.getLogger(type(self).__module__)
        log.error("%s: %s %s failed: %s", self.site, request.method.decode(), request.path.decode(
            "ascii", "replace")[:100], failure.getErrorMessage())
        text = NOT_ON_REPLICAS if failure.check(UnacknowledgedWrite) else self.unavailable
        try:
            body = self.renderer.page("error.html", {"title": "Not available", "text": text})
        except Exception as e:  # a broken template must not leave the request unanswered
            log.error("%s: error.html cannot be rendered either: %s", self.site, e)
            send(request, 503, b"text/plain; charset=utf-8", text.encode() + b"\n")
            return
        send(request, 503, b"text/html; charset=utf-8", body)


# A change the store made on its primary but its replicas did not confirm in time (durable
# acknowledgement, docs/scaling.md): not "try again", which could apply it twice.
NOT_ON_REPLICAS = ("The change was made, but the store's replicas have not confirmed it, so a "
                   "failover could still lose it. Look at the card again before you repeat it.")
SHARED_TEMPLATES = Path(__file__).parent / "templates"  # what both sites' templates include
BASE_CSS = Path(__file__).parent / "static" / "base.css"


def stylesheet(own: Path) -> bytes:
    """A site's one stylesheet: the rules both sites keep, then the site's own (one file, one
    request; the site's rules come later, so they win where both set a property)."""
    return BASE_CSS.read_bytes() + own.read_bytes()


def template_environment(templates: Path, css_url: str) -> Environment:
    """A site's Jinja2 environment: its own templates, then the shared ones (fields.html);
    autoescape on for every template, an undefined name an error, the money and time filters,
    and the URL of the site's stylesheet."""
    env = Environment(loader=FileSystemLoader([templates, SHARED_TEMPLATES]),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = money
    env.filters["when"] = when
    env.globals["css_url"] = css_url
    return env


def money(minor: int) -> str:
    """Minor units as text with two decimals, by integer arithmetic (never a float)."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(int(minor)), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def when(epoch: int | float | None) -> str:
    if not epoch:
        return "never"
    return dt.datetime.fromtimestamp(int(epoch), dt.UTC).strftime("%Y-%m-%d %H:%M UTC")

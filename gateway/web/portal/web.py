"""The portal's one twisted.web resource, `/ui/`: routes a request to its page handler after the
checks every page shares, in this order:

1. headers for every answer: a Content-Security-Policy that allows no script and no framing,
   no camera, no caching of pages, no Referer leaving the site (a set-password link carries its
   token); a route with the camera scanner (Route.camera) admits our own script files and the
   camera;
2. a POST body over 64 KiB (or the route's own `max_body`) is refused (413), and a POST
   whose Origin is another site is refused (403) before anything else happens;
3. the session from the cookie (gateway/web/portal/sessions.py); an idle or too old one is dropped;
4. the CSRF token of every POST is compared with the session's (synchronizer token pattern);
5. the page's requirement: a stage (logged in, or between the password and the second factor)
   and, logged in, an active operator whose "logout everywhere" generation is the session's,
   and one of the page's roles.

Handlers are coroutines `handler(ctx) -> Reply` (gateway/web/portal/pages.py and the modules it
names); SQL and Redis are awaited on the reactor's asyncio loop (deferred_from_coro).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gateway.backoffice import operators as ops
from gateway.backoffice.operators import Operator
from gateway.web.portal.render import Renderer
from gateway.web.portal.sessions import ANON, IN, PASSWORD, Session
from gateway.web.site import (  # noqa: F401  (importable here, as before)
    CSP,
    HEADERS,
    MAX_BODY,
    STATIC_CACHE,
    Asset,
    Page,
    Redirect,
    Reply,
    SiteResource,
    post_refusal,
    send,
    session_cookie,
)
from gateway.web.site import address_of as _address
from gateway.web.site import form_of as _form
from gateway.web.site import query_of as _query

log = logging.getLogger(__name__)

COOKIE = "tg_portal"
SECURE_COOKIE = "__Host-tg_portal"  # with TLS: Secure, Path=/, no Domain, enforced by browsers
# a page with the camera scanner (Route.camera): the portal's own script files run (no inline
# script, no eval) and the page may ask for the camera; every other page keeps HEADERS
CAMERA_HEADERS = {
    b"content-security-policy": CSP + b"; script-src 'self'",
    b"permissions-policy": b"camera=(self)",
}


@dataclass
class Ctx:
    """What a handler gets: the request, the form, the session and (logged in) the operator."""

    portal: Any  # gateway.web.portal.service.Portal
    request: Any
    method: str
    form: dict[str, str]
    query: dict[str, str]
    now: float
    address: str
    session: Session | None = None
    operator: Operator | None = None
    new_session: Session | None = None  # set by a handler that opened one: sent as the cookie
    drop_cookie: bool = False


Handler = Callable[[Ctx], Awaitable[Reply]]


@dataclass(frozen=True)
class Route:
    handler: Handler
    stage: str | None  # None: no session needed; ANON: any session; PASSWORD; IN
    roles: tuple[str, ...] = ops.ROLES
    max_body: int = MAX_BODY  # a larger POST body only where a page takes a file
    camera: bool = False  # the page shows the camera scanner: CAMERA_HEADERS


class PortalResource(SiteResource):
    site = "portal"
    unavailable = "The portal cannot answer just now. Try again in a moment."

    def __init__(self, portal: Any, routes: dict[tuple[str, str], Route], renderer: Renderer):
        super().__init__()
        self.portal = portal
        self.routes = routes
        self.renderer = renderer

    _send = staticmethod(send)

    async def _answer(self, request) -> None:
        method = request.method.decode("ascii", "replace")
        path = "/".join(p.decode("utf-8", "replace") for p in request.postpath).strip("/")
        route = self.routes.get((method, path))
        if route is None:
            known = any(p == path for _m, p in self.routes)
            status = 405 if known else 404
            return self._error(request, status, "Not found" if status == 404 else
                               "Not allowed", "There is no such page." if status == 404 else
                               "This page does not take that kind of request.")
        if route.camera:
            for name, value in CAMERA_HEADERS.items():
                request.setHeader(name, value)
        if method == "POST":
            refused = self._post_refusal(request, route.max_body)
            if refused:
                return self._error(request, *refused)
        ctx = Ctx(self.portal, request, method, _form(request) if method == "POST" else {},
                  _query(request), self.portal.clock(), _address(request))
        outcome = await self._gate(ctx, route)
        reply = outcome if outcome is not None else await route.handler(ctx)
        self._reply(ctx, reply)

    _post_refusal = staticmethod(post_refusal)

    async def _gate(self, ctx: Ctx, route: Route) -> Reply | None:
        """Load the session and check what the route needs; a Reply when it stops here."""
        portal = self.portal
        sid = ctx.request.getCookie(portal.cookie_name.encode())
        if sid:
            ctx.session = await portal.sessions().load(sid.decode("ascii", "replace"))
        if ctx.session is not None and portal.timed_out(ctx.session, ctx.now):
            await portal.sessions().drop(ctx.session)
            ctx.session, ctx.drop_cookie = None, True
            if route.stage is not None and route.stage != ANON:
                return Redirect("login?why=timeout")
        if ctx.method == "POST" and route.stage is not None:
            sent = ctx.form.get("csrf", "")
            if ctx.session is None or not hmac.compare_digest(sent.encode(),
                                                               ctx.session.csrf.encode()):
                log.warning("portal: %s without a valid CSRF token from %s refused",
                            ctx.request.path.decode("ascii", "replace")[:100], ctx.address)
                return Page("error.html", {"title": "Form expired", "text":
                            "This form is out of date or did not come from this portal. "
                            "Open the page again and resend it."}, 403)
        if route.stage in (None, ANON):
            return None
        session = ctx.session
        if session is None or session.stage != route.stage:
            if session is not None and session.stage == IN and route.stage == PASSWORD:
                return Redirect("")
            return Redirect("login")
        if route.stage == IN:
            operator = await ops.by_id(await portal.engine(), session.operator_id or 0)
            if (operator is None or not operator.active
                    or operator.session_gen != session.data.get("gen")):
                await portal.sessions().drop(session)
                ctx.session, ctx.drop_cookie = None, True
                return Redirect("login?why=ended")
            if operator.role not in route.roles:
                return Page("error.html", {"title": "Not for your role", "text":
                            "Your role does not open this page."}, 403)
            ctx.operator = operator
            session.seen = ctx.now
            await portal.sessions().save(session)
        return None

    def _error(self, request, status: int, title: str, message: str) -> None:
        self._send(request, status, b"text/html; charset=utf-8",
                   self.renderer.page("error.html", {"title": title, "text": message}))

    def _reply(self, ctx: Ctx, reply: Reply) -> None:
        request = ctx.request
        if ctx.new_session is not None:
            self._set_cookie(request, ctx.new_session.sid)
        elif ctx.drop_cookie:
            self._set_cookie(request, "", expire=True)
        if isinstance(reply, Redirect):
            request.setHeader(b"location", ("/ui/" + reply.location).encode())
            self._send(request, 303, b"text/plain; charset=utf-8", b"")
        elif isinstance(reply, Asset):
            request.setHeader(b"cache-control", reply.cache)
            if reply.filename:
                request.setHeader(b"content-disposition",
                                  f'attachment; filename="{reply.filename}"'.encode())
            self._send(request, 200, reply.content_type, reply.body)
        else:
            session = ctx.new_session or ctx.session
            values = {"csrf": session.csrf if session else "", "operator": ctx.operator,
                      **reply.values}
            self._send(request, reply.status, b"text/html; charset=utf-8",
                       self.renderer.page(reply.template, values))

    def _set_cookie(self, request, value: str, expire: bool = False) -> None:
        session_cookie(request, self.portal.cookie_name, value, self.portal.tls, expire)


def epoch() -> float:
    return time.time()

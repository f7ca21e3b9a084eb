"""The member page's one twisted.web resource, `/m/`: routes a request to its page handler
after the checks every page shares, in the portal's order (gateway/web/site.py has the parts):

1. headers for every answer: no script, no framing, no caching, no Referer;
2. a POST body over 64 KiB is refused (413), a POST whose Origin is another site (403);
3. the session from the member cookie (`tg_member`, its own: a member and an operator in one
   browser are two sessions); an idle or too old one is dropped;
4. the CSRF token of every POST is compared with the session's;
5. the page's stage: signed in, or between asking for an e-mailed code and entering it.

Every page is branded with the program of the signed-in card, or before the sign-in with the
program named by `?p=<program>` (the links of e-card mails carry it).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gateway.config.members import Brand
from gateway.config.model import Program
from gateway.web.members.render import Renderer
from gateway.web.sessions import ANON, IN, Session
from gateway.web.site import (
    Asset,
    Page,
    Redirect,
    Reply,
    SiteResource,
    address_of,
    form_of,
    post_refusal,
    query_of,
    send,
    session_cookie,
)

log = logging.getLogger(__name__)

# A signed-in session's last request time is written back at most this often: the idle
# time-out (minutes) is kept to within these seconds, and a member paging through the
# history does not write the session at every page.
SEEN_STEP = 30


@dataclass
class Ctx:
    """What a handler gets: the request, the form, the session and the path's tail."""

    members: Any  # gateway.web.members.service.Members
    request: Any
    method: str
    form: dict[str, str]
    query: dict[str, str]
    now: float
    address: str
    tail: str = ""  # the rest of the path of a prefix route (`brand/<tail>`)
    session: Session | None = None
    new_session: Session | None = None  # set by a handler that opened one: sent as the cookie
    drop_cookie: bool = False


Handler = Callable[[Ctx], Awaitable[Reply]]


@dataclass(frozen=True)
class Route:
    handler: Handler
    stage: str | None  # None: no session needed; ANON: any session; CODE; IN


def brand_of(config: Any, program_id: str | None) -> tuple[Program | None, Brand]:
    program = config.programs.get(program_id or "")
    return program, program.brand if program is not None else Brand()


class MemberResource(SiteResource):
    site = "members"

    def __init__(self, members: Any, routes: dict[tuple[str, str], Route], renderer: Renderer):
        super().__init__()
        self.members = members
        self.routes = routes
        self.renderer = renderer

    def _route(self, method: str, path: str) -> tuple[Route | None, str]:
        route = self.routes.get((method, path))
        if route is not None:
            return route, ""
        head, sep, tail = path.partition("/")
        if sep and tail and "/" not in tail:
            return self.routes.get((method, head + "/*")), tail
        return None, ""

    async def _answer(self, request) -> None:
        method = request.method.decode("ascii", "replace")
        path = "/".join(p.decode("utf-8", "replace") for p in request.postpath).strip("/")
        route, tail = self._route(method, path)
        if route is None:
            known = any(p == path for _m, p in self.routes)
            return self._error(request, 405 if known else 404)
        if method == "POST":
            refused = post_refusal(request)
            if refused:
                return self._send_error(request, *refused)
        ctx = Ctx(self.members, request, method, form_of(request) if method == "POST" else {},
                  query_of(request), self.members.clock(), address_of(request), tail)
        outcome = await self._gate(ctx, route)
        reply = outcome if outcome is not None else await route.handler(ctx)
        self._reply(ctx, reply)

    async def _gate(self, ctx: Ctx, route: Route) -> Reply | None:
        members = self.members
        if route.stage is None:
            return None
        sid = ctx.request.getCookie(members.cookie_name.encode())
        if sid:
            ctx.session = await members.sessions().load(sid.decode("ascii", "replace"))
        if ctx.session is not None and members.timed_out(ctx.session, ctx.now):
            await members.sessions().drop(ctx.session)
            ctx.session, ctx.drop_cookie = None, True
            if route.stage != ANON:
                return Redirect("?why=timeout")
        if ctx.method == "POST":
            sent = ctx.form.get("csrf", "")
            if ctx.session is None or not hmac.compare_digest(sent.encode(),
                                                               ctx.session.csrf.encode()):
                log.warning("members: %s without a valid CSRF token from %s refused",
                            ctx.request.path.decode("ascii", "replace")[:100], ctx.address)
                return Page("error.html", {"title": "Form expired", "text":
                            "This form is out of date or did not come from this page. "
                            "Open the page again and send it again."}, 403)
        if route.stage == ANON:
            return None
        session = ctx.session
        if session is None or session.stage != route.stage:
            return Redirect("")
        if route.stage == IN and ctx.now - session.seen >= SEEN_STEP:
            session.seen = ctx.now
            await members.sessions().save(session)
        return None

    def _error(self, request, status: int) -> None:
        if status == 404:
            return self._send_error(request, 404, "Not found", "There is no such page.")
        return self._send_error(request, 405, "Not allowed",
                                "This page does not take that kind of request.")

    def _send_error(self, request, status: int, title: str, text: str) -> None:
        send(request, status, b"text/html; charset=utf-8",
             self.renderer.page("error.html", {"title": title, "text": text}))

    def _reply(self, ctx: Ctx, reply: Reply) -> None:
        request = ctx.request
        if ctx.new_session is not None:
            session_cookie(request, self.members.cookie_name, ctx.new_session.sid,
                           self.members.tls)
        elif ctx.drop_cookie:
            session_cookie(request, self.members.cookie_name, "", self.members.tls, expire=True)
        if isinstance(reply, Redirect):
            request.setHeader(b"location", ("/m/" + reply.location).encode())
            send(request, 303, b"text/plain; charset=utf-8", b"")
        elif isinstance(reply, Asset):
            request.setHeader(b"cache-control", reply.cache)
            send(request, 200, reply.content_type, reply.body)
        else:
            send(request, reply.status, b"text/html; charset=utf-8",
                 self.renderer.page(reply.template, self._values(ctx, reply)))

    def _values(self, ctx: Ctx, reply: Page) -> dict[str, Any]:
        session = ctx.new_session or ctx.session
        signed_in = session is not None and session.stage == IN
        program_id = (session.data.get("prog") if signed_in and session is not None
                      else ctx.query.get("p"))
        program, brand = brand_of(self.members.config, program_id)
        branded = program is not None and (brand.colour or brand.accent)
        return {"csrf": session.csrf if session else "", "signed_in": signed_in,
                "brand": brand, "program_id": program.id if program else "",
                "brand_css": f"/m/brand/{program.id}.css" if branded and program else None,
                "logo_url": f"/m/logo/{program.id}" if program and brand.logo else None,
                **reply.values}

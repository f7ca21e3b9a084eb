"""The portal's one twisted.web resource, `/ui/`: the checks every page shares are in
gateway/web/site.py (SiteResource: headers with a Content-Security-Policy that allows no script,
no framing and no camera but on the scanner's pages; a POST over 64 KiB or the route's own
`max_body` refused, 413, as is one whose Origin is another site, 403; the CSRF token of every
POST); this adds the portal's own:

- the session from the portal cookie (gateway/web/sessions.py); an idle or too old one is
  dropped;
- the page's requirement: a stage (logged in, or between the password and the second factor)
  and, logged in, an active operator whose "logout everywhere" generation is the session's,
  and one of the page's roles.

Handlers are coroutines `handler(ctx) -> Reply` (gateway/web/portal/pages.py and the modules it
names); SQL and Redis are awaited on the reactor's asyncio loop (deferred_from_coro).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gateway.backoffice import operators as ops
from gateway.backoffice.operators import Operator
from gateway.web import site
from gateway.web.portal.sessions import ANON, IN, PASSWORD
from gateway.web.site import (  # noqa: F401  (the pages import them from here)
    CSP,
    HEADERS,
    MAX_BODY,
    STATIC_CACHE,
    Asset,
    Page,
    Redirect,
    Reply,
    SiteResource,
)

COOKIE = "tg_portal"
SECURE_COOKIE = "__Host-tg_portal"  # with TLS: Secure, Path=/, no Domain, enforced by browsers


@dataclass
class Ctx(site.Ctx):
    """A portal request (site.Ctx), the portal's service and, logged in, the operator."""

    portal: Any = None  # gateway.web.portal.service.Portal
    operator: Operator | None = None


Handler = Callable[[Ctx], Awaitable[Reply]]


@dataclass(frozen=True)
class Route:
    handler: Handler
    stage: str | None  # None: no session needed; ANON: any session; PASSWORD; IN
    roles: tuple[str, ...] = ops.ROLES
    max_body: int = MAX_BODY  # a larger POST body only where a page takes a file
    camera: bool = False  # the page shows the camera scanner: site.CAMERA_HEADERS


class PortalResource(SiteResource):
    site = "portal"
    root = "/ui/"
    unavailable = "The portal cannot answer just now. Try again in a moment."

    def _context(self, **fields: Any) -> Ctx:
        return Ctx(portal=self.service, **fields)

    async def _gate(self, ctx: Ctx, route: Route) -> Reply | None:
        """Load the session and check what the route needs; a Reply when it stops here."""
        portal = self.service
        if await self._load_session(ctx) and route.stage not in (None, ANON):
            return Redirect("login?why=timeout")
        if ctx.method == "POST" and route.stage is not None:
            refused = self._csrf_refused(ctx)
            if refused is not None:
                return refused
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

    def _values(self, ctx: Ctx, reply: Page) -> dict[str, Any]:
        return {"operator": ctx.operator, **super()._values(ctx, reply)}


def epoch() -> float:
    return time.time()

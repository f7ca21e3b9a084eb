"""The member page's one twisted.web resource, `/m/`: the checks every page shares are the
portal's (gateway/web/site.py SiteResource: headers, POST limits and Origin, the session from
the cookie, CSRF); this adds the member page's own:

- the session is the member cookie's (`tg_member`, its own: a member and an operator in one
  browser are two sessions); an idle or too old one is dropped;
- the page's stage: signed in, or between asking for an e-mailed code and entering it.

Every page is branded with the program of the signed-in card, or before the sign-in with the
program named by `?p=<program>` (the links of e-card mails carry it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gateway.config.members import Brand
from gateway.config.model import Program
from gateway.web import site
from gateway.web.sessions import ANON, IN
from gateway.web.site import Page, Redirect, Reply, SiteResource

# A signed-in session's last request time is written back at most this often: the idle
# time-out (minutes) is kept to within these seconds, and a member paging through the
# history does not write the session at every page.
SEEN_STEP = 30


@dataclass
class Ctx(site.Ctx):
    """A member page's request (site.Ctx) and the member page's service."""

    members: Any = None  # gateway.web.members.service.Members


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
    root = "/m/"

    def _context(self, **fields: Any) -> Ctx:
        return Ctx(members=self.service, **fields)

    async def _gate(self, ctx: Ctx, route: Route) -> Reply | None:
        if route.stage is None:
            return None
        if await self._load_session(ctx) and route.stage != ANON:
            return Redirect("?why=timeout")
        if ctx.method == "POST":
            refused = self._csrf_refused(ctx)
            if refused is not None:
                return refused
        if route.stage == ANON:
            return None
        session = ctx.session
        if session is None or session.stage != route.stage:
            return Redirect("")
        if route.stage == IN and ctx.now - session.seen >= SEEN_STEP:
            session.seen = ctx.now
            await self.service.sessions().save(session)
        return None

    def _values(self, ctx: Ctx, reply: Page) -> dict[str, Any]:
        session = ctx.new_session or ctx.session
        signed_in = session is not None and session.stage == IN
        program_id = (session.data.get("prog") if signed_in and session is not None
                      else ctx.query.get("p"))
        program, brand = brand_of(self.service.config, program_id)
        branded = program is not None and (brand.colour or brand.accent)
        return {"signed_in": signed_in, "brand": brand,
                "program_id": program.id if program else "",
                "brand_css": f"/m/brand/{program.id}.css" if branded and program else None,
                "logo_url": f"/m/logo/{program.id}" if program and brand.logo else None,
                **super()._values(ctx, reply)}

"""The member page's routes under `/m/`, the stage each needs, and its stylesheets and logos.

Stage None: no session needed; `anon`: any session (a sign-in form's CSRF token); `code`:
an e-mailed code awaited; `in`: signed in. A path ending in `/*` takes one more segment.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from gateway.config.members import LOGO_TYPES
from gateway.web.members import card, signin
from gateway.web.members.render import CSS, Renderer, brand_css
from gateway.web.members.service import CODE, Members
from gateway.web.members.web import Ctx, MemberResource, Route
from gateway.web.sessions import ANON, IN
from gateway.web.site import STATIC_CACHE, Asset, Page, Reply

BRAND_CACHE = b"public, max-age=300"  # a reload may change the colours or the logo


def _not_found() -> Page:
    return Page("error.html", {"title": "Not found", "text": "There is no such page."}, 404)


async def stylesheet(ctx: Ctx) -> Reply:
    return Asset(CSS, b"text/css; charset=utf-8", STATIC_CACHE)


async def brand_stylesheet(ctx: Ctx) -> Reply:
    """`/m/brand/<program>.css`: the program's colours."""
    program = ctx.members.config.programs.get(ctx.tail.removesuffix(".css"))
    if program is None or not ctx.tail.endswith(".css"):
        return _not_found()
    return Asset(brand_css(program.brand), b"text/css; charset=utf-8", BRAND_CACHE)


async def logo(ctx: Ctx) -> Reply:
    """`/m/logo/<program>`: the file the program's brand names (checked when the config was
    read; read at each request, so a new file shows without a restart)."""
    program = ctx.members.config.programs.get(ctx.tail)
    if program is None or program.brand.logo is None:
        return _not_found()
    path = Path(program.brand.logo)
    kind = LOGO_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    try:
        body = path.read_bytes()
    except OSError:
        return _not_found()
    return Asset(body, (kind or "application/octet-stream").encode(), BRAND_CACHE)


def routes() -> dict[tuple[str, str], Route]:
    return {
        ("GET", "static/members.css"): Route(stylesheet, None),
        ("GET", "brand/*"): Route(brand_stylesheet, None),
        ("GET", "logo/*"): Route(logo, None),
        ("GET", ""): Route(signin.signin_form, ANON),
        ("POST", "signin"): Route(signin.signin, ANON),
        ("POST", "signin/email"): Route(signin.email_signin, ANON),
        ("GET", "signin/code"): Route(signin.code_form, CODE),
        ("POST", "signin/code"): Route(signin.code, CODE),
        ("POST", "signout"): Route(signin.signout, ANON),
        ("GET", "card"): Route(card.show, IN),
        ("POST", "card/select"): Route(card.select, IN),
        ("GET", "register"): Route(card.register_form, IN),
        ("POST", "register"): Route(card.register, IN),
        ("POST", "lost"): Route(card.lost, IN),
    }


def members_resource(members: Members) -> MemberResource:
    """The `/m/` resource gateway/app.py mounts on the admin listener."""
    return MemberResource(members, routes(), Renderer())

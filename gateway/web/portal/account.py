"""My account: change the password, switch the second factor, log out everywhere.

Each change asks for the current password first: a session left open on a shared till does
not let the next person take the account over. A wrong one counts towards the lock-out.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.backoffice import operators as ops
from gateway.backoffice.operators import Operator
from gateway.web.portal import login
from gateway.web.portal.passwords import hash_password, password_problem, verify_password
from gateway.web.portal.web import Ctx, Page, Redirect, Reply

log = logging.getLogger(__name__)


def _page(ctx: Ctx, message: str | None = None, error: str | None = None,
          status: int = 200) -> Page:
    return Page("account.html", {"title": "My account", "message": message, "error": error},
                status)


async def show(ctx: Ctx) -> Reply:
    done = {"password": "Your password is changed; your other sessions are ended.",
            "email": "Your login codes now come by e-mail.",
            "totp": "Your login codes now come from your authenticator app."}
    return _page(ctx, done.get(ctx.query.get("done", "")))


async def _current_password_right(ctx: Ctx, operator: Operator) -> bool:
    ok = await asyncio.to_thread(verify_password, operator.password_hash,
                                 ctx.form.get("current", ""))
    if not ok:
        await login.count_failure(ctx, operator.email)
    return ok


async def change_password(ctx: Ctx) -> Reply:
    operator, session = ctx.operator, ctx.session
    assert operator is not None and session is not None
    if not await _current_password_right(ctx, operator):
        return _page(ctx, error="Your current password is not right.", status=400)
    new, again = ctx.form.get("password", ""), ctx.form.get("password2", "")
    problem = password_problem(new, operator.email) or (
        "the two new passwords differ" if new != again else None)
    if problem:
        return _page(ctx, error=problem[0].upper() + problem[1:] + ".", status=400)
    engine = await ctx.portal.engine()
    await ops.set_password_hash(engine, operator.id, await asyncio.to_thread(hash_password, new))
    changed = await ops.by_id(engine, operator.id)
    assert changed is not None
    session.data["gen"] = changed.session_gen  # the other sessions end, this one stays
    await ctx.portal.sessions().save(session)
    log.info("portal: operator %d changed their password", operator.id)
    return Redirect("account?done=password")


async def second_factor(ctx: Ctx) -> Reply:
    operator, session = ctx.operator, ctx.session
    assert operator is not None and session is not None
    if not await _current_password_right(ctx, operator):
        return _page(ctx, error="Your current password is not right.", status=400)
    choice = ctx.form.get("factor", "")
    if choice == "email":
        await ops.set_second_factor(await ctx.portal.engine(), operator.id, "email")
        log.info("portal: operator %d switched to e-mailed codes", operator.id)
        return Redirect("account?done=email")
    if choice == "totp":
        session.data.pop("enrol", None)  # a new secret for a new enrolment
        login.pending_secret(ctx)
        await ctx.portal.sessions().save(session)
        return Redirect("account/enrol")
    return _page(ctx, error="Choose an authenticator app or e-mail.", status=400)


async def enrol_form(ctx: Ctx) -> Reply:
    operator, session = ctx.operator, ctx.session
    assert operator is not None and session is not None
    if "enrol" not in session.data:
        return Redirect("account")
    return login.enrol_page(ctx, operator, login.pending_secret(ctx), "account/enrol")


async def enrol(ctx: Ctx) -> Reply:
    operator, session = ctx.operator, ctx.session
    assert operator is not None and session is not None
    if "enrol" not in session.data:
        return Redirect("account")
    if not await login.confirm_enrolment(ctx, operator):
        return login.enrol_page(ctx, operator, login.pending_secret(ctx), "account/enrol",
                                "That code is not right. Enter the code your app shows now.")
    await ops.set_second_factor(await ctx.portal.engine(), operator.id, "totp")
    await ctx.portal.sessions().save(session)
    return Redirect("account?done=totp")


async def logout_everywhere(ctx: Ctx) -> Reply:
    """A new generation for the operator: every session of theirs, this one too, is over at
    its next request, on any gateway sharing the back office."""
    operator, session = ctx.operator, ctx.session
    assert operator is not None and session is not None
    await ops.end_sessions(await ctx.portal.engine(), operator.id)
    await ctx.portal.sessions().drop(session)
    ctx.session, ctx.drop_cookie = None, True
    log.info("portal: operator %d logged out everywhere", operator.id)
    return Redirect("login?why=everywhere")

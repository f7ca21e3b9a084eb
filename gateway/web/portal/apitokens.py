"""Admin API tokens, for head office: the tokens made at run time (gateway/security/tokenstore.py,
the same functions as `tillgate tokens` and `/v1/tokens`): list, create (the secret shown once,
on the answer to the form, never again), enable and disable, taking effect from the API's next
request. The config's tokens are listed too; they change only in the config.
"""

from __future__ import annotations

import logging

from gateway.config.security import SCOPES
from gateway.security import tokenstore
from gateway.web.portal.web import Ctx, Page, Redirect, Reply

log = logging.getLogger(__name__)


async def _page(ctx: Ctx, values: dict | None = None, status: int = 200) -> Page:
    listed = await tokenstore.listing(ctx.portal.redis(), ctx.portal.config.security.tokens)
    return Page("tokens.html", {"title": "Admin API tokens", "tokens": listed,
                                "scopes": SCOPES, "secret": None, "created": None,
                                **(values or {})}, status)


async def show(ctx: Ctx) -> Reply:
    done = ctx.query.get("done", "")
    return await _page(ctx, {"message": {"enabled": "The token is enabled.",
                                         "disabled": "The token is disabled."}.get(done)})


async def create(ctx: Ctx) -> Reply:
    operator = ctx.operator
    assert operator is not None
    form = ctx.request.args or {}
    scopes = [s.decode("utf-8", "replace") for s in form.get(b"scope", [])]
    expires_text = ctx.form.get("expires", "").strip()
    try:
        expires = tokenstore.parse_expiry(expires_text) if expires_text else None
        token, secret = await tokenstore.create(
            ctx.portal.redis(), ctx.form.get("name", "").strip(), scopes, SCOPES,
            taken_ids=[t.id for t in ctx.portal.config.security.tokens], expires=expires,
            clock=ctx.portal.clock)
    except tokenstore.TokenProblem as e:
        return await _page(ctx, {"error": str(e)[0].upper() + str(e)[1:] + "."}, 400)
    log.warning("portal: operator %d created admin token %s (%s)", operator.id, token.id,
                " ".join(sorted(token.scopes)))
    return await _page(ctx, {"secret": secret, "created": token.as_dict()})


async def switch(ctx: Ctx) -> Reply:
    operator = ctx.operator
    assert operator is not None
    action = ctx.form.get("action", "")
    if action not in ("enable", "disable"):
        return await _page(ctx, {"error": "Choose enable or disable."}, 400)
    token_id = ctx.form.get("id", "")
    try:
        await tokenstore.switch(ctx.portal.redis(), token_id, action == "enable",
                                ctx.portal.config.security.tokens)
    except tokenstore.TokenProblem as e:
        return await _page(ctx, {"error": str(e)[0].upper() + str(e)[1:] + "."}, 400)
    log.warning("portal: operator %d %sd admin token %s", operator.id, action, token_id)
    return Redirect(f"tokens?done={action}d")

"""Admin API tokens, for head office: the tokens made at run time (gateway/security/tokenstore.py,
the same functions as `tillgate tokens` and `/v1/tokens`): list (scopes, created, expiry, last
use, state), create with scopes and an optional last day (the secret shown once, on the answer
to the form, never again), enable and disable, taking effect from the API's next request. The
config's tokens are listed too, read-only: they change only in the config.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta

from gateway.config.security import SCOPES
from gateway.security import tokenstore
from gateway.web.portal.web import Ctx, Page, Redirect, Reply

log = logging.getLogger(__name__)


def _state(token: dict, now_iso: str) -> str:
    if not token["enabled"]:
        return "disabled"
    # ISO 8601 UTC texts of one format compare as their times do
    return "expired" if token["expires"] and token["expires"] <= now_iso else "enabled"


async def _page(ctx: Ctx, values: dict | None = None, status: int = 200) -> Page:
    listed = await tokenstore.listing(ctx.portal.redis(), ctx.portal.config.security.tokens)
    now_iso = tokenstore.iso(int(ctx.now)) or ""
    return Page("tokens.html", {"title": "Admin API tokens", "wide": True,
                                "tokens": [{**t, "state": _state(t, now_iso)} for t in listed],
                                "scopes": SCOPES, "secret": None, "created": None,
                                "today": now_iso[:10], **(values or {})}, status)


def expiry(text: str) -> int | None:
    """The form's expiry: a date (the date input's YYYY-MM-DD), the last day the token works,
    so it expires at the end of that day, UTC; or a date-time with its zone, as the CLI takes.
    None for never."""
    if not text:
        return None
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise tokenstore.TokenProblem(f"expires: {text!r} is not a date") from None
        return int(datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC).timestamp())
    return tokenstore.parse_expiry(text)


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
        expires = expiry(expires_text)
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

"""E-cards in the portal (docs/ecards.md): order a virtual gift card for a recipient, see the
orders with their e-mail's delivery state (and why a failed one failed), resend one; a banner
when the delivery queue is stuck.

The page orders through the same functions as `POST /v1/ecards` and `tillgate ecards`
(gateway/issuance/ecards.py): never a second implementation. The form carries a one-time order
key made when the form is shown, so a double click or a re-posted form places one order, as the
API's Idempotency-Key does. Head office sees every order; a merchant manager orders only in the
programs open to their merchant (the card lookup's rule) and sees the orders they placed.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from typing import Any
from zoneinfo import ZoneInfo

from gateway.backoffice import ecards as rows
from gateway.backoffice.operators import Operator
from gateway.config.model import Program
from gateway.issuance.ecards import EcardRefused, parse_order, place_order, resend
from gateway.ledger.amounts import parse_amount
from gateway.web.portal.cardlookup import may_see
from gateway.web.portal.sessions import IN
from gateway.web.portal.web import Ctx, Page, Redirect, Reply, Route

log = logging.getLogger(__name__)
MANAGERS = ("head_office", "merchant_manager")
SHOWN = 100  # orders listed, newest first


def _client(operator: Operator) -> str:
    return f"portal:{operator.id}"


def _programs(ctx: Ctx) -> list[Program]:
    assert ctx.operator is not None
    return [p for p in ctx.portal.config.programs.values()
            if p.numbers_can_be_drawn and may_see(ctx.operator, p)]


async def _page(ctx: Ctx, values: dict[str, Any] | None = None, status: int = 200) -> Page:
    operator = ctx.operator
    assert operator is not None
    engine = await ctx.portal.engine()
    mine = None if operator.role == "head_office" else _client(operator)
    found, total = await rows.listing(engine, client=mine, limit=SHOWN)
    _, oldest = await rows.counts(engine, int(ctx.now))
    waited = 0 if oldest is None else int(ctx.now) - oldest
    stuck = waited > ctx.portal.config.ecards.stuck_minutes * 60
    return Page("ecards.html", {
        "title": "E-cards", "programs": _programs(ctx), "orders": [r.as_dict() for r in found],
        "total": total, "order_key": secrets.token_urlsafe(16), "form": {},
        "loyalty": {p.id for p in ctx.portal.config.programs.values() if p.is_loyalty},
        "stuck": f"The e-mail queue is stuck: an e-card has waited {waited // 60} minutes for "
                 f"its e-mail. Check the [email] relay and the gateway's log." if stuck else None,
        **(values or {})}, status)


async def show(ctx: Ctx) -> Reply:
    done = ctx.query.get("done", "")
    return await _page(ctx, {"message": {
        "ordered": "The e-card is ordered: its e-mail is on its way (or waits for its day).",
        "resent": "The e-mail is queued to be sent again."}.get(done)})


def _deliver_at(text: str, program: Program) -> int | None:
    """A day (the form's date field) as its midnight in the program's time zone."""
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise EcardRefused(400, "Delivery day: a date such as 2027-03-14.") from None
    start = dt.datetime.combine(day, dt.time(), ZoneInfo(program.timezone))
    return int(start.timestamp())


async def order(ctx: Ctx) -> Reply:
    operator = ctx.operator
    assert operator is not None
    form = ctx.form
    kept = {name: form.get(name, "") for name in ("program", "amount", "recipient_name",
                                                  "recipient_email", "sender_name", "message",
                                                  "deliver_on")}
    program = ctx.portal.config.programs.get(kept["program"])
    key = form.get("order_key", "")
    try:
        if program is None or program not in _programs(ctx):
            raise EcardRefused(400, "Choose one of the programs listed.")
        if not 10 <= len(key) <= 100:
            raise EcardRefused(400, "The form is out of date: order again.")
        try:
            amount = int(kept["amount"]) if program.is_loyalty else parse_amount(kept["amount"])
        except ValueError:
            raise EcardRefused(400, "Amount: " + ("whole points." if program.is_loyalty
                                                  else "a sum such as 25.00.")) from None
        body: dict[str, Any] = {"program": program.id, "amount": amount,
                                "recipient_name": kept["recipient_name"],
                                "recipient_email": kept["recipient_email"],
                                "sender_name": kept["sender_name"], "message": kept["message"]}
        deliver = _deliver_at(kept["deliver_on"].strip(), program)
        if deliver is not None:
            body["deliver_at"] = deliver
        store, processor = ctx.portal.store(), ctx.portal.processor_source()
        if processor is None:
            raise EcardRefused(503, "The gateway is starting: try again in a moment.")
        parsed = parse_order(ctx.portal.config, body, ctx.now)
        row, created = await place_order(ctx.portal.config, store, processor,
                                         await ctx.portal.engine(), parsed, _client(operator),
                                         key, ctx.now)
    except EcardRefused as e:
        text = str(e)
        return await _page(ctx, {"error": text[0].upper() + text[1:], "form": kept,
                                 "order_key": key or secrets.token_urlsafe(16)}, e.status)
    if created:
        log.info("portal: operator %d ordered e-card %s (%s, %s)", operator.id, row.id[:8],
                 row.program, row.card_mask)
        ctx.portal.wake_ecards()
    return Redirect("ecards?done=ordered")


async def resend_one(ctx: Ctx) -> Reply:
    operator = ctx.operator
    assert operator is not None
    order_id = ctx.form.get("id", "")
    engine = await ctx.portal.engine()
    row = await rows.get(engine, order_id) if 0 < len(order_id) <= 64 else None
    if row is None or (operator.role != "head_office" and row.client != _client(operator)):
        return await _page(ctx, {"error": "No such e-card order."}, 404)
    try:
        await resend(engine, order_id, ctx.now)
    except EcardRefused as e:
        text = str(e)
        return await _page(ctx, {"error": text[0].upper() + text[1:] + "."}, e.status)
    log.info("portal: operator %d resent e-card %s", operator.id, order_id[:8])
    ctx.portal.wake_ecards()
    return Redirect("ecards?done=resent")


ROUTES = {
    ("GET", "ecards"): Route(show, IN, MANAGERS),
    ("POST", "ecards"): Route(order, IN, MANAGERS),
    ("POST", "ecards/resend"): Route(resend_one, IN, MANAGERS),
}

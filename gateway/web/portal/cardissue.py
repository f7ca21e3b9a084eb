"""Creating cards in the portal: one card or a batch of up to 100 (`MAX_CARDS`), issued and,
if asked, activated, through the same order functions as `POST /v1/cards/issue`
(gateway/issuance/realtime.py): no second implementation.

Idempotent like the API: the form carries an order key made when the form was shown, and the
order is `order_tag("portal:<operator id>", key)`; sending the form again (a double click, a
reload, a lost answer) answers the same cards, issued and loaded once. The numbers and PINs are
derived from a secret and the order's tag, so nothing is stored for an order but its
fingerprint: the answer page shows them, and its *Download CSV* button asks for the same order
again and answers it as a CSV file. Only the operator who placed the order can ask for it
again (the tag holds their id), and only while its claim lives (the request record lifetime).

The secret is `security.issue_secret` where it is set (so the API and the portal draw from one
secret), else one derived from the portal's key file (gateway/security/secretbox.py), so
card creation works in the embedded default too.

Head office may create cards of every program, managers of the programs open to their merchant
(cardlookup.may_see); staff do not create cards.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import secrets

from gateway.backoffice.operators import Operator
from gateway.config.model import Program
from gateway.issuance.importfile import amount_problem, parse_load
from gateway.issuance.realtime import (
    MAX_CARDS,
    IssuedCard,
    Order,
    activation_refusal,
    claim_order,
    issue_order,
    order_tag,
)
from gateway.ledger.amounts import parse_amount
from gateway.metrics import families as metrics
from gateway.web.portal.cardlookup import may_see
from gateway.web.portal.cardref import journal_name
from gateway.web.portal.sessions import IN
from gateway.web.portal.web import Asset, Ctx, Page, Reply, Route

log = logging.getLogger(__name__)

ORDER_KEY = re.compile(r"^[0-9a-f]{32}$")
MANAGERS = ("head_office", "merchant_manager")


def programs_for(ctx: Ctx, operator: Operator) -> list[Program]:
    return [p for p in ctx.portal.config.programs.values()
            if p.numbers_can_be_drawn and may_see(operator, p)]


def _form(ctx: Ctx, values: dict | None = None, status: int = 200) -> Page:
    operator = ctx.operator
    assert operator is not None
    entered = {"program": "", "count": "1", "activate": "", "face": ""}
    entered.update({k: ctx.form[k] for k in entered if k in ctx.form})  # a refused form's
    return Page("card_new.html", {
        "title": "Create cards", "programs": [p.id for p in programs_for(ctx, operator)],
        "max_cards": MAX_CARDS, "order": secrets.token_hex(16), "entered": entered,
        **(values or {})}, status)


async def form(ctx: Ctx) -> Reply:
    return _form(ctx)


def _order(ctx: Ctx, operator: Operator) -> Order | str:
    """The order the form asks for, or what is wrong with it (in the form's words)."""
    f = ctx.form
    program = {p.id: p for p in programs_for(ctx, operator)}.get(f.get("program", ""))
    if program is None:
        return "Choose one of the programs offered."
    count_text = f.get("count", "").strip()
    if not (count_text.isascii() and count_text.isdigit()) \
            or not 1 <= int(count_text) <= MAX_CARDS:
        return f"Number of cards: a whole number from 1 to {MAX_CARDS}."
    activate = None
    if f.get("activate", "").strip():
        try:
            activate = parse_load(f["activate"].strip(), program)
        except ValueError as e:
            return f"Activation: {e}."
        problem = amount_problem(program, activate)
        if problem:
            return f"Activation: {problem}."
    face = 0
    if f.get("face", "").strip():
        if program.is_loyalty:
            return "Face value: only gift cards have one."
        try:
            face = parse_amount(f["face"])
        except ValueError as e:
            return f"Face value: {e}."
    return Order(program, int(count_text), activate, face)


def _secret(ctx: Ctx) -> bytes:
    configured = ctx.portal.config.security.issue_secret
    return configured.value if configured is not None else ctx.portal.box().subkey("issue")


async def _place(ctx: Ctx) -> tuple[Order, list[IssuedCard]] | Page:
    """Issue (or find again) the form's order; a Page when it cannot be."""
    operator = ctx.operator
    assert operator is not None
    order = _order(ctx, operator)
    key = ctx.form.get("order", "")
    if isinstance(order, str) or not ORDER_KEY.match(key):
        return _form(ctx, {"error": order if isinstance(order, str) else
                           "This form is out of date: fill it in again."}, 400)
    who = journal_name(operator)
    refused = activation_refusal(order, who)
    if refused is not None:
        return _form(ctx, {"error": f"Activation: the program refuses it ({refused.code})."},
                     400)
    store, processor = ctx.portal.store(), ctx.portal.processor_source()
    if processor is None:
        return _form(ctx, {"error": "The ledger is not started. Try again in a moment."}, 503)
    tag = order_tag(who, key)
    if not await claim_order(store, tag, order, processor.record_ttl):
        return _form(ctx, {"error": "This form was sent before with other values: nothing "
                                    "was issued. Fill in a new form."}, 409)
    cards, refusal = await issue_order(store, processor, order, _secret(ctx), tag, who)
    metrics.HTTP_CARDS_ISSUED.labels(order.program.id).inc(sum(c.new for c in cards))
    log.info("portal: operator %d: %d %s card(s) for order %s (%d new)", operator.id,
             len(cards), order.program.id, tag[:8], sum(c.new for c in cards))
    if refusal is not None:
        return _form(ctx, {"error": f"{len(cards)} card(s) issued, the last one not "
                                    f"activated: refused with {refusal.code}."}, 409)
    return order, cards


async def create(ctx: Ctx) -> Reply:
    placed = await _place(ctx)
    if isinstance(placed, Page):
        return placed
    order, cards = placed
    return Page("card_issued.html", {
        "title": "Cards created", "program": order.program.id, "cards": cards,
        "loyalty": order.program.is_loyalty, "pins": order.program.pin_required,
        "again": not any(c.new for c in cards),
        "order": {k: ctx.form.get(k, "") for k in ("program", "count", "activate", "face",
                                                      "order")}})


async def download(ctx: Ctx) -> Reply:
    """The same order asked again, answered as CSV (nothing was kept to answer it from)."""
    placed = await _place(ctx)
    if isinstance(placed, Page):
        return placed
    order, cards = placed
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["card", "pin", "program", "status", "balance", "points"])
    for c in cards:
        writer.writerow([c.card, c.pin, order.program.id, c.status, c.balance, c.points])
    ctx.request.setHeader(b"content-disposition",
                          f'attachment; filename="cards-{order.program.id}.csv"'.encode())
    return Asset(out.getvalue().encode(), b"text/csv; charset=utf-8", b"no-store")


ROUTES = {
    ("GET", "cards/new"): Route(form, IN, MANAGERS),
    ("POST", "cards/new"): Route(create, IN, MANAGERS),
    ("POST", "cards/new/csv"): Route(download, IN, MANAGERS),
}

"""Online transaction entry, `/ui/entry` (head office and merchant managers): a purchase, a
load or a return that a till could not send, entered by hand, in two steps:

1. the form (card, what, amount, invoice number; head office also picks the merchant) is
   checked and shown back for confirmation: nothing is sent yet;
2. "Send" submits it as the till's Request (gateway/web/portal/tilltx.py) at the merchant's
   portal terminal: redeem / reload / refund on a gift card, earn / return on a loyalty card.
   A card that needs a PIN for the operation asks for it on this step, so the PIN is never
   carried in a page.

The program's invoice rule is the tills' one, with the same de-duplication: an invoice number
already used at the merchant is refused with 94. The nonce of the form ties both steps to one
request key: "Send" pressed twice is a retransmission, answered as the first.
"""

from __future__ import annotations

from typing import Any

from gateway.backoffice.operators import Operator
from gateway.config.model import Config, Program
from gateway.ledger.amounts import format_amount
from gateway.ledger.checks import PIN_OPS
from gateway.web.portal import cardshelf, tilltx
from gateway.web.portal.sessions import IN
from gateway.web.portal.tilltx import KIND_NAMES, Refused
from gateway.web.portal.web import Ctx, Page, Reply, Route
from protocols.model import Op, mask_card

ENTRY_ROLES = ("head_office", "merchant_manager")
NAMES = {Op.REDEEM: "purchase (redeem)", Op.RELOAD: "load", Op.REFUND: "refund",
         Op.EARN: "purchase (earn points)", Op.RETURN: "return (points back)"}


def _merchants(config: Config, operator: Operator) -> list[str]:
    """The merchants the operator may enter transactions for: those with a portal terminal."""
    mine = [operator.merchant] if operator.role != "head_office" else sorted(config.merchants)
    return [m for m in mine if m in config.merchants and config.merchants[m].portal_terminal]


def _form_page(ctx: Ctx, values: dict[str, Any] | None = None, status: int = 200) -> Page:
    operator = ctx.operator
    assert operator is not None
    return Page("entry.html", {"title": "Transaction entry", "kinds": KIND_NAMES,
                               "merchants": _merchants(ctx.portal.config, operator),
                               "answer": None, **(values or {})}, status)


async def form(ctx: Ctx) -> Reply:
    return _form_page(ctx)


def _merchant(ctx: Ctx) -> str:
    operator = ctx.operator
    assert operator is not None
    merchant = ctx.form.get("merchant", "") if operator.role == "head_office" \
        else operator.merchant or ""
    if merchant not in _merchants(ctx.portal.config, operator):
        raise Refused("Choose a merchant with a portal terminal to act for.")
    return merchant


def _checked(ctx: Ctx, number: str, program: Program) -> dict[str, Any]:
    """What the form asks for, checked against the program's rules, for the confirmation."""
    form = ctx.form
    merchant = _merchant(ctx)
    if program.merchants and merchant not in program.merchants:
        raise Refused(f"Program {program.id} is not open to merchant {merchant} (58, as its "
                      f"tills would be answered).", 403)
    kind = form.get("kind", "")
    op = tilltx.operation(kind, program)
    amount = tilltx.money(form.get("amount", ""))
    return {"merchant": merchant, "terminal": tilltx.terminal_for(ctx.portal.config, merchant),
            "kind": kind, "op": op, "what": NAMES[op], "amount": amount,
            "amount_text": format_amount(amount),
            "invoice": tilltx.invoice(form.get("invoice", ""), program) or "",
            "needs_pin": program.pin_required and op in PIN_OPS,
            "program": program.id, "loyalty": program.is_loyalty}


async def review(ctx: Ctx) -> Reply:
    """Step 1: checked and shown back; nothing is sent."""
    operator = ctx.operator
    assert operator is not None
    try:
        number, program = tilltx.read_card(ctx.portal.config, operator, ctx.form.get("card", ""))
        entry = _checked(ctx, number, program)
    except Refused as e:
        return _form_page(ctx, {"error": str(e)}, e.status)
    portal = ctx.portal
    cid = await cardshelf.remember(portal.redis(), portal.box(), operator.id, number)
    return Page("entry_confirm.html", {"title": "Confirm the transaction", "entry": entry,
                                       "card": mask_card(number), "ch": cid,
                                       "nonce": tilltx.new_nonce()})


async def send(ctx: Ctx) -> Reply:
    """Step 2: every field checked again (the page could have been altered), then sent."""
    operator = ctx.operator
    assert operator is not None
    portal = ctx.portal
    form = ctx.form
    number = await cardshelf.recall(portal.redis(), portal.box(), operator.id,
                                    form.get("ch", ""))
    try:
        if number is None:
            raise Refused("That card is not open any more. Enter the transaction again.", 404)
        number, program = tilltx.read_card(portal.config, operator, number)
        entry = _checked(ctx, number, program)
        req = tilltx.request(portal.config, operator, entry["merchant"], entry["op"], number,
                             entry["amount"], form.get("nonce", ""),
                             invoice=entry["invoice"] or None,
                             pin=tilltx.pin(form.get("pin", "")), source=ctx.address)
        answer = await tilltx.send(portal, req, program)
    except Refused as e:
        return _form_page(ctx, {"error": str(e)}, e.status)
    return _form_page(ctx, {"answer": answer, "sent": {**entry, "card": mask_card(number)}})


ROUTES = {
    ("GET", "entry"): Route(form, IN, ENTRY_ROLES),
    ("POST", "entry"): Route(review, IN, ENTRY_ROLES),
    ("POST", "entry/send"): Route(send, IN, ENTRY_ROLES),
}

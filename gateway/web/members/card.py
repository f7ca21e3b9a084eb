"""The signed-in member's card: its value, tier, points about to expire, history page by page,
its QR code and barcode; registering it to a profile; reporting it lost (docs/members.md).

A holder signed in with the card's number and PIN has the number (sealed in the session:
gateway/web/members/cardbox.py) and sees the codes; one signed in by e-mail has the ids and
masks of the customer's cards (the back office keeps no numbers), and sees each card without
its codes. Every showing of the page is a `member` card view (gateway/ledger/cardviews.py).
Reads and changes go through the functions the admin API uses: gateway/ledger/cards.py,
journal.py, gateway/backoffice/customers.py and links.py.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from gateway.backoffice.customers import (
    Conflict,
    CustomerError,
    CustomerFilter,
    add_customer,
    check_fields,
    list_customers,
)
from gateway.backoffice.links import holder_of, link_card
from gateway.config.model import Program
from gateway.ledger.cards import card_id, journal_key, set_card_status_id, show_card_id
from gateway.ledger.cardviews import count_view
from gateway.ledger.journal import newest_before
from gateway.web.members import cardbox, codes
from gateway.web.members.signin import TERMINAL
from gateway.web.members.web import Ctx
from gateway.web.site import Page, Redirect, Reply
from protocols.model import Op, Request, mask_card

log = logging.getLogger(__name__)

ENTRY_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")
MEMBER = "member"  # who a member's own change names (journal entry, card holder link)
LOST_ALERT = "member_reported_lost"
HELD = "This card is registered to someone already. To change its holder, ask the shop."
OP_NAMES = {"activate": "Activation", "reload": "Load", "redeem": "Purchase",
            "refund": "Refund", "cashout": "Cash out", "earn": "Points earned",
            "return": "Return", "predeem": "Points spent", "padd": "Points added",
            "expire": "Points expired", "status": "Status change", "transfer": "Transfer",
            "void": "Cancelled", "reverse": "Reversed", "rollback": "Correction",
            # a trimmed journal's first entry: the older ones it stands for are in the back
            # office (docs/scaling.md, "Journal trimming")
            "checkpoint": "Balance brought forward"}


@dataclass
class Held:
    """The card a session shows: its id, mask and program, and its number when known."""

    cid: str
    mask: str
    program: Program | None
    number: str | None


def held(ctx: Ctx) -> Held | None:
    session = ctx.session
    assert session is not None
    config = ctx.members.config
    data = session.data
    if "card" in data:
        number = cardbox.unseal(session.sid, data["card"])
        if number is None:
            return None
        return Held(card_id(number), mask_card(number), config.program_of_card(number), number)
    cards = data.get("cards") or []
    index = int(data.get("sel", 0))
    if not 0 <= index < len(cards):
        return None
    cid, mask, program_id = cards[index]
    return Held(cid, mask, config.programs.get(program_id), None)


async def show(ctx: Ctx) -> Reply:
    card = held(ctx)
    members = ctx.members
    if card is None or card.program is None:
        assert ctx.session is not None
        await members.sessions().drop(ctx.session)
        ctx.session, ctx.drop_cookie = None, True
        return Redirect("")
    store = members.store()
    view = await show_card_id(store, card.cid, card.mask, card.program)
    if view is None:
        return Page("error.html", {"title": "Card not found", "text":
                    "This card is no longer in our records. Ask the shop that sold it."}, 404)
    before = ctx.query.get("before")
    if before is not None and not ENTRY_ID.match(before):
        before = None
    entries, older = await newest_before(store, journal_key(card.cid), before,
                                         members.config.members.history_page)
    await count_view(store, card.program, "member", ctx.now)
    assert ctx.session is not None
    cards = ctx.session.data.get("cards") or []
    return Page("card.html", {
        "title": card.program.brand.name, "card": view, "mask": card.mask,
        "number": card.number, "loyalty": card.program.is_loyalty,
        "qr": codes.qr_svg(card.number) if card.number else None,
        "bars": codes.barcode_svg(card.number) if card.number else None,
        "entries": [_entry(e) for e in entries], "older": older, "paged": before is not None,
        "cards": [{"mask": c[1], "index": i} for i, c in enumerate(cards)],
        "selected": int(ctx.session.data.get("sel", 0)),
        "message": _message(ctx.query.get("done"))})


def _entry(e: Any) -> dict[str, Any]:
    return {"t": e.t, "what": OP_NAMES.get(e.op, e.op.title()), "dv": e.dv, "dp": e.dp,
            "bal": e.bal, "pts": e.pts}


def _message(done: str | None) -> str | None:
    return {"registered": "Your card is registered to your profile.",
            "lost": "Your card is blocked: nobody can use it now. The shop has been told; ask "
                    "them to move its value to a new card."}.get(done or "")


async def select(ctx: Ctx) -> Reply:
    """A holder signed in by e-mail picks one of their cards."""
    session = ctx.session
    assert session is not None
    cards = session.data.get("cards") or []
    index = ctx.form.get("index", "")
    if index.isdigit() and int(index) < len(cards):
        session.data["sel"] = int(index)
        session.data["prog"] = cards[int(index)][2]
        await ctx.members.sessions().save(session)
    return Redirect("card")


# -- registering a card ---------------------------------------------------------------------

def _register_page(values: dict[str, Any] | None = None, status: int = 200) -> Page:
    return Page("register.html", {"title": "Register your card", "name": "", "email": "",
                                  "consent": False, "problems": {}, **(values or {})}, status)


async def register_form(ctx: Ctx) -> Reply:
    card = held(ctx)
    if card is None or card.number is None:
        return Redirect("card")
    return _register_page({"mask": card.mask})


async def register(ctx: Ctx) -> Reply:
    """Link the signed-in card to a customer: the active customer who has this e-mail address
    already (whose profile stays as it is), or a new one with the name, address and consent
    given (consent's time recorded by the back office)."""
    card = held(ctx)
    if card is None or card.number is None:
        return Redirect("card")
    name = ctx.form.get("name", "").strip()
    email = ctx.form.get("email", "").strip()
    consent = ctx.form.get("consent") == "yes"
    values, problems = check_fields({"code": _new_code(), "name": name, "email": email,
                                     "consent": consent}, creating=True)
    shown = {"mask": card.mask, "name": name, "email": email, "consent": consent}
    if not email:
        problems.append("email: required")
    if problems:
        by_field = {p.split(":", 1)[0]: _plain(p) for p in problems}
        return _register_page({**shown, "problems": by_field,
                               "error": "Check the fields marked below."}, 400)
    members = ctx.members
    engine = await members.engine()
    async with engine.begin() as conn:
        holder = await holder_of(conn, card.cid)
        if holder is not None:  # checked first: no new customer is left without its card
            return _register_page({**shown, "error": HELD}, 409)
        found, _ = await list_customers(conn, CustomerFilter(status="active",
                                                             email=values["email"]), 1)
        code = found[0]["code"] if found else None
        if code is None:
            await add_customer(conn, values, now=int(ctx.now))
            code = values["code"]
    try:
        await link_card(engine, members.store(), code, card.number, who=MEMBER,
                        now=int(ctx.now))
    except Conflict:  # registered meanwhile by another request
        return _register_page({**shown, "error": HELD}, 409)
    except CustomerError as e:
        log.warning("members: card %s not registered: %s", card.mask, e)
        return _register_page({**shown, "error": "Your card could not be registered just "
                               "now. Try again later."}, 503)
    log.info("members: card %s registered to customer %s", card.mask, code)
    return Redirect("card?done=registered")


def _new_code() -> str:
    return "M" + secrets.token_hex(5).upper()


def _plain(problem: str) -> str:
    field, _, why = problem.partition(":")
    return {"name": "Enter your name (at most 200 characters).",
            "email": "Enter an e-mail address such as ada@example.com.",
            }.get(field, why.strip())


# -- reporting a card lost ------------------------------------------------------------------

async def lost(ctx: Ctx) -> Reply:
    """Suspend the card at once (the status change operators make: gateway/ledger/cards.py;
    tills are then refused with 62) and alert the operators, who can move its value to a new
    card. Asked to confirm with a checkbox, since only an operator can undo it."""
    card = held(ctx)
    if card is None:
        return Redirect("card")
    if ctx.form.get("confirm") != "yes":
        return Redirect("card")
    members = ctx.members
    res = await set_card_status_id(members.store(), card.cid, "suspended", operator=MEMBER)
    if res["rc"] != "00" and "suspended -> suspended" not in str(res.get("msg", "")):
        log.warning("members: card %s not suspended on report: %s %s", card.mask, res["rc"],
                    res.get("msg"))
    processor = members.processor()
    req = Request(op=Op.BALANCE, terminal=TERMINAL, merchant="",
                  key="lost:" + secrets.token_hex(6), card=card.number or card.mask,
                  channel="member", source=ctx.address)
    try:
        await processor.alerts.raise_event(LOST_ALERT, req, f"card reported lost by its holder "
                                           f"on the member page from {ctx.address}; suspended",
                                           0, ctx.now)
    except Exception as e:  # the card is suspended whatever the alert's fate
        log.error("members: alert %s not queued: %s", LOST_ALERT, e)
    log.warning("members: card %s reported lost from %s: suspended (%s)", card.mask,
                ctx.address, res["rc"])
    return Redirect("card?done=lost")

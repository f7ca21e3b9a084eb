"""Card lookup: a card by its number, a scanned barcode or its QR payload (protocols.carddata
decodes all of them, as for a till), with its status, balance or points and recent history.

It reads through the same functions as the admin API's `/v1/cards/show` and `/history`
(gateway/ledger/cards.show_card, gateway/ledger/journal.latest). Who may see a card is the
question a till gets asked (gateway/ledger/checks.precheck): a program with clubs
(`programs.<id>.merchants`, `[clubs.<name>]`) is closed to people outside them (`may_see`), who
are refused as a till outside them is (58), before the store is asked, so the refusal says
nothing of whether the card exists. Head office sees every program.

A card shown is a staff card view for analytics (gateway/ledger/cardviews.py).

The page shows the number masked (first 6, last 4) and never fills the typed value back in;
the log names the card masked.
"""

from __future__ import annotations

import logging

from gateway.backoffice.operators import Operator
from gateway.config.model import Program
from gateway.ledger.cards import card_id, journal_key, show_card
from gateway.ledger.cardviews import count_view
from gateway.ledger.journal import latest
from gateway.web.portal.cardref import ACTIONS, actions_for, seal_card
from gateway.web.portal.web import Ctx, Page, Reply
from protocols.carddata import CardDataError, card_number
from protocols.model import RC, mask_card

log = logging.getLogger(__name__)

HISTORY = 20  # entries shown, newest first
MAX_INPUT = 512  # a swipe or a GS1 barcode is well under this


def may_see(operator: Operator, program: Program) -> bool:
    """One of the program's clubs (gateway/config/clubs.py) admits the operator: head office
    sees every program; a program in no club is open to all; a manager sees the programs of
    every club of their merchant; a staff member those of the unnamed club of their merchant
    (`programs.<id>.merchants`) and of the named clubs they belong to, where their merchant
    is in the club. Refused people get 58's meaning, as a till outside the clubs does."""
    if operator.role == "head_office" or program.club_merchants is None:
        return True
    if operator.merchant not in program.club_merchants:
        return False
    if operator.role != "staff" or operator.merchant in program.merchants:
        return True
    return any(name in operator.clubs and operator.merchant in members
               for name, members in program.clubs)


def _page(values: dict | None = None, status: int = 200) -> Page:
    return Page("cards.html", {"title": "Card lookup", "card": None, "entries": [],
                               "actions": [], **(values or {})}, status)


async def form(ctx: Ctx) -> Reply:
    return _page()


async def lookup(ctx: Ctx) -> Reply:
    operator = ctx.operator
    assert operator is not None
    text = ctx.form.get("card", "").strip()
    if not text or len(text) > MAX_INPUT:
        return _page({"error": "Enter, scan or paste a card number, barcode or QR code."}, 400)
    try:
        number = card_number(text)
    except CardDataError as e:
        # the kind and position only: the decoder's message may quote the card data
        return _page({"error": f"That is not a card we can read ({e.kind} error at "
                               f"position {e.position})."}, 400)
    program = ctx.portal.config.program_of_card(number)
    if program is None:
        return _page({"error": "No program has card numbers like this one."}, 404)
    if not may_see(operator, program):
        log.warning("portal: operator %d (%s of %s) refused card %s of program %s (%s)",
                    operator.id, operator.role, operator.merchant, mask_card(number),
                    program.id, RC.TERMINAL_NOT_PERMITTED)
        return _page({"error": f"This card's program is not open to your merchant or clubs "
                               f"({RC.TERMINAL_NOT_PERMITTED}, as a till of your "
                               f"merchant would be answered)."}, 403)
    page = await card_page(ctx, number, program)
    if page.status == 200:
        await count_view(ctx.portal.store(), program, "staff", ctx.now)
        log.info("portal: operator %d looked up card %s", operator.id, mask_card(number))
    return page


async def card_page(ctx: Ctx, number: str, program: Program, values: dict | None = None,
                    status: int = 200) -> Page:
    """The card's page: its state, recent history, and the forms of the actions the operator's
    role may take (gateway/web/portal/cardactions.py), which carry a sealed reference to the
    card instead of its number (gateway/web/portal/cardref.py)."""
    operator = ctx.operator
    assert operator is not None
    store = ctx.portal.store()
    view = await show_card(store, number)
    if view is None:
        return _page({"error": f"No card {mask_card(number)} was issued."}, 404)
    entries = await latest(store, journal_key(card_id(number)), HISTORY)
    return _page({"card": view.as_dict(), "loyalty": program.is_loyalty,
                  "entries": list(reversed(entries)), "actions": actions_for(operator),
                  "labels": ACTIONS, "ref": seal_card(ctx.portal.box(), operator, number),
                  **(values or {})}, status)


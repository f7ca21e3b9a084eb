"""Card actions on the card page: suspend, reinstate, mark lost, close, unlock the PIN, roll
back the most recent transaction, transfer the balance to another card.

Each goes through the function the admin API and `tillgate cards` use (gateway/ledger/cards.py:
set_card_status, unlock_card, rollback_last; a transfer is the ledger's own balance transfer,
Processor.operator_transfer); there is no second implementation. The journal names the
operator (`portal:<id>`, as entry terminal and opid) and the log line names the card masked.

Who may do what: gateway/web/portal/cardref.py. What cannot be undone (lost, close, a
transfer, which marks the source lost) and a rollback (whose entry the operator should see
first) take a confirmation page; its form carries the request key of the change, so sending it
twice changes the card once. A change the card's state does not allow gets the admin API's
message on the card page (409), never an error page.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets

from gateway.backoffice.operators import Operator
from gateway.config.model import Program
from gateway.ledger.amounts import format_amount
from gateway.ledger.cards import (
    OPERATOR,
    card_id,
    journal_key,
    rollback_last,
    set_card_status,
    state_key,
    unlock_card,
)
from gateway.ledger.journal import Entry, latest
from gateway.web.portal.cardlookup import MAX_INPUT, card_page, may_see
from gateway.web.portal.cardref import (
    ACTIONS,
    actions_for,
    journal_name,
    open_card,
    seal_card,
)
from gateway.web.portal.sessions import IN
from gateway.web.portal.web import Ctx, Page, Reply, Route
from protocols.carddata import CardDataError, card_number
from protocols.model import RC, Op, Request, mask_card

log = logging.getLogger(__name__)

STATUS_TO = {"suspend": "suspended", "reinstate": "reinstate", "lost": "lost", "close": "closed"}
CONFIRM = frozenset({"lost", "close", "transfer", "rollback"})
KEY = re.compile(r"^PORTAL:[0-9a-f]{24}$")  # the request key a confirmation form carries
LOOK_BACK = 50  # journal entries searched for the transaction a rollback would undo
WHAT_HAPPENS = {
    "lost": "The card is marked lost for good: it is refused everywhere (41) and cannot be "
            "reinstated. Its balance stays on it for the audit.",
    "close": "The card is closed for good (78) and cannot be reinstated. Its balance stays on "
             "it for the audit.",
    "transfer": "Everything on this card moves to the other card, and this card is marked lost "
                "for good.",
    "rollback": "A compensating entry undoes this transaction; nothing is deleted.",
}


def _refused(text: str, status: int) -> Page:
    return Page("cards.html", {"title": "Card lookup", "card": None, "entries": [],
                               "actions": [], "error": text}, status)


async def act(ctx: Ctx) -> Reply:
    operator = ctx.operator
    assert operator is not None
    action = ctx.form.get("action", "")
    if action not in ACTIONS:
        return _refused("There is no such card action.", 400)
    number = open_card(ctx.portal.box(), operator, ctx.form.get("ref", ""))
    if number is None:
        return _refused("This card page is out of date. Look the card up again.", 400)
    program = ctx.portal.config.program_of_card(number)
    if program is None or not may_see(operator, program):  # a reload may have closed the club
        return _refused(f"This card's program is not open to your merchant "
                        f"({RC.TERMINAL_NOT_PERMITTED}).", 403)
    if action not in actions_for(operator):
        log.warning("portal: operator %d (%s) refused %s on card %s", operator.id,
                    operator.role, action, mask_card(number))
        return await card_page(ctx, number, program, {
            "error": f"Your role may not {ACTIONS[action].lower()} a card."}, 403)
    if action == "transfer":
        return await _transfer(ctx, operator, number, program)
    if action in CONFIRM and ctx.form.get("confirm") != "yes":
        return await _confirm_page(ctx, operator, number, program, action)
    if action in STATUS_TO:
        return await _status(ctx, operator, number, program, action)
    if action == "unlock":
        return await _unlock(ctx, operator, number, program)
    return await _rollback(ctx, operator, number, program)


async def _status(ctx: Ctx, operator: Operator, number: str, program: Program,
                  action: str) -> Page:
    res = await set_card_status(ctx.portal.store(), number, STATUS_TO[action],
                                operator=journal_name(operator))
    if res["rc"] != "00":  # 12: the change is not allowed from the card's status
        return await card_page(ctx, number, program,
                               {"error": f"Not changed: {res.get('msg') or res['rc']}."}, 409)
    log.warning("portal: operator %d: card %s %s", operator.id, mask_card(number), res["msg"])
    return await card_page(ctx, number, program, {"message": f"Changed: {res['msg']}."})


async def _unlock(ctx: Ctx, operator: Operator, number: str, program: Program) -> Page:
    if not await unlock_card(ctx.portal.store(), number):
        return await card_page(ctx, number, program,
                               {"error": "Not changed: the card is not locked."}, 409)
    log.warning("portal: operator %d: card %s unlocked", operator.id, mask_card(number))
    return await card_page(ctx, number, program, {"message": "The card is unlocked."})


async def _last_transaction(ctx: Ctx, number: str) -> Entry | None:
    """The journal entry a rollback would undo now (the card's `last` request), if any."""
    store = ctx.portal.store()
    cid = card_id(number)
    last = await store.command("HGET", state_key(cid), "last")
    if not last:
        return None
    for entry in reversed(await latest(store, journal_key(cid), LOOK_BACK)):
        if entry.key == last.decode() and entry.undo is None:
            return entry
    return None


def describe(entry: Entry, program: Program) -> str:
    """"redeem of -12.50 at 2026-12-05 18:00 UTC" (points for loyalty programs)."""
    at = dt.datetime.fromtimestamp(entry.t, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    change = f"{entry.dp:+d} points" if program.is_loyalty or (entry.dp and not entry.dv) \
        else f"{'+' if entry.dv >= 0 else ''}{format_amount(entry.dv)}"
    return f"{entry.op} of {change} at {at}"


async def _rollback(ctx: Ctx, operator: Operator, number: str, program: Program) -> Page:
    undone = await _last_transaction(ctx, number)
    res = await rollback_last(ctx.portal.store(), number, program,
                              operator=journal_name(operator))
    if res["rc"] != "00":  # 25: nothing to roll back; 12: the value was spent since
        why = res.get("msg") or "not allowed"
        return await card_page(ctx, number, program,
                               {"error": f"Nothing rolled back ({res['rc']}: {why})."}, 409)
    what = describe(undone, program) if undone is not None else "the last transaction"
    log.warning("portal: operator %d: card %s rolled back (%s)", operator.id,
                mask_card(number), undone.op if undone else "?")
    return await card_page(ctx, number, program, {
        "message": f"Rolled back the {what}: a compensating entry was written."})


async def _confirm_page(ctx: Ctx, operator: Operator, number: str, program: Program,
                        action: str, values: dict | None = None) -> Page:
    undo = None
    if action == "rollback":
        entry = await _last_transaction(ctx, number)
        if entry is None:
            return await card_page(ctx, number, program,
                                   {"error": "Nothing to roll back (25)."}, 409)
        undo = describe(entry, program)
    return Page("card_confirm.html", {
        "title": f"{ACTIONS[action]}?", "action": action, "label": ACTIONS[action],
        "card": mask_card(number), "what": WHAT_HAPPENS[action], "undo": undo,
        "ref": seal_card(ctx.portal.box(), operator, number), "target": None,
        "target_ref": "", "key": "PORTAL:" + secrets.token_hex(12), **(values or {})})


async def _transfer(ctx: Ctx, operator: Operator, number: str, program: Program) -> Page:
    """First the target typed on the card page (checked, then a confirmation page that carries
    it sealed), then, confirmed, the ledger's balance transfer."""
    box = ctx.portal.box()
    if ctx.form.get("confirm") != "yes":
        text = ctx.form.get("target", "").strip()
        try:
            target = card_number(text) if text and len(text) <= MAX_INPUT else ""
        except CardDataError:
            target = ""
        if not target:
            return await card_page(ctx, number, program, {
                "error": "Enter, scan or paste the number of the card to transfer to."}, 400)
        tprog = ctx.portal.config.program_of_card(target)
        if tprog is None or not may_see(operator, tprog) or tprog.kind != program.kind \
                or target == number:
            return await card_page(ctx, number, program, {
                "error": "The balance can go only to another card of the same kind, of a "
                         "program open to you."}, 400)
        return await _confirm_page(ctx, operator, number, program, "transfer", {
            "target": mask_card(target), "target_ref": seal_card(box, operator, target)})
    target = open_card(box, operator, ctx.form.get("target_ref", "")) or ""
    key = ctx.form.get("key", "")
    if not target or not KEY.match(key):
        return _refused("This confirmation is out of date. Look the card up again.", 400)
    processor = ctx.portal.processor_source()
    if processor is None:
        return _refused("The ledger is not started. Try again in a moment.", 503)
    who = journal_name(operator)
    result = await processor.operator_transfer(Request(
        op=Op.TRANSFER, terminal=who, merchant=OPERATOR, key=key, card=number,
        target_card=target, operator=who))
    if not result.approved:
        why = f"{result.code}" + (f": {result.message}" if result.message else "")
        return await card_page(ctx, number, program,
                               {"error": f"Nothing transferred ({why})."}, 409)
    moved = (f"{result.points} points" if program.is_loyalty
             else format_amount(result.balance or 0))
    log.warning("portal: operator %d: card %s transferred to %s", operator.id,
                mask_card(number), mask_card(target))
    return await card_page(ctx, number, program, {
        "message": f"Transferred to {mask_card(target)}, which now holds {moved}; this card "
                   f"is marked lost."})


ROUTES = {("POST", "cards/action"): Route(act, IN)}  # roles: cardref.actions_for

"""The staff dashboard, `/ui/staff` (staff and merchant managers; staff land on it): a card
field (typed, a scanner that types, or the camera scanner's page filling `<input id="card">`),
then the card with what can be done to it at the counter:

- a purchase: its amount, the points computed by the program's rules (the till's `earn`);
- in points-only mode (the program's `points_only`, as for tills: HOST-SPEC 6), points given
  directly (the till's `padd`); the staff member chooses per transaction;
- a reward claim: the catalogue's rewards (gateway/ledger/rewards.py), those the card can claim
  with a button (the till's `predeem` with the reward: points and stock in one script);
- recent interactions: the cards this person served in the last 7 days, from the journal's
  `opid` (gateway/backoffice/staff.py), each with a button that reopens it.

Every transaction is a till's Request through the live Processor (gateway/web/portal/tilltx.py).
The card's number never appears in the page: forms carry its key id, the number waits on the
operator's shelf (gateway/web/portal/cardshelf.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from gateway.backoffice import staff
from gateway.backoffice.connect import UNREACHABLE, BackofficeUnavailable
from gateway.backoffice.operators import Operator
from gateway.config.model import Program
from gateway.ledger.cards import show_card
from gateway.ledger.cardviews import count_view
from gateway.ledger.rewards import Reward, list_rewards
from gateway.web.portal import cardshelf, tilltx
from gateway.web.portal.sessions import IN
from gateway.web.portal.tilltx import Refused
from gateway.web.portal.web import Ctx, Page, Reply, Route
from protocols.model import Op

log = logging.getLogger(__name__)

RECENT_DAYS = 7
RECENT_CARDS = 20  # shown; the newest first
DESK_ROLES = ("staff", "merchant_manager")


def _today(now: float) -> int:
    return int(dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y%m%d"))


def _tier_rank(program: Program, tier: str | None) -> int:
    names = [t.name for t in program.tiers]
    return names.index(tier) + 1 if tier in names else 0


def why_not(reward: Reward, program: Program, card: dict[str, Any], merchant: str,
            today: int) -> str | None:
    """Why the card cannot claim the reward here today (None: it can). The claim script decides
    again, atomically; this only keeps buttons off what would be refused."""
    if not reward.enabled:
        return "disabled"
    if reward.stock is not None and reward.stock <= 0:
        return "out of stock"
    if (reward.valid_from and today < reward.valid_from) or (reward.valid_to
                                                             and today > reward.valid_to):
        return "not valid today"
    if reward.clubs and merchant not in reward.clubs:
        return "not claimable at this merchant"
    if reward.tier and reward.tier != card.get("tier") and (
            _tier_rank(program, card.get("tier")) < _tier_rank(program, reward.tier)
            or not _tier_rank(program, reward.tier)):
        return f"needs tier {reward.tier}"
    if int(card.get("points") or 0) < reward.points:
        return "not enough points"
    return None


async def _recent(ctx: Ctx, operator: Operator) -> tuple[list[dict[str, Any]] | None, str]:
    """The cards this operator served lately, or None and why not."""
    try:
        found = await staff.recent(await ctx.portal.engine(), tilltx.opid(operator),
                                   RECENT_DAYS, ctx.now)
    except (BackofficeUnavailable, *UNREACHABLE) as e:
        log.warning("portal: recent interactions of operator %d not read: %s", operator.id,
                    type(e).__name__)
        return None, "Recent interactions cannot be read just now."
    return found["cards"][:RECENT_CARDS], ""


async def _page(ctx: Ctx, values: dict[str, Any] | None = None, status: int = 200) -> Page:
    operator = ctx.operator
    assert operator is not None
    recent, recent_note = await _recent(ctx, operator)
    return Page("staff.html", {"title": "Staff dashboard", "card": None, "answer": None,
                               "recent": recent, "recent_note": recent_note,
                               "recent_days": RECENT_DAYS, **(values or {})}, status)


async def _card_page(ctx: Ctx, number: str, program: Program, answer: tilltx.Answer | None = None,
                     error: str | None = None, status: int = 200) -> Page:
    """The card open on the dashboard, with a fresh nonce for its forms."""
    operator = ctx.operator
    assert operator is not None
    portal = ctx.portal
    store = portal.store()
    view = await show_card(store, number, program)
    if view is None:
        return await _page(ctx, {"error": error or "No such card was issued."}, 404)
    card = view.as_dict()
    cid = await cardshelf.remember(portal.redis(), portal.box(), operator.id, number)
    rewards: list[tuple[Reward, str | None]] = []
    if program.is_loyalty:
        today = _today(ctx.now)
        rewards = [(r, why_not(r, program, card, operator.merchant or "", today))
                   for r in await list_rewards(store, program) if r.enabled]
    return await _page(ctx, {
        "card": card, "ch": cid, "nonce": tilltx.new_nonce(), "program": program,
        "loyalty": program.is_loyalty, "earns": program.points_per_unit > 0,
        "rewards": rewards, "answer": answer, "error": error}, status)


async def show(ctx: Ctx) -> Reply:
    return await _page(ctx)


async def open_card(ctx: Ctx) -> Reply:
    """A card typed, scanned or filled in by the camera scanner."""
    operator = ctx.operator
    assert operator is not None
    try:
        number, program = tilltx.read_card(ctx.portal.config, operator, ctx.form.get("card", ""))
    except Refused as e:
        return await _page(ctx, {"error": str(e)}, e.status)
    return await _viewed(ctx, number, program)


async def _viewed(ctx: Ctx, number: str, program: Program) -> Page:
    """The card opened by the staff member: a staff card view for analytics (the answers of
    transactions on an open card are not views of their own)."""
    page = await _card_page(ctx, number, program)
    if page.values["card"] is not None:
        await count_view(ctx.portal.store(), program, "staff", ctx.now)
    return page


async def _shelved(ctx: Ctx) -> tuple[str, Program]:
    """The card a form names by its key id, from the operator's shelf; its program must still
    be open to their merchant (a config reload may have closed it)."""
    operator = ctx.operator
    assert operator is not None
    portal = ctx.portal
    number = await cardshelf.recall(portal.redis(), portal.box(), operator.id,
                                    ctx.form.get("ch", ""))
    if number is None:
        raise Refused("That card is not open any more. Scan or type it again.", 404)
    return tilltx.read_card(portal.config, operator, number)


async def reopen(ctx: Ctx) -> Reply:
    """A card of the recent interactions, opened again."""
    try:
        number, program = await _shelved(ctx)
    except Refused as e:
        return await _page(ctx, {"error": str(e)}, e.status)
    return await _viewed(ctx, number, program)


async def _transact(ctx: Ctx, op: Op, amount_of, reward: str | None = None) -> Reply:
    """One till operation on the open card; the card is shown again with the answer."""
    operator = ctx.operator
    assert operator is not None
    try:
        number, program = await _shelved(ctx)
    except Refused as e:
        return await _page(ctx, {"error": str(e)}, e.status)
    form = ctx.form
    try:
        req = tilltx.request(ctx.portal.config, operator, operator.merchant or "", op, number,
                             amount_of(form), form.get("nonce", ""),
                             invoice=tilltx.invoice(form.get("invoice", ""), program),
                             reward=reward, pin=tilltx.pin(form.get("pin", "")),
                             source=ctx.address)
        answer = await tilltx.send(ctx.portal, req, program)
    except Refused as e:
        return await _card_page(ctx, number, program, error=str(e), status=e.status)
    return await _card_page(ctx, number, program, answer=answer)


async def earn(ctx: Ctx) -> Reply:
    return await _transact(ctx, Op.EARN, lambda f: tilltx.money(f.get("amount", ""),
                                                                "Purchase amount"))


async def add_points(ctx: Ctx) -> Reply:
    return await _transact(ctx, Op.ADD_POINTS, lambda f: tilltx.points(f.get("points", "")))


async def claim(ctx: Ctx) -> Reply:
    return await _transact(ctx, Op.REDEEM_POINTS, lambda f: 0,
                           reward=ctx.form.get("reward", "")[:40])


ROUTES = {
    # every answer of the dashboard shows the card field, so every one offers the camera
    ("GET", "staff"): Route(show, IN, DESK_ROLES, camera=True),
    ("POST", "staff"): Route(open_card, IN, DESK_ROLES, camera=True),
    ("POST", "staff/open"): Route(reopen, IN, DESK_ROLES, camera=True),
    ("POST", "staff/earn"): Route(earn, IN, DESK_ROLES, camera=True),
    ("POST", "staff/points"): Route(add_points, IN, DESK_ROLES, camera=True),
    ("POST", "staff/claim"): Route(claim, IN, DESK_ROLES, camera=True),
}

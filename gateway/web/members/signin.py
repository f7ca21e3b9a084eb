"""Signing in to the member page: a card's number and PIN, or an e-mail address and a code
e-mailed to it (docs/members.md, "Signing in").

Number and PIN go through the Processor (`holder_signin`): the sign-in rate limits (velocity
rules of the event `member_signin`, per source address and per card), then the balance
inquiry's card script, so a wrong PIN counts in the tills' own try counter and a card locked at
a till is locked here. Every refusal but the rate limit (unknown number, wrong PIN, a card
without a PIN, a locked, lost or closed card) gets one answer, after the same store round trips.

An e-mail address gets one answer too, registered or not: the code goes out in the background
(a mail's time would tell a registered address), and an address with no card holder gets a
session whose code nothing matches. Codes are six digits, kept hashed in the session, good
for `members.code_minutes`, five tries.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from typing import Any

from gateway.backoffice.customers import (
    EMAIL,
    CustomerFilter,
    find_customer,
    held_cards,
    list_customers,
)
from gateway.issuance.mailer import MailError
from gateway.web.members import cardbox
from gateway.web.members.service import CODE
from gateway.web.members.web import Ctx
from gateway.web.sessions import ANON, IN, new_token
from gateway.web.site import Page, Redirect, Reply
from protocols.carddata import CardDataError, card_number
from protocols.model import RC, Op, Request, mask_card

log = logging.getLogger(__name__)

TERMINAL = "member-page"  # what alerts and logs name as the sign-in's terminal
REFUSED = "That card number and PIN do not open a card here. Check both and try again."
TOO_MANY = "Too many sign-in attempts. Wait ten minutes and try again."
CODE_SENT = ("If this address belongs to a registered card holder, a six-digit code is on its "
             "way to it. Enter it below.")
MAX_CODE_TRIES = 5
_background: set[asyncio.Task[Any]] = set()  # mails on their way (a task must be held)


def _code_hash(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def _email_id(email: str) -> str:
    """What the `member_signin` rules count an e-mail address by (no address in Redis keys)."""
    return "e" + hashlib.sha256(b"tillgate-member-email:" + email.encode()).hexdigest()[:31]


async def _form_session(ctx: Ctx) -> None:
    """A sign-in form's session (its CSRF token), unless the browser has one already."""
    if ctx.session is None:
        members = ctx.members
        ctx.new_session = await members.sessions().open(ANON, ctx.now, members.lifetime(ANON))


def _page(values: dict[str, Any] | None = None, status: int = 200) -> Page:
    return Page("signin.html", {"title": "Sign in", **(values or {})}, status)


async def signin_form(ctx: Ctx) -> Reply:
    if ctx.session is not None and ctx.session.stage == IN:
        return Redirect("card")
    await _form_session(ctx)
    message = None
    if ctx.query.get("why") == "timeout":
        message = "You were signed out after a while without activity. Sign in again."
    elif ctx.query.get("why") == "out":
        message = "You are signed out."
    return _page({"message": message})


async def _open(ctx: Ctx, data: dict[str, Any], number: str | None = None) -> None:
    """The signed-in session under a new id (no session fixation); the form's is dropped.
    With the card's `number`, sealed under the new id (gateway/web/members/cardbox.py)."""
    members = ctx.members
    if ctx.session is not None:
        await members.sessions().drop(ctx.session)
    sid = new_token()
    if number is not None:
        data = {**data, "card": cardbox.seal(sid, number)}
    ctx.new_session = await members.sessions().open(IN, ctx.now, members.lifetime(IN), data,
                                                    sid=sid)


async def signin(ctx: Ctx) -> Reply:
    text = ctx.form.get("card", "").strip().replace(" ", "")
    pin = ctx.form.get("pin", "").strip()
    if not text or not pin:
        return _page({"error": "Enter your card number and its PIN."}, 400)
    try:
        number = card_number(text[:64])
    except CardDataError:
        number = text[:64]  # answered like any unknown number, after the same work
    members = ctx.members
    req = Request(op=Op.BALANCE, terminal=TERMINAL, merchant="", key="m:" + secrets.token_hex(8),
                  card=number, pin=pin[:12], channel="member", source=ctx.address)
    result = await members.processor().holder_signin(req)
    if result.code == RC.VELOCITY:
        log.warning("members: sign-in to card %s from %s refused: too many attempts",
                    mask_card(number), ctx.address)
        return _page({"error": TOO_MANY}, 429)
    if result.code != RC.APPROVED:
        log.info("members: sign-in to card %s from %s refused (%s)", mask_card(number),
                 ctx.address, result.code)
        return _page({"error": REFUSED}, 401)
    program = members.config.program_of_card(number)
    await _open(ctx, {"prog": program.id}, number)
    log.info("members: card %s signed in from %s", mask_card(number), ctx.address)
    return Redirect("card")


async def email_signin(ctx: Ctx) -> Reply:
    email = ctx.form.get("email", "").strip().lower()
    if not email or len(email) > 254 or not EMAIL.match(email):
        return _page({"email_error": "Enter the e-mail address you registered your card "
                                     "with."}, 400)
    members = ctx.members
    req = Request(op=Op.BALANCE, terminal=TERMINAL, merchant="", key="e:" + secrets.token_hex(8),
                  channel="member", source=ctx.address)
    if not await members.processor().signin_allowed(req, _email_id(email)):
        return _page({"email_error": TOO_MANY}, 429)
    holder = await _holder(members, email)
    code = f"{secrets.randbelow(10 ** 6):06d}"
    salt = secrets.token_hex(8)
    if ctx.session is not None:
        await members.sessions().drop(ctx.session)
    session = await members.sessions().open(
        CODE, ctx.now, members.lifetime(CODE),
        {"email": _email_id(email), "cust": holder, "salt": salt, "tries": 0,
         "code": _code_hash(salt, code) if holder else ""})
    ctx.new_session = session
    if holder:
        _send_later(members, email, code)
    log.info("members: e-mail sign-in asked from %s", ctx.address)
    return Redirect("signin/code")


async def _holder(members: Any, email: str) -> str | None:
    """The code of the active customer with this address who holds a card, or None."""
    async with (await members.engine()).connect() as conn:
        found, _ = await list_customers(conn, CustomerFilter(status="active", email=email), 2)
        if len(found) != 1:
            return None
        return str(found[0]["code"])


def _send_later(members: Any, email: str, code: str) -> None:
    minutes = members.config.members.code_minutes

    async def send() -> None:
        try:
            await members.send_mail(email, "Your sign-in code",
                                    f"Your sign-in code is {code}\n\nEnter it on your card's "
                                    f"page. It is good for {minutes} minutes, once. If you did "
                                    f"not ask for it, you can ignore this message.\n")
        except MailError as e:
            log.error("members: a sign-in code could not be sent: %s", e)

    task = asyncio.ensure_future(send())
    _background.add(task)
    task.add_done_callback(_background.discard)


async def code_form(ctx: Ctx) -> Reply:
    return Page("code.html", {"title": "Enter your code", "message": CODE_SENT})


async def code(ctx: Ctx) -> Reply:
    session = ctx.session
    assert session is not None
    members = ctx.members
    entered = ctx.form.get("code", "").strip().replace(" ", "")
    data = session.data
    good = bool(data.get("code")) and len(entered) == 6 and hmac.compare_digest(
        _code_hash(data["salt"], entered), data["code"])
    if not good:
        data["tries"] = int(data.get("tries", 0)) + 1
        if data["tries"] >= MAX_CODE_TRIES:
            await members.sessions().drop(session)
            ctx.session, ctx.drop_cookie = None, True
            return _page({"email_error": "That code was wrong too often. Ask for a new one."},
                         401)
        await members.sessions().save(session)
        return Page("code.html", {"title": "Enter your code",
                                  "error": "That code is not right. Check it and try again."},
                    401)
    async with (await members.engine()).connect() as conn:
        customer = await find_customer(conn, data["cust"])
        held = await held_cards(conn, customer.id)
    if customer.status != "active" or not held:
        await members.sessions().drop(session)
        ctx.session, ctx.drop_cookie = None, True
        return _page({"email_error": "No card is registered to this address any more."}, 401)
    cards = [[h.card_id, h.card_mask, h.program or ""] for h in held]
    await _open(ctx, {"cust": customer.code, "cards": cards, "sel": 0, "prog": cards[0][2]})
    log.info("members: customer %s signed in by e-mail from %s", customer.code, ctx.address)
    return Redirect("card")


async def signout(ctx: Ctx) -> Reply:
    if ctx.session is not None:
        await ctx.members.sessions().drop(ctx.session)
    ctx.session, ctx.drop_cookie = None, True
    return Redirect("?why=out")

"""Logging in, in two steps, and out (docs/portal.md, "Logging in").

1. `login`: e-mail and password. Unknown e-mail, wrong password, disabled account and locked
   account get the same answer, after the same argon2id work (passwords.verify_password hashes
   a dummy for an unknown account). Wrong ones count towards the lock-out of that e-mail
   address (gateway/web/portal/limits.py), and every attempt towards its source address's limit.
2. `login/code`: the TOTP code (or `login/enrol` first, with the QR code, when the operator has
   none yet), or the code e-mailed at step 1 when the operator chose e-mail. A wrong code counts
   like a wrong password. A TOTP code is taken once (its time step is remembered in SQL).

The session id is replaced at each step (anon -> password -> in), so an id planted before the
login is worth nothing after it. `set-password` takes a one-time link of `tillgate users`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets

from gateway.backoffice import operators as ops
from gateway.backoffice.operators import Operator
from gateway.issuance.mailer import MailError
from gateway.web.portal import links, totp
from gateway.web.portal.passwords import hash_password, password_problem, verify_password
from gateway.web.portal.sessions import ANON, IN, PASSWORD
from gateway.web.portal.web import Ctx, Page, Redirect, Reply

log = logging.getLogger(__name__)

REFUSED = "Wrong e-mail address or password, or the account is locked for a while."
CODE_TRIES = 5  # wrong codes in one second step before the password is asked again
WHY = {"timeout": "Your session timed out. Log in again.",
       "ended": "Your session was ended. Log in again.",
       "loggedout": "You are logged out.",
       "everywhere": "You are logged out everywhere.",
       "password-set": "Your password is set. Log in with it.",
       "again": "Too many wrong codes. Log in again."}


async def _open(ctx: Ctx, stage: str, data: dict | None = None) -> None:
    """Replace the request's session by a new one (new id, new CSRF token) at `stage`."""
    portal = ctx.portal
    if ctx.session is not None:
        await portal.sessions().drop(ctx.session)
    ctx.new_session = await portal.sessions().open(stage, ctx.now, portal.lifetime(stage), data)


def _login_page(ctx: Ctx, error: str | None = None, status: int = 200) -> Page:
    return Page("login.html", {"title": "Log in", "error": error,
                               "message": WHY.get(ctx.query.get("why", ""))}, status)


async def login_form(ctx: Ctx) -> Reply:
    if ctx.session is not None and ctx.session.stage == IN:
        return Redirect("")
    await _open(ctx, ANON)
    return _login_page(ctx)


async def login(ctx: Ctx) -> Reply:
    portal = ctx.portal
    email, password = ctx.form.get("email", "")[:254], ctx.form.get("password", "")
    limits = portal.limits()
    if not await limits.address_allowed(ctx.address):
        log.warning("portal: login attempts from %s over the limit", ctx.address)
        return _login_page(ctx, "Too many attempts from your network address. Wait a few "
                                "minutes and try again.", 429)
    locked = await limits.locked(email)
    operator = await ops.by_email(await portal.engine(), email) if email else None
    stored = operator.password_hash if operator is not None else None
    ok = await asyncio.to_thread(verify_password, stored, password)  # always the same work
    if locked or not ok or operator is None or not operator.active:
        if not locked:
            await count_failure(ctx, email)
        log.info("portal: login refused from %s", ctx.address)
        return _login_page(ctx, REFUSED)
    await _open(ctx, PASSWORD, {"op": operator.id, "email": operator.email})
    if operator.second_factor == "email":
        return await _send_code(ctx, operator)
    return Redirect("login/code" if operator.totp_enrolled else "login/enrol")


async def count_failure(ctx: Ctx, email: str) -> None:
    portal = ctx.portal
    if await portal.limits().failed(email):
        minutes = portal.config.portal.lockout_minutes
        log.warning("portal: %d failed logins for one account: locked for %d minutes "
                    "(last from %s)", portal.config.portal.max_failures, minutes, ctx.address)
        await portal.alert("portal_lockout", ops.normal_email(email),
                           f"{portal.config.portal.max_failures} failed logins; account locked "
                           f"for {minutes} minutes (last from {ctx.address})",
                           minutes * 60)


def _code_hash(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


async def _send_code(ctx: Ctx, operator: Operator) -> Reply:
    """A new six-digit code, kept hashed in the session, mailed to the operator."""
    portal, session = ctx.portal, ctx.new_session
    assert session is not None
    code = f"{secrets.randbelow(10**6):06d}"
    salt = secrets.token_hex(8)
    session.data.update(code=_code_hash(salt, code), salt=salt, tries=0)
    await portal.sessions().save(session)
    minutes = portal.config.portal.code_minutes
    try:
        await portal.send_mail(operator.email, "[tillgate] your login code",
                               f"Your tillgate login code is {code}\n\nIt is good for "
                               f"{minutes} minutes, once. If you did not just log in, someone "
                               f"knows your password: change it and tell head office.\n")
    except MailError as e:
        log.error("portal: the login code could not be sent: %s", e)
        return Page("error.html", {"title": "Code not sent", "text":
                    "Your login code could not be sent. Try again in a few minutes."}, 503)
    return Redirect("login/code")


async def _second_step_operator(ctx: Ctx) -> Operator | None:
    """The operator half-way through logging in; None (start again) when they are disabled or
    locked meanwhile (guesses from elsewhere count against this login too)."""
    assert ctx.session is not None
    operator = await ops.by_id(await ctx.portal.engine(), ctx.session.operator_id or 0)
    if operator is None or not operator.active or await ctx.portal.limits().locked(
            operator.email):
        return None
    return operator


async def code_form(ctx: Ctx) -> Reply:
    operator = await _second_step_operator(ctx)
    if operator is None:
        return Redirect("login")
    if operator.second_factor == "totp" and not operator.totp_enrolled:
        return Redirect("login/enrol")
    return _code_page(operator)


def _code_page(operator: Operator, error: str | None = None) -> Page:
    return Page("code.html", {"title": "Second step", "factor": operator.second_factor,
                              "masked_email": _mask_email(operator.email), "error": error})


async def code(ctx: Ctx) -> Reply:
    operator = await _second_step_operator(ctx)
    if operator is None:
        return Redirect("login")
    entered = ctx.form.get("code", "").strip().replace(" ", "")
    if operator.second_factor == "email":
        ok = _email_code_right(ctx, entered)
        why = "That code is not right or has expired."
    else:
        if not operator.totp_enrolled:
            return Redirect("login/enrol")
        assert operator.totp_secret is not None
        secret = ctx.portal.box().open(operator.totp_secret)
        step = totp.matching_step(secret, entered, ctx.now)
        ok = step is not None and await ops.use_totp_step(await ctx.portal.engine(),
                                                          operator.id, step)
        why = ("That code was used already. Wait for the next one." if step is not None
               else "That code is not right. Check your authenticator's clock.")
    if ok:
        return await _complete(ctx, operator)
    return await _wrong_code(ctx, operator, why)


def _email_code_right(ctx: Ctx, entered: str) -> bool:
    data = ctx.session.data if ctx.session else {}
    expected, salt = str(data.get("code", "")), str(data.get("salt", ""))
    return bool(expected) and hmac.compare_digest(_code_hash(salt, entered), expected)


async def _wrong_code(ctx: Ctx, operator: Operator, why: str) -> Reply:
    session = ctx.session
    assert session is not None
    await count_failure(ctx, operator.email)
    session.data["tries"] = int(session.data.get("tries", 0)) + 1
    if session.data["tries"] >= CODE_TRIES or await ctx.portal.limits().locked(operator.email):
        await ctx.portal.sessions().drop(session)
        ctx.drop_cookie = True
        return Redirect("login?why=again")
    await ctx.portal.sessions().save(session)
    log.info("portal: a wrong second-factor code for operator %d from %s", operator.id,
             ctx.address)
    return _code_page(operator, why)


async def _complete(ctx: Ctx, operator: Operator) -> Reply:
    """Both steps passed: a new session id at stage `in`, the failures forgotten."""
    portal = ctx.portal
    await _open(ctx, IN, {"op": operator.id, "gen": operator.session_gen})
    await portal.limits().succeeded(operator.email)
    await ops.logged_in(await portal.engine(), operator.id, int(ctx.now))
    log.info("portal: operator %d (%s) logged in from %s", operator.id, operator.role,
             ctx.address)
    return Redirect("")


# -- TOTP enrolment (at the first login, after `users reset-2fa`, or from My account) ---------


def pending_secret(ctx: Ctx) -> str:
    """The secret being enrolled, kept sealed in the session until a code confirms it."""
    session = ctx.session
    assert session is not None
    box = ctx.portal.box()
    sealed = session.data.get("enrol")
    if sealed is None:
        sealed = session.data["enrol"] = box.seal(totp.new_secret())
    secret: str = box.open(sealed)
    return secret


def enrol_page(ctx: Ctx, operator: Operator, secret: str, action: str,
               error: str | None = None) -> Page:
    uri = totp.provisioning_uri(secret, operator.email)
    return Page("enrol.html", {"title": "Set up your authenticator", "qr": totp.qr_svg(uri),
                               "secret": " ".join(secret[i:i + 4]
                                                  for i in range(0, len(secret), 4)),
                               "action": action, "error": error})


async def enrol_form(ctx: Ctx) -> Reply:
    operator = await _second_step_operator(ctx)
    if operator is None:
        return Redirect("login")
    if operator.second_factor != "totp" or operator.totp_enrolled:
        return Redirect("login/code")
    secret = pending_secret(ctx)
    assert ctx.session is not None
    await ctx.portal.sessions().save(ctx.session)
    return enrol_page(ctx, operator, secret, "login/enrol")


async def confirm_enrolment(ctx: Ctx, operator: Operator) -> bool:
    """Store the pending secret if the form's code is its current one (that code's step is
    taken at once: it cannot log anyone in a second time)."""
    session = ctx.session
    assert session is not None
    sealed = session.data.get("enrol")
    if sealed is None:
        return False
    secret = ctx.portal.box().open(sealed)
    step = totp.matching_step(secret, ctx.form.get("code", ""), ctx.now)
    if step is None:
        return False
    await ops.set_totp_secret(await ctx.portal.engine(), operator.id, sealed, step)
    del session.data["enrol"]
    log.info("portal: operator %d enrolled an authenticator", operator.id)
    return True


async def enrol(ctx: Ctx) -> Reply:
    operator = await _second_step_operator(ctx)
    if operator is None:
        return Redirect("login")
    if operator.second_factor != "totp" or operator.totp_enrolled:
        return Redirect("login/code")
    if await confirm_enrolment(ctx, operator):
        return await _complete(ctx, operator)
    assert ctx.session is not None
    await count_failure(ctx, operator.email)
    return enrol_page(ctx, operator, pending_secret(ctx), "login/enrol",
                      "That code is not right. Scan the code again and enter the code your "
                      "app shows now.")


async def logout(ctx: Ctx) -> Reply:
    assert ctx.session is not None
    await ctx.portal.sessions().drop(ctx.session)
    ctx.session, ctx.drop_cookie = None, True
    if ctx.operator is not None:
        log.info("portal: operator %d logged out", ctx.operator.id)
    return Redirect("login?why=loggedout")


# -- set-password links --------------------------------------------------------------------


async def set_password_form(ctx: Ctx) -> Reply:
    token = ctx.query.get("t", "")
    operator_id = await links.peek(ctx.portal.redis(), token)
    if operator_id is None:
        return _dead_link()
    await _open(ctx, ANON)
    return Page("set_password.html", {"title": "Set your password", "token": token})


def _dead_link() -> Page:
    return Page("error.html", {"title": "Link not valid", "text":
                "This link is unknown, used or expired. Ask head office for a new one."}, 404)


async def set_password(ctx: Ctx) -> Reply:
    portal = ctx.portal
    token = ctx.form.get("token", "")
    password, again = ctx.form.get("password", ""), ctx.form.get("password2", "")
    operator_id = await links.peek(portal.redis(), token)
    operator = (await ops.by_id(await portal.engine(), operator_id)
                if operator_id is not None else None)
    if operator is None:
        return _dead_link()
    problem = password_problem(password, operator.email) or (
        "the two passwords differ" if password != again else None)
    if problem:
        return Page("set_password.html", {"title": "Set your password", "token": token,
                                          "error": problem[0].upper() + problem[1:] + "."})
    if await links.take(portal.redis(), token) != operator.id:  # used meanwhile
        return _dead_link()
    hashed = await asyncio.to_thread(hash_password, password)
    await ops.set_password_hash(await portal.engine(), operator.id, hashed)
    await portal.limits().unlock(operator.email)
    log.info("portal: operator %d set a password through a link", operator.id)
    return Redirect("login?why=password-set")


def _mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"

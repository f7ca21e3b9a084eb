"""Operators in the browser, for head office and merchant managers: list, add, disable and
enable, reset the second factor or the password, change the role, put staff in clubs.

Every action is one of gateway/web/portal/accounts.py (the functions `tillgate users` runs) or
of gateway/backoffice/operators.py; who may act on whom is gateway/web/portal/operatorrules.py,
asked again at every POST with the target read afresh (a form is no proof: its id field can
name anyone). Each change is logged (WARNING) with the acting operator's id and the target's.

A new operator's set-password link is shown once, on the answer to the form, as `tillgate
users add` prints it, or e-mailed to them through the one mail path; never both, never kept.
"""

from __future__ import annotations

import logging

from gateway.backoffice import operators as ops
from gateway.backoffice.operators import SECOND_FACTORS, Operator
from gateway.issuance.mailer import MailError
from gateway.web.portal import accounts
from gateway.web.portal.operatorrules import (
    clubs_for,
    grant_problem,
    may_manage,
    merchants_to_give,
    roles_to_give,
)
from gateway.web.portal.web import Ctx, Page, Redirect, Reply

log = logging.getLogger(__name__)

DELIVERIES = ("show", "email")
DONE = {"enabled": "The operator is enabled; a lock-out is lifted.",
        "disabled": "The operator is disabled; their sessions are ended.",
        "second-factor": "Their authenticator is removed: they set one up at their next login.",
        "role": "The role is changed; it applies from their next request.",
        "clubs": "Their clubs are saved; they apply from their next request.",
        "mailed": "The set-password link was e-mailed to them."}


PAGE = 100  # operators on one page of the list


def _clean(text: str) -> str:
    return text[0].upper() + text[1:] + "." if text else text


async def _visible(ctx: Ctx, actor: Operator) -> tuple[list[Operator], int | None]:
    """One page of the operators the actor may see, and the id the next page starts after
    (None on the last page)."""
    engine = await ctx.portal.engine()
    after = ctx.query.get("after", "")
    scope = ({} if actor.role == "head_office"
             else {"merchant": actor.merchant, "role": "staff"})
    people = await ops.all_operators(engine, after=int(after) if after.isdigit() else 0,
                                     limit=PAGE + 1, **scope)
    return people[:PAGE], people[PAGE - 1].id if len(people) > PAGE else None


async def _list_page(ctx: Ctx, values: dict | None = None, status: int = 200) -> Page:
    actor = ctx.operator
    assert actor is not None
    people, next_after = await _visible(ctx, actor)
    return Page("operators.html", {
        "title": "Operators", "wide": True, "people": people, "next_after": next_after,
        "paged": bool(ctx.query.get("after")),
        "roles": roles_to_give(actor), "merchants": merchants_to_give(actor, ctx.portal.config),
        "factors": SECOND_FACTORS, "link": None, "added": None, **(values or {})}, status)


async def listing(ctx: Ctx) -> Reply:
    return await _list_page(ctx, {"message": DONE.get(ctx.query.get("done", ""))})


async def _deliver(ctx: Ctx, person: Operator, link: str, how: str) -> str | None:
    """E-mail the link (None when sent) or hand it back to show once."""
    if how != "email":
        return link
    subject, body = accounts.link_mail(ctx.portal.config, person, link)
    await ctx.portal.send_mail(person.email, subject, body)
    return None


async def add(ctx: Ctx) -> Reply:
    actor = ctx.operator
    assert actor is not None
    form = ctx.form
    role = form.get("role", "")
    merchant = form.get("merchant", "").strip() or None
    if role == "head_office":
        merchant = None  # the form's merchant list means nothing for head office
    how = form.get("delivery", "show")
    problem = grant_problem(actor, ctx.portal.config, role, merchant)
    if problem:
        log.warning("portal: operator %d refused adding a %r of %r: %s", actor.id, role[:20],
                    (merchant or "")[:20], problem)
        return await _list_page(ctx, {"error": _clean(problem)}, 403)
    if how not in DELIVERIES or form.get("second_factor", "") not in SECOND_FACTORS:
        return await _list_page(ctx, {"error": "Choose how the link goes and the login "
                                               "codes."}, 400)
    name = form.get("name", "").strip()
    if not name or len(name) > 200:
        return await _list_page(ctx, {"error": "Give a name of 1 to 200 characters."}, 400)
    email = form.get("email", "").strip()
    if "@" not in email or len(email) > 254:
        return await _list_page(ctx, {"error": "Give the operator's e-mail address."}, 400)
    engine = await ctx.portal.engine()
    try:
        person, link = await accounts.add(engine, ctx.portal.redis(), ctx.portal.config, email,
                                          name, role, merchant, form["second_factor"])
    except ValueError as e:  # OperatorExists too
        return await _list_page(ctx, {"error": _clean(str(e))}, 400)
    assert link is not None
    log.warning("portal: operator %d added operator %d (%s%s)", actor.id, person.id, role,
                f" of {merchant}" if merchant else "")
    try:
        shown = await _deliver(ctx, person, link, how)
    except MailError as e:
        log.error("portal: the set-password link of operator %d could not be sent: %s",
                  person.id, e)
        shown = link  # the account exists: give the link here rather than lose it
    return await _list_page(ctx, {
        "added": person, "link": shown,
        "message": f"{person.email} is added." + ("" if shown else
                                                  " The set-password link was e-mailed.")})


async def _target(ctx: Ctx, raw: str) -> tuple[Operator | None, Page | None]:
    """The operator a form or link names, if the actor may manage them; else a refusal."""
    actor = ctx.operator
    assert actor is not None
    person = (await ops.by_id(await ctx.portal.engine(), int(raw))
              if raw.isdigit() and len(raw) < 12 else None)
    if person is None:
        return None, Page("error.html", {"title": "No such operator",
                                         "text": "There is no such operator."}, 404)
    if not may_manage(actor, person):
        log.warning("portal: operator %d (%s of %s) refused managing operator %d",
                    actor.id, actor.role, actor.merchant, person.id)
        text = ("Change your own account in My account." if person.id == actor.id else
                "This operator is not yours to manage.")
        return None, Page("error.html", {"title": "Not yours to manage", "text": text}, 403)
    return person, None


async def _edit_page(ctx: Ctx, person: Operator, values: dict | None = None,
                     status: int = 200) -> Page:
    actor = ctx.operator
    assert actor is not None
    config = ctx.portal.config
    return Page("operator.html", {
        "title": f"Operator {person.email}", "person": person,
        "roles": roles_to_give(actor), "merchants": merchants_to_give(actor, config),
        "clubs": clubs_for(config, person.merchant), "link": None, **(values or {})}, status)


async def edit(ctx: Ctx) -> Reply:
    person, refused = await _target(ctx, ctx.query.get("id", ""))
    if person is None:
        return refused or Redirect("operators")
    return await _edit_page(ctx, person, {"message": DONE.get(ctx.query.get("done", ""))})


async def status(ctx: Ctx) -> Reply:
    actor = ctx.operator
    person, refused = await _target(ctx, ctx.form.get("id", ""))
    if person is None or actor is None:
        return refused or Redirect("operators")
    action = ctx.form.get("action", "")
    if action not in ("enable", "disable"):
        return await _edit_page(ctx, person, {"error": "Choose enable or disable."}, 400)
    await accounts.set_enabled(await ctx.portal.engine(), ctx.portal.redis(),
                               ctx.portal.config, person, action == "enable")
    log.warning("portal: operator %d %sd operator %d", actor.id, action, person.id)
    return Redirect(f"operators/edit?id={person.id}&done={action}d")


async def reset(ctx: Ctx) -> Reply:
    actor = ctx.operator
    person, refused = await _target(ctx, ctx.form.get("id", ""))
    if person is None or actor is None:
        return refused or Redirect("operators")
    what, how = ctx.form.get("what", ""), ctx.form.get("delivery", "show")
    engine = await ctx.portal.engine()
    if what == "second-factor":
        await accounts.reset_second_factor(engine, person)
        log.warning("portal: operator %d reset the second factor of operator %d", actor.id,
                    person.id)
        return Redirect(f"operators/edit?id={person.id}&done=second-factor")
    if what != "password" or how not in DELIVERIES:
        return await _edit_page(ctx, person, {"error": "Choose what to reset."}, 400)
    link = await accounts.reset_password(engine, ctx.portal.redis(), ctx.portal.config, person)
    log.warning("portal: operator %d reset the password of operator %d", actor.id, person.id)
    try:
        shown = await _deliver(ctx, person, link, how)
    except MailError as e:
        log.error("portal: the set-password link of operator %d could not be sent: %s",
                  person.id, e)
        shown = link
    if shown is None:
        return Redirect(f"operators/edit?id={person.id}&done=mailed")
    return await _edit_page(ctx, person, {
        "link": shown, "message": "The password is removed and their sessions are ended."})


async def role(ctx: Ctx) -> Reply:
    actor = ctx.operator
    person, refused = await _target(ctx, ctx.form.get("id", ""))
    if person is None or actor is None:
        return refused or Redirect("operators")
    new_role = ctx.form.get("role", "")
    merchant = None if new_role == "head_office" else (ctx.form.get("merchant", "").strip()
                                                       or None)
    problem = grant_problem(actor, ctx.portal.config, new_role, merchant)
    if problem:
        log.warning("portal: operator %d refused making operator %d a %r: %s", actor.id,
                    person.id, new_role[:20], problem)
        return await _edit_page(ctx, person, {"error": _clean(problem)}, 403)
    try:
        await ops.set_role(await ctx.portal.engine(), person.id, new_role, merchant,
                           keep_clubs=merchant == person.merchant)
    except ValueError as e:
        return await _edit_page(ctx, person, {"error": _clean(str(e))}, 400)
    log.warning("portal: operator %d made operator %d a %s%s", actor.id, person.id, new_role,
                f" of {merchant}" if merchant else "")
    return Redirect(f"operators/edit?id={person.id}&done=role")


async def clubs(ctx: Ctx) -> Reply:
    actor = ctx.operator
    person, refused = await _target(ctx, ctx.form.get("id", ""))
    if person is None or actor is None:
        return refused or Redirect("operators")
    chosen = {v.decode("utf-8", "replace") for v in (ctx.request.args or {}).get(b"club", [])}
    allowed = set(clubs_for(ctx.portal.config, person.merchant))
    outside = sorted(chosen - allowed)
    if outside:
        log.warning("portal: operator %d refused putting operator %d in club %r", actor.id,
                    person.id, outside[0][:32])
        return await _edit_page(ctx, person, {"error": f"{person.merchant or 'Head office'} "
                                              f"is in no club {outside[0][:32]}."}, 403)
    await ops.set_clubs(await ctx.portal.engine(), person.id, chosen)
    log.warning("portal: operator %d put operator %d in clubs: %s", actor.id, person.id,
                " ".join(sorted(chosen)) or "none")
    return Redirect(f"operators/edit?id={person.id}&done=clubs")

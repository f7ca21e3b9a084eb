"""The rewards catalogue screen, for head office: a loyalty program's rewards (list, add,
update, disable and enable) and its claims (list, void with a confirmation step: points and
stock come back), through the same functions as `/v1/rewards` and `tillgate rewards`
(gateway/ledger/rewards.py: new_reward, changed, put_reward, list_claims, void_claim). A change
is stored with `portal:<operator id>` as who made it, and a claim at a till sees it at once
(claim_reward.lua reads the reward in the call that takes the points).

Head office only: a reward belongs to a program, and a program is shared by every merchant of
its club; a merchant's manager changing its cost or stock would change it for the other
merchants' counters too (docs/portal.md, "Rewards").
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.backoffice.reports.period import zone
from gateway.config.model import Program
from gateway.ledger import rewards
from gateway.web.portal.periodform import Chosen, FormError, chosen_period
from gateway.web.portal.web import Ctx, Page, Redirect, Reply

log = logging.getLogger(__name__)

FIELDS = ("name", "points", "stock", "valid_from", "valid_to", "tier")
DONE = {"added": "The reward is added.", "updated": "The reward is updated.",
        "disabled": "The reward is disabled: tills are answered 12 for it.",
        "enabled": "The reward is enabled.",
        "voided": "The claim is voided: its points and stock are back."}


def _by(ctx: Ctx) -> str:
    operator = ctx.operator
    assert operator is not None
    return f"portal:{operator.id}"


def _loyalty(ctx: Ctx) -> list[Program]:
    return [p for p in ctx.portal.config.programs.values() if p.is_loyalty]


def _program(ctx: Ctx, wanted: str) -> Program:
    programs = _loyalty(ctx)
    if not programs:
        raise rewards.RewardError("program: no loyalty program in the config")
    if not wanted:
        return programs[0]
    return rewards.loyalty_program(ctx.portal.config, wanted)


def _given(ctx: Ctx) -> dict[str, Any]:
    """The form's fields as the catalogue's functions take them: "" stock is unlimited, ""
    dates are open; clubs are the checked merchants."""
    given: dict[str, Any] = {name: ctx.form.get(name, "").strip() for name in FIELDS}
    if given["stock"] == "":
        given["stock"] = None
    given["clubs"] = [c.decode("utf-8", "replace")
                      for c in (ctx.request.args or {}).get(b"clubs", [])]
    return given


def _message(error: rewards.RewardError) -> str:
    text = str(error)
    return text[0].upper() + text[1:] + "."


async def _list_page(ctx: Ctx, program: Program, values: dict | None = None,
                     status: int = 200) -> Page:
    listed = await rewards.list_rewards(ctx.portal.store(), program)
    return Page("rewards.html", {
        "title": "Rewards", "programs": _loyalty(ctx), "program": program,
        "rewards": [r.as_dict() for r in listed], "merchants": list(ctx.portal.config.merchants),
        "tiers": [t.name for t in program.tiers], "form": {}, **(values or {})}, status)


async def show(ctx: Ctx) -> Reply:
    try:
        program = _program(ctx, ctx.query.get("program", ""))
    except rewards.RewardError as e:
        return Page("error.html", {"title": "Rewards", "text": _message(e)}, 404)
    return await _list_page(ctx, program, {"message": DONE.get(ctx.query.get("done", ""))})


async def add(ctx: Ctx) -> Reply:
    try:
        program = _program(ctx, ctx.form.get("program", ""))
    except rewards.RewardError as e:
        return Page("error.html", {"title": "Rewards", "text": _message(e)}, 400)
    rid = ctx.form.get("id", "").strip()
    given = _given(ctx)
    store = ctx.portal.store()
    try:
        reward = rewards.new_reward(ctx.portal.config, program, rid, given)
    except rewards.RewardError as e:
        return await _list_page(ctx, program, {"error": _message(e), "form": ctx.form}, 400)
    if await rewards.get_reward(store, program, rid) is not None:
        return await _list_page(ctx, program, {
            "error": f"Id: reward {rid} exists in program {program.id}.", "form": ctx.form},
            409)
    await rewards.put_reward(store, reward, _by(ctx), set_stock=True)
    log.warning("portal: reward %s/%s added by %s", program.id, rid, _by(ctx))
    return Redirect(f"rewards?program={program.id}&done=added")


async def _current(ctx: Ctx, source: dict[str, str]) -> tuple[Program, rewards.Reward]:
    program = _program(ctx, source.get("program", ""))
    rid = source.get("id", "")
    current = await rewards.get_reward(ctx.portal.store(), program, rid)
    if current is None:
        raise rewards.RewardError(f"id: no reward {rid!r} in program {program.id!r}")
    return program, current


def _edit_page(ctx: Ctx, program: Program, reward: rewards.Reward,
               values: dict | None = None, status: int = 200) -> Page:
    return Page("reward_edit.html", {
        "title": f"Reward {reward.id}", "program": program, "reward": reward.as_dict(),
        "merchants": list(ctx.portal.config.merchants),
        "tiers": [t.name for t in program.tiers], **(values or {})}, status)


async def edit_form(ctx: Ctx) -> Reply:
    try:
        program, current = await _current(ctx, ctx.query)
    except rewards.RewardError as e:
        return Page("error.html", {"title": "Rewards", "text": _message(e)}, 404)
    return _edit_page(ctx, program, current)


async def update(ctx: Ctx) -> Reply:
    try:
        program, current = await _current(ctx, ctx.form)
    except rewards.RewardError as e:
        return Page("error.html", {"title": "Rewards", "text": _message(e)}, 404)
    given = _given(ctx)
    # The stock is written only when it was changed in the form: claims may have taken items
    # since the form was opened, and an unchanged field must not give them back.
    if ctx.form.get("stock", "").strip() == ctx.form.get("stock_shown", ""):
        del given["stock"]
    try:
        reward = rewards.changed(ctx.portal.config, current, given)
    except rewards.RewardError as e:
        return _edit_page(ctx, program, current, {"error": _message(e)}, 400)
    await rewards.put_reward(ctx.portal.store(), reward, _by(ctx), set_stock="stock" in given)
    log.warning("portal: reward %s/%s changed by %s", program.id, reward.id, _by(ctx))
    return Redirect(f"rewards?program={program.id}&done=updated")


async def switch(ctx: Ctx) -> Reply:
    action = ctx.form.get("action", "")
    try:
        program, current = await _current(ctx, ctx.form)
        if action not in ("enable", "disable"):
            raise rewards.RewardError("action: enable or disable")
        reward = rewards.changed(ctx.portal.config, current, {"enabled": action == "enable"})
    except rewards.RewardError as e:
        return Page("error.html", {"title": "Rewards", "text": _message(e)}, 400)
    await rewards.put_reward(ctx.portal.store(), reward, _by(ctx), set_stock=False)
    log.warning("portal: reward %s/%s %sd by %s", program.id, reward.id, action, _by(ctx))
    return Redirect(f"rewards?program={program.id}&done={action}d")


# -- claims ------------------------------------------------------------------------------------

async def claims(ctx: Ctx) -> Reply:
    try:
        program = _program(ctx, ctx.query.get("program", ""))
        chosen, period = chosen_period({**ctx.query, "by": "day"}, zone(program.timezone),
                                       ctx.now)
    except rewards.RewardError as e:
        return Page("error.html", {"title": "Claims", "text": _message(e)}, 404)
    except FormError as e:
        program = _program(ctx, ctx.query.get("program", ""))
        return Page("claims.html", {"title": "Reward claims", "program": program,
                                    "claims": None, "error": str(e), "chosen": Chosen(
                                        ctx.query.get("from", "")[:10],
                                        ctx.query.get("to", "")[:10], "day")}, 400)
    found = await rewards.list_claims(ctx.portal.store(), program.id, period.start,
                                      period.end - 0.001)
    return Page("claims.html", {"title": "Reward claims", "program": program,
                                "claims": [c.as_dict() for c in reversed(found)],
                                "chosen": chosen, "zone": program.timezone,
                                "message": DONE.get(ctx.query.get("done", ""))})


async def _claim(ctx: Ctx, program: Program, key: str) -> dict[str, Any] | None:
    every = await rewards.list_claims(ctx.portal.store(), program.id, 0, ctx.now + 60)
    return next((c.as_dict() for c in every if c.op == "claim" and c.key == key), None)


async def void_form(ctx: Ctx) -> Reply:
    """The confirmation step: the claim as it will be undone, and one button."""
    try:
        program = _program(ctx, ctx.query.get("program", ""))
    except rewards.RewardError as e:
        return Page("error.html", {"title": "Void a claim", "text": _message(e)}, 404)
    claim = await _claim(ctx, program, ctx.query.get("key", ""))
    if claim is None:
        return Page("error.html", {"title": "Void a claim", "text": "There is no such claim "
                                   f"in program {program.id}."}, 404)
    return Page("claim_void.html", {"title": "Void a claim", "program": program,
                                    "claim": claim})


async def void(ctx: Ctx) -> Reply:
    try:
        program = _program(ctx, ctx.form.get("program", ""))
    except rewards.RewardError as e:
        return Page("error.html", {"title": "Void a claim", "text": _message(e)}, 400)
    key = ctx.form.get("key", "")
    claim = await _claim(ctx, program, key)
    if claim is None:
        return Page("error.html", {"title": "Void a claim", "text": "There is no such claim "
                                   f"in program {program.id}."}, 404)
    if claim["voided"]:
        return Page("claim_void.html", {"title": "Void a claim", "program": program,
                                        "claim": claim, "error": "This claim is voided "
                                        "already."}, 409)
    res = await rewards.void_claim(ctx.portal.store(), program, key, _by(ctx))
    if res is None or res.get("rc") != "00":
        reason = "no such claim" if res is None else f"{res.get('rc')} {res.get('msg', '')}"
        return Page("claim_void.html", {"title": "Void a claim", "program": program,
                                        "claim": claim, "error": "The claim could not be "
                                        f"voided ({reason.strip()})."}, 409)
    log.warning("portal: claim %s of %s (%s) voided by %s", key, claim["reward"], program.id,
                _by(ctx))
    return Redirect(f"rewards/claims?program={program.id}&done=voided")

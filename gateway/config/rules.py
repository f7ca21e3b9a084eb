"""The `[[rules]]` of the config: what a velocity rule may say, read and checked as a whole.

What a rule does at run time (counters, phases, trips) is gateway/security/rules.py, which reads
these; this module imports nothing of it, so the config never depends on the rule engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.config.sections import Section

OPERATIONS = (
    "activate", "prevalidate", "reload", "redeem", "refund", "cashout", "balance", "pbalance",
    "void", "reverse", "transfer", "earn", "padd", "return", "predeem",
)
# Events counted from an answer rather than a request (the rule engine's phase 3).
POST_EVENTS = frozenset({"unknown_card", "wrong_pin", "declined"})
# A sign-in attempt on the member page (gateway/web/members), counted before the PIN is tried.
MEMBER_SIGNIN = "member_signin"
RULE_EVENTS = OPERATIONS + ("unknown_card", "wrong_pin", "declined", MEMBER_SIGNIN)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    scope: str  # card | terminal | merchant | operator | source
    # an operation name, or unknown_card / wrong_pin / declined (gateway/security/rules.py)
    event: str
    window: int  # seconds
    max_count: int = 0  # 0 = not limited by count
    max_amount: int = 0  # 0 = not limited by amount sum
    action: str = "alert"  # alert | decline | lock_card | disable_terminal


def read_rule(s: Section) -> Rule:
    rule = Rule(
        name=s.string("name"),
        scope=s.string("scope", choices=("card", "terminal", "merchant", "operator", "source")),
        event=s.string("event", choices=RULE_EVENTS),
        window=s.integer("window", minimum=1),
        max_count=s.integer("max_count", 0, minimum=0),
        max_amount=s.integer("max_amount", 0, minimum=0),
        action=s.string("action", "alert", choices=("alert", "decline", "lock_card",
                                                  "disable_terminal")),
    )
    if not rule.max_count and not rule.max_amount:
        s.error("", "needs max_count or max_amount")
    s.reject_unknown()
    return rule


def rule_problems(rules: Sequence[Rule]) -> list[str]:
    """What the scopes, events and actions of these rules cannot mean together."""
    errors: list[str] = []
    names: set[str] = set()
    for i, rule in enumerate(rules):
        where = f"rules[{i}]"
        if rule.name in names:
            errors.append(f"{where}.name: {rule.name!r} is used by another rule")
        names.add(rule.name)
        if rule.scope == "card" and rule.event == "unknown_card":
            errors.append(f"{where}.scope: an unknown card has no card to count on; use terminal "
                          "or source")
        if rule.action == "lock_card" and rule.scope != "card":
            errors.append(f"{where}.action: lock_card needs scope = \"card\"")
        if rule.action == "disable_terminal" and rule.scope == "card":
            errors.append(f"{where}.action: disable_terminal needs a terminal, merchant, "
                          "operator or source scope")
        if rule.event in POST_EVENTS and rule.max_amount:
            errors.append(f"{where}.max_amount: {rule.event} rules count answers; use max_count")
        if rule.event == MEMBER_SIGNIN and rule.scope not in ("card", "source"):
            errors.append(f"{where}.scope: member_signin counts per card or per source address")
        if rule.event == MEMBER_SIGNIN and rule.action not in ("alert", "decline"):
            errors.append(f"{where}.action: member_signin rules alert or decline")
        if rule.event == MEMBER_SIGNIN and rule.max_amount:
            errors.append(f"{where}.max_amount: member_signin rules count attempts; use "
                          "max_count")
        if rule.event == "reverse" and rule.action in ("decline", "lock_card"):
            errors.append(f"{where}.action: reversals are never refused (a till repeats them "
                          "until answered); use alert")
    return errors

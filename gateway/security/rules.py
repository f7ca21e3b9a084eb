"""Velocity rules: which counters a request touches, in which phase, and what a trip means.

A rule (config `[[rules]]`, gateway.config.rules.Rule) counts one kind of event for one scope value
in
fixed windows of `window` seconds aligned on the epoch (window index = now // window). "More
than N" means the (N+1)th event trips. Counters are Redis hashes {n: count, s: amount sum} that
expire at the end of their window, written by the same Lua script that checks them:

  card scope             `{c:<card id>}:v:<rule>:<window>`          checked and counted INSIDE the
                         card script (phase 2), before and after the operation, atomically
  terminal, merchant,    `{m:<merchant>}:v:<rule>:<value>:<window>`  operation rules checked and
  operator, source                                                   reserved in _claim.lua
                         (phase 1, before the card is touched); phase 3 (velocity_after.lua)
                         gives back what the card script refused, and counts the events only the
                         answer reveals (unknown card, wrong PIN, declined)

Refusals: 65 (decline); 62 and the card suspended (lock_card, card scope); 65 and the terminal
disabled (disable_terminal): its flag `{m:<merchant>}:off:<terminal>` makes phase 1 answer 58
until an operator enables it again (gateway.security.rules.enable_terminal). Events rules that
refuse are
rate limits: after N events in the window, the next request is refused before it can cause one.
docs/security.md has the whole picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from gateway.config.members import DEFAULT_SIGNIN_RULES
from gateway.config.rules import MEMBER_SIGNIN, POST_EVENTS, Rule
from protocols.model import RC, Op, Request, Result, mask_card

# A rule's event names an operation by its TGL/1 name; a pre-valued activation is an activation.
EVENT_OF_OP = {op: op.value for op in Op} | {Op.ACTIVATE_PREVALUED: "activate"}
CARD_ACTION = {"alert": "alert", "decline": "decline", "lock_card": "lock"}
MERCHANT_ACTION = {"alert": "alert", "decline": "decline", "disable_terminal": "disable"}
CARD_EVENT = {"wrong_pin": "pin", "declined": "dec"}  # card-scope event rules in the script


# The hash slot of the member page's sign-in counters (no merchant's: no till shares them).
SIGNIN_SLOT = "members"


def source_host(source: str | None) -> str | None:
    """The peer address without its port ("10.0.0.5:50123" -> "10.0.0.5"); a device as is."""
    if not source or source == "?":
        return None
    host, sep, port = source.rpartition(":")
    return host if sep and port.isdigit() else source


def terminal_off_key(merchant: str, terminal: str) -> str:
    return f"{{m:{merchant}}}:off:{terminal}"


@dataclass(frozen=True, slots=True)
class Trip:
    """A rule past its limit for one scope value in one window (the stuff of an alert)."""

    rule: Rule
    value: str  # the scope value an alert may show (a card is masked)
    key_value: str  # the scope value in the de-duplication key (a card's id)
    window_start: int
    count: int
    amount: int

    @property
    def window_end(self) -> int:
        return self.window_start + self.rule.window


@dataclass(slots=True)
class _Counter:
    rule: Rule
    value: str
    key_value: str
    index: int  # window index

    def trip(self, count: int, amount: int) -> Trip:
        return Trip(self.rule, self.value, self.key_value, self.index * self.rule.window,
                    int(count), int(amount))


@dataclass(slots=True)
class ClaimPlan:
    """The velocity part of one request's phase 1: extra KEYS and ARGV for _claim.lua."""

    keys: list[str]
    argv: list[bytes]
    counters: list[_Counter] = field(default_factory=list)  # KEYS[3 + i]
    entries: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class CardPlan:
    """The velocity part of one card script call: extra KEYS and the `vr` parameter."""

    keys: list[str]
    vr: list[dict[str, Any]]
    counters: list[_Counter]


def _window(rule: Rule, now: float) -> tuple[int, int]:
    index = int(now) // rule.window
    return index, (index + 1) * rule.window + 1


def _trips(flat: Sequence[Any], counters: Sequence[_Counter]) -> list[Trip]:
    """[i, n, s, i, n, s, ...] (1-based i) from a script, as Trips."""
    return [counters[int(flat[k]) - 1].trip(flat[k + 1], flat[k + 2])
            for k in range(0, len(flat) - 2, 3)]


class Velocity:
    """The configured rules, sorted by where they are checked; builds each phase's arguments."""

    def __init__(self, rules: Sequence[Rule]):
        # the member page's sign-in rules count no till's requests (signin_steps); a config
        # with none of them gets the defaults
        self.rules = tuple(r for r in rules if r.event != MEMBER_SIGNIN)
        self.signin_rules = (tuple(r for r in rules if r.event == MEMBER_SIGNIN)
                             or DEFAULT_SIGNIN_RULES)
        self.card_rules = [r for r in self.rules if r.scope == "card"]
        self.merchant_rules = [r for r in self.rules if r.scope != "card"]

    def __bool__(self) -> bool:
        return bool(self.rules)

    # -- phase 2, the card's slot ---------------------------------------------------------------

    def card_plan(self, req: Request, cid: str, now: float) -> CardPlan | None:
        event = EVENT_OF_OP[req.op]
        keys: list[str] = []
        vr: list[dict[str, Any]] = []
        counters: list[_Counter] = []
        for rule in self.card_rules:
            if rule.event != event and rule.event not in CARD_EVENT:
                continue
            index, end = _window(rule, now)
            keys.append(f"{{c:{cid}}}:v:{rule.name}:{index}")
            vr.append({"n": rule.max_count, "m": rule.max_amount, "x": end,
                       "act": CARD_ACTION[rule.action], "ev": CARD_EVENT.get(rule.event, "op")})
            counters.append(_Counter(rule, mask_card(req.card), cid, index))
        return CardPlan(keys, vr, counters) if vr else None

    @staticmethod
    def card_trips(response: dict[str, Any], plan: CardPlan | None) -> list[Trip]:
        if plan is None or not response.get("vt"):
            return []
        return [plan.counters[int(i) - 1].trip(n, s) for i, n, s in response["vt"]]

    # -- phase 1, the merchant's slot ------------------------------------------------------------

    def _value(self, rule: Rule, req: Request) -> str | None:
        if rule.scope == "terminal":
            return req.terminal
        if rule.scope == "merchant":
            return req.merchant
        if rule.scope == "operator":
            return req.operator or None
        return source_host(req.source)

    def _counter(self, rule: Rule, req: Request, now: float) -> tuple[_Counter, str, int] | None:
        value = self._value(rule, req)
        if value is None:
            return None
        index, end = _window(rule, now)
        key = f"{{m:{req.merchant}}}:v:{rule.name}:{value}:{index}"
        return _Counter(rule, value, value, index), key, end

    def claim_plan(self, req: Request, now: float) -> ClaimPlan:
        """Always built: even with no rules, phase 1 checks the terminal's disabled flag."""
        event = EVENT_OF_OP[req.op]
        plan = ClaimPlan([terminal_off_key(req.merchant, req.terminal)], [])
        for rule in self.merchant_rules:
            post = rule.event in POST_EVENTS
            if (post and rule.action != "decline") or (not post and rule.event != event):
                continue
            found = self._counter(rule, req, now)
            if found is None:
                continue
            counter, key, end = found
            entry = {"n": rule.max_count, "m": rule.max_amount, "x": end,
                     "a": req.amount if rule.max_amount and not post else 0,
                     "act": MERCHANT_ACTION[rule.action], "ev": "post" if post else "op"}
            plan.keys.append(key)
            plan.counters.append(counter)
            plan.entries.append(entry)
        plan.argv.append(msgpack.packb(plan.entries) if plan.entries else b"")
        return plan

    @staticmethod
    def claim_outcome(reply: Any, plan: ClaimPlan) -> tuple[int, list[Trip]]:
        if not isinstance(reply, list):
            return int(reply), []
        return int(reply[0]), _trips(reply[1:], plan.counters)

    # -- phase 3, the merchant's slot ------------------------------------------------------------

    def has_after_phase(self, plan: ClaimPlan, result: Result) -> bool:
        """False when after_steps can only find nothing to do: no reservation to give back, and
        no merchant-slot rule or an approval (which is none of POST_EVENTS). The caller then
        skips the phase without building it."""
        return bool(plan.entries) or (bool(self.merchant_rules)
                                      and result.code not in RC.APPROVALS)

    def after_steps(self, req: Request, plan: ClaimPlan, result: Result,
                    now: float) -> tuple[list[str], list[bytes], list[_Counter]] | None:
        """Give back unused reservations, count the events the answer revealed (None: nothing)."""
        keys, steps, counters = [], [], []
        approved = result.code in RC.APPROVALS
        for counter, key, entry in zip(plan.counters, plan.keys[1:], plan.entries):
            if entry["ev"] == "op":
                # partial approval: the reservation was for more than the card gave
                given_back = entry["a"]
                if approved:
                    partial = result.code == RC.PARTIAL and result.amount is not None
                    given_back = entry["a"] - (result.amount or 0) if partial and entry["a"] else 0
                dn = 0 if approved else 1
                if dn or given_back > 0:
                    steps.append({"d": "undo", "dn": dn, "a": max(given_back, 0)})
            elif not self.is_event(counter.rule.event, result.code):
                steps.append({"d": "undo", "dn": 1, "a": 0})
            else:
                continue
            keys.append(key)
            counters.append(counter)
        for rule in self.merchant_rules:
            if rule.action == "decline" or not self.is_event(rule.event, result.code):
                continue
            found = self._counter(rule, req, now)
            if found is not None:
                counter, key, end = found
                steps.append(self._count_step(rule, end, "count"))
                keys.append(key)
                counters.append(counter)
        if not steps:
            return None
        return ([terminal_off_key(req.merchant, req.terminal), *keys],
                [msgpack.packb(steps), b"0"], counters)

    def precheck_steps(self, req: Request,
                       now: float) -> tuple[list[str], list[bytes], list[_Counter]]:
        """An unknown card answered before the store (a number that fits no program): count it,
        and refuse it with 65 where a decline rule is already at its limit."""
        keys, steps, counters = [], [], []
        for rule in self.merchant_rules:
            if rule.event != "unknown_card":
                continue
            found = self._counter(rule, req, now)
            if found is not None:
                counter, key, end = found
                steps.append(self._count_step(rule, end,
                                              "gate" if rule.action == "decline" else "count"))
                keys.append(key)
                counters.append(counter)
        # even with no steps: a disabled terminal answers 58 to unknown numbers too
        return ([terminal_off_key(req.merchant, req.terminal), *keys],
                [msgpack.packb(steps), b"1"], counters)

    def signin_steps(self, source: str | None, card: str, cid: str,
                     now: float) -> tuple[list[str], list[bytes], list[_Counter]]:
        """A member page sign-in attempt (gateway/web/members): for velocity_after.lua, a step
        per `member_signin` rule on the source address or the card (counted by its id, in the
        slot SIGNIN_SLOT, so no till's counters and no card number are in it). A decline rule
        at its limit refuses (65) before the attempt counts or the PIN is tried."""
        keys, steps, counters = [], [], []
        for rule in self.signin_rules:
            value = cid if rule.scope == "card" else source_host(source)
            if value is None:
                continue
            index, end = _window(rule, now)
            keys.append(f"{{m:{SIGNIN_SLOT}}}:v:{rule.name}:{value}:{index}")
            steps.append(self._count_step(rule, end,
                                          "gate" if rule.action == "decline" else "count"))
            shown = mask_card(card) if rule.scope == "card" else value
            counters.append(_Counter(rule, shown, value, index))
        return ([terminal_off_key(SIGNIN_SLOT, SIGNIN_SLOT), *keys],
                [msgpack.packb(steps), b"0"], counters)

    @staticmethod
    def _count_step(rule: Rule, end: int, kind: str) -> dict[str, Any]:
        return {"d": kind, "dn": 1, "a": 0, "n": rule.max_count, "m": rule.max_amount,
                "act": MERCHANT_ACTION[rule.action], "x": end}

    @staticmethod
    def after_outcome(reply: Sequence[Any], counters: Sequence[_Counter]) -> tuple[int, list[Trip]]:
        """(0 go on | 1 refuse with 65 | 2 the terminal is disabled, trips)."""
        return int(reply[0]), _trips(reply[1:], counters)

    @staticmethod
    def is_event(event: str, code: str) -> bool:
        if event == "unknown_card":
            return code == RC.UNKNOWN_CARD
        if event == "wrong_pin":
            return code in (RC.INCORRECT_PIN, RC.PIN_TRIES_EXCEEDED)
        if event == "declined":
            return code not in RC.APPROVALS and code != RC.VELOCITY
        return False


async def set_terminal_enabled(store: Any, merchant: str, terminal: str, enabled: bool) -> bool:
    """Operator switch (admin HTTP): True when the flag changed."""
    key = terminal_off_key(merchant, terminal)
    if enabled:
        return bool(await store.command("DEL", key))
    return bool(await store.command("SET", key, "operator", "NX"))


async def terminal_disabled(store: Any, merchant: str, terminal: str) -> bool:
    return bool(await store.command("EXISTS", terminal_off_key(merchant, terminal)))

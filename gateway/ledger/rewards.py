"""The rewards catalogue at run time: what a loyalty program's members can claim, kept in Redis.

A reward is a hash `{rw:<program>}:<id>` (fields below); `{rw:<program>}:ids` indexes a program's
rewards and `{rw:<program>}:cl` is the stream of its claims and of the undos of claims (written by
gateway/ledger/lua/claim_reward.lua and `undo` in _prelude.lua). A reward of the config's
`rewards` list that is not in Redis is claimable as the config says (its cost, unlimited, always,
anywhere); the first change through the admin API or the CLI copies it into Redis, where it then
lives. docs/ledger.md "Rewards" has the claim and its codes.

Hash fields: `on` 1/0 (disabled: 12), `name`, `pts` cost, `stock` left (absent: unlimited),
`claimed` count, `from` / `to` YYYYMMDD valid from / until (0: open), `clubs` comma-separated
merchants where it is claimable (empty: all), `tier` required (empty: none), `by` who changed it
last, `t` when.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any

import msgpack

from gateway.config.model import Config, Program
from gateway.ledger import cards, rewardsplit
from gateway.ledger.checks import REWARD_ID
from gateway.ledger.rewardkeys import claims_key, index_key, keys_of, reward_key
from gateway.ledger.store import Store

_DATE = re.compile(r"^\d{8}$")


@dataclass(frozen=True, slots=True)
class Reward:
    program: str
    id: str
    name: str
    points: int
    stock: int | None = None  # left to claim; None = unlimited
    valid_from: int = 0  # YYYYMMDD, 0 = open
    valid_to: int = 0
    clubs: tuple[str, ...] = ()  # merchants where it is claimable; () = all
    tier: str = ""  # tier required; "" = none
    enabled: bool = True
    claimed: int = 0
    source: str = "store"  # "config": the config's default, not yet in Redis

    def as_dict(self) -> dict[str, Any]:
        return {"program": self.program, "id": self.id, "name": self.name,
                "points": self.points, "stock": self.stock, "valid_from": _date(self.valid_from),
                "valid_to": _date(self.valid_to), "clubs": list(self.clubs), "tier": self.tier,
                "enabled": self.enabled, "claimed": self.claimed, "source": self.source}

    def fields(self) -> dict[str, str | int]:
        return {"on": int(self.enabled), "name": self.name, "pts": self.points,
                "from": self.valid_from, "to": self.valid_to, "clubs": ",".join(self.clubs),
                "tier": self.tier}


def _date(yyyymmdd: int) -> str | None:
    if not yyyymmdd:
        return None
    s = str(yyyymmdd)
    return f"{s[:4]}-{s[4:6]}-{s[6:]}"


class RewardError(ValueError):
    """Bad reward input; the message names the field."""


def parse_date(value: object, name: str) -> int:
    """YYYY-MM-DD or YYYYMMDD (None or "" = open) as YYYYMMDD."""
    if value is None or value == "":
        return 0
    text = str(value).replace("-", "")
    if not _DATE.match(text):
        raise RewardError(f"{name}: a date YYYY-MM-DD")
    try:
        dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise RewardError(f"{name}: no such date {value!r}") from None
    return int(text)


def _int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RewardError(f"{name}: a whole number")
    try:
        n = int(value)
    except ValueError:
        raise RewardError(f"{name}: a whole number") from None
    if n < minimum:
        raise RewardError(f"{name}: at least {minimum}")
    return n


UPDATABLE = ("name", "points", "stock", "valid_from", "valid_to", "clubs", "tier", "enabled")


def changed(config: Config, base: Reward, given: dict[str, Any]) -> Reward:
    """`base` with the fields of `given` (JSON from the API or options from the CLI) checked
    and applied; RewardError names the first bad field."""
    unknown = set(given) - set(UPDATABLE)
    if unknown:
        raise RewardError(f"{sorted(unknown)[0]}: unknown field (known: {', '.join(UPDATABLE)})")
    r = base
    if "name" in given:
        if not isinstance(given["name"], str) or len(given["name"]) > 60:
            raise RewardError("name: text of at most 60 characters")
        r = replace(r, name=given["name"])
    if "points" in given:
        r = replace(r, points=_int(given["points"], "points", 1))
    if "stock" in given:
        stock = given["stock"]
        r = replace(r, stock=None if stock is None or stock == "unlimited"
                    else _int(stock, "stock", 0))
    if "valid_from" in given:
        r = replace(r, valid_from=parse_date(given["valid_from"], "valid_from"))
    if "valid_to" in given:
        r = replace(r, valid_to=parse_date(given["valid_to"], "valid_to"))
    if r.valid_from and r.valid_to and r.valid_from > r.valid_to:
        raise RewardError("valid_to: before valid_from")
    if "clubs" in given:
        clubs = given["clubs"]
        if isinstance(clubs, str):
            clubs = [c for c in clubs.split(",") if c]
        if not isinstance(clubs, list) or not all(isinstance(c, str) for c in clubs):
            raise RewardError("clubs: a list of merchant ids")
        for c in clubs:
            if c not in config.merchants:
                raise RewardError(f"clubs: no merchant {c!r}")
        r = replace(r, clubs=tuple(clubs))
    if "tier" in given:
        if not isinstance(given["tier"], str) or not re.match(r"^[A-Za-z0-9_-]{0,20}$",
                                                               given["tier"]):
            raise RewardError("tier: a tier name (letters, digits, _ -)")
        r = replace(r, tier=given["tier"])
    if "enabled" in given:
        if not isinstance(given["enabled"], bool):
            raise RewardError("enabled: true or false")
        r = replace(r, enabled=given["enabled"])
    return r


def loyalty_program(config: Config, program_id: str) -> Program:
    program = config.programs.get(program_id)
    if program is None or not program.is_loyalty:
        raise RewardError(f"program: no loyalty program {program_id!r}")
    return program


def _from_hash(program: str, rid: str, h: dict[bytes, bytes]) -> Reward:
    def text(k: str) -> str:
        return h.get(k.encode(), b"").decode()

    stock = h.get(b"stock")
    return Reward(program=program, id=rid, name=text("name"), points=int(text("pts") or 0),
                  stock=None if stock is None else int(stock),
                  valid_from=int(text("from") or 0), valid_to=int(text("to") or 0),
                  clubs=tuple(c for c in text("clubs").split(",") if c), tier=text("tier"),
                  enabled=text("on") == "1", claimed=int(text("claimed") or 0))


def _from_config(program: Program, rid: str) -> Reward | None:
    seed = program.reward(rid)
    if seed is None:
        return None
    return Reward(program=program.id, id=rid, name=seed.name, points=seed.cost, source="config")


async def get_reward(store: Store, program: Program, rid: str) -> Reward | None:
    h = await store.command("HGETALL", reward_key(program.id, rid))
    if h:
        return _from_hash(program.id, rid, h)
    return _from_config(program, rid)


async def list_rewards(store: Store, program: Program) -> list[Reward]:
    """The program's rewards, Redis's and the config's not yet copied there, by id."""
    ids = {i.decode() for i in await store.command("SMEMBERS", index_key(program.id))}
    ids |= {r.id for r in program.rewards}
    found = [await get_reward(store, program, rid) for rid in sorted(ids)]
    return [r for r in found if r is not None]


async def put_reward(store: Store, reward: Reward, operator: str, set_stock: bool) -> None:
    """Store the reward's definition (`claimed` is left to the claims). The stock is written
    only with `set_stock` (a new reward, or an update that gives it), so an update of the name
    does not overwrite what claims took meanwhile."""
    key = reward_key(reward.program, reward.id)
    fields: dict[str, Any] = {**reward.fields(), "by": operator, "t": int(time.time())}
    if set_stock and reward.stock is not None:
        fields["stock"] = reward.stock
    await store.command("HSET", key, *[x for kv in fields.items() for x in kv])
    if set_stock and reward.stock is None:
        await store.command("HDEL", key, "stock")
    await store.command("SADD", index_key(reward.program), reward.id)


def new_reward(config: Config, program: Program, rid: str, given: dict[str, Any]) -> Reward:
    if not isinstance(rid, str) or not REWARD_ID.match(rid):
        raise RewardError("id: 1 to 20 of A-Z a-z 0-9 _ . -")
    if "points" not in given:
        raise RewardError("points: required")
    return changed(config, Reward(program=program.id, id=rid, name="", points=1), given)


@dataclass(frozen=True, slots=True)
class Claim:
    """One line of a program's claims stream: a claim, or the undo of one (`orig`)."""

    id: str
    op: str  # claim | void | reversal | rollback
    reward: str
    card: str  # masked
    points: int  # signed: a claim takes (negative), its undo gives back
    terminal: str
    merchant: str
    key: str
    t: int
    operator: str
    orig: str | None = None
    voided: bool = field(default=False)

    def as_dict(self) -> dict[str, Any]:
        when = dt.datetime.fromtimestamp(self.t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"id": self.id, "time": when, "op": self.op, "reward": self.reward,
                "card": self.card, "points": self.points, "terminal": self.terminal,
                "merchant": self.merchant, "key": self.key, "operator": self.operator,
                "orig": self.orig, "voided": self.voided}


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v or "")


def claims_period(since: str, until: str, names: tuple[str, str] = ("from", "to"),
                  ) -> tuple[float, float]:
    """A listing's period from two days YYYY-MM-DD (UTC; `until` inclusive) as epoch seconds
    [since, until); RewardError names the bad one by `names` (the CLI's options, the API's
    fields)."""
    def day(text: str, name: str) -> float:
        try:
            return dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp()
        except ValueError:
            raise RewardError(f"{name}: a date YYYY-MM-DD") from None

    start, end = day(since, names[0]), day(until, names[1]) + 86400
    if end <= start:
        raise RewardError(f"{names[1]}: before {names[0]}")
    return start, end


async def list_claims(store: Store, program: str, since: float, until: float) -> list[Claim]:
    """Claims and their undos between two epoch times, oldest first; a claim undone in the
    same listing is marked `voided`."""
    page = await store.command("XRANGE", claims_key(program), int(since * 1000),
                               int(until * 1000))
    out = []
    for entry_id, fields in page:
        e = msgpack.unpackb(fields[b"e"])
        out.append(Claim(id=_text(entry_id), op=e["op"], reward=_text(e.get("rw")),
                         card=e.get("card", ""), points=int(e.get("dp", 0)),
                         terminal=e.get("term", ""), merchant=e.get("merch", ""),
                         key=e.get("key", ""), t=int(e.get("t", 0)),
                         operator=e.get("opid", ""), orig=e.get("orig")))
    undone = {c.orig for c in out if c.orig}
    return [replace(c, voided=True) if c.op == "claim" and c.key in undone else c for c in out]


async def void_claim(store: Store, program: Program, claim_key: str,
                     operator: str) -> dict[str, Any] | None:
    """An operator's void of a claim named by its request key (`rewards claims` lists them):
    the void script, given the reward's keys, gives the points and the stock back (the points
    to the lots the claim took them from; on a Redis Cluster the stock just after, in the
    reward's slot). None when the program's claims stream has no such claim."""
    page = await store.command("XRANGE", claims_key(program.id), "-", "+")
    cid = mask = None
    for _entry_id, fields in page:
        e = msgpack.unpackb(fields[b"e"])
        if e["op"] == "claim" and e.get("key") == claim_key:
            cid, mask = e["ch"], e.get("card", "")
    if cid is None:
        return None
    key = "void:" + secrets.token_hex(6)
    keys = cards.card_keys(cid, key, claim_key, store.feed_key)
    rwk = await store.command("HGET", keys[3], "rwk")
    if rwk is None:  # the claim's record expired (35 days or more): nothing to undo by
        return {"rc": "25", "msg": "claim record expired"}
    params = cards.operator_params(cid, key, "void", term=operator, opid=operator)
    split = rewardsplit.undo_keys(store, keys, params, keys_of(rwk.decode()))
    cards.with_points_depth(store, keys, params, program)
    packed, _fresh = await store.run("void", keys, [msgpack.packb(params)])
    res: dict[str, Any] = msgpack.unpackb(packed)
    if split:  # a Redis Cluster: the stock comes back in the reward's slot, after
        await rewardsplit.undone(store, res, "void", params, claim_key, mask or "",
                                 rewardsplit.OPERATOR_MARK_TTL)
    return res

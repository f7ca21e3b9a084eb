"""Reward claims on a Redis Cluster (docs/ledger.md "Rewards", "Redis Cluster").

A claim touches the reward's keys (`{rw:<program>}`) and the card's (`{c:<id>}`): one script on
one Redis (claim_reward.lua), but two slots on a cluster, where no script may span them. There
the claim is three calls, each atomic in its own slot and each idempotent on the request key:

1. `reward_reserve.lua`, the reward's slot: checks `on`, dates and clubs, takes one of the
   stock and records the reservation under the request key (`{rw:<program>}:res:<key>`, same
   expiry as request records; listed in `{rw:<program>}:held` until settled). A refusal is
   recorded too, so a retransmission gets the same answer.
2. the card script (claim_reward.lua given `rwsplit`): status, PIN, tier, points; applies the
   claim, its record keeping the reward's key (`rwk`) for an undo.
3. `reward_settle.lua`, the reward's slot: approved, the reservation becomes the claim and its
   line goes into the claims stream; refused, the item is given back. Only a held reservation
   changes, so a retransmission (which replays steps 1 and 2) repeats neither.

A gateway that dies between 1 and 3 leaves a held reservation: the sweep (`sweep_reservations`,
with the points sweep) settles it once it is `SWEEP_AFTER` old, from the card's record of the
request, or, when the card script never ran, after a tombstone that makes sure it never will.

An undo (void, reversal, `cards rollback`, `rewards void-claim`) is the reverse: the card script
first (given `rwsplit`, it undoes the points and answers `rwu`, the claim's reward key), then
`reward_return.lua` gives the item back and writes the undo's line, once per undo request key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from gateway.ledger.rewardkeys import (
    claims_key,
    held_key,
    program_of,
    reservation_key,
    returned_key,
    reward_of,
)
from gateway.ledger.store import Store

# How long a reservation may stay held before the sweep settles it (seconds): far beyond the
# time one request can take (a few calls of `redis.timeout`), so that the sweep never settles a
# claim still on its way; a till's retransmission after it is answered from what the sweep did.
SWEEP_AFTER = 600

# How long an operator's undo (its request key is random: it is never repeated) keeps the mark
# that it gave its item back.
OPERATOR_MARK_TTL = 86400


def splits(store: Store, card_key: str, reward_keys: list[str] | None) -> bool:
    """Whether a claim (or undo) with these reward keys is split: a cluster, two slots."""
    return bool(reward_keys) and not store.same_slot(card_key, reward_keys[0])  # type: ignore[index]


def undo_keys(store: Store, keys: list[str], params: dict[str, Any],
              reward_keys: list[str] | None) -> bool:
    """For an operator's undo of a claim (`cards rollback`, `rewards void-claim`): give its card
    script the reward's keys after `keys` (`rwk`: where they start), or, where they are in
    another slot, `rwsplit`; True for the latter (then `undone` gives the item back)."""
    if splits(store, keys[0], reward_keys):
        params["rwsplit"] = 1
        return True
    if reward_keys:
        params["rwk"] = len(keys) + 1
        keys += reward_keys
    return False


async def undone(store: Store, res: dict[str, Any], op: str, params: dict[str, Any],
                 original_key: str, mask: str, ttl: int) -> None:
    """After a split undo's card script answered `res`: the item back if it undid a claim."""
    if res.get("rwu"):
        await give_back(store, res["rwu"], op, params, int(res.get("amt", 0)), original_key,
                        mask, ttl)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class Reservation:
    """What `reward_reserve.lua` recorded for a request (step 1)."""

    reward_key: str
    fields: dict[str, str]

    @property
    def state(self) -> str:  # held | refused | claimed | returned
        return self.fields.get("st", "")

    def refusal(self) -> dict[str, Any] | None:
        """The answer of a reservation the reward refused (a card script's response shape)."""
        if self.state != "refused":
            return None
        return {"rc": self.fields["rc"], "msg": self.fields.get("msg") or None}

    def card_params(self) -> dict[str, Any]:
        """What the card script (step 2) is given instead of the reward's keys."""
        return {"rwsplit": 1, "rwpts": int(self.fields.get("pts", 0)),
                "rwtier": self.fields.get("tier", ""), "rwkey": self.reward_key}


async def reserve(store: Store, reward_key: str, params: dict[str, Any],
                  mask: str) -> Reservation:
    """Step 1, with the card script's `params` (the request key, reward, merchant, dates)."""
    program = program_of(reward_key)
    a = {k: params[k] for k in ("key", "rw", "merch", "today", "now", "ttl", "ch", "term")}
    a.update(rwdef=params.get("rwdef", 0), opid=params.get("opid", ""), mask=mask)
    flat = await store.run("reward_reserve",
                           [reward_key, reservation_key(program, a["key"]), held_key(program)],
                           [msgpack.packb(a)])
    fields = {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}
    return Reservation(reward_key, fields)


async def settle(store: Store, reward_key: str, request_key: str, rc: str) -> str:
    """Step 3: `rc` the card script's answer ('' : it never ran). The reservation's state."""
    program = program_of(reward_key)
    state = await store.run("reward_settle",
                            [reward_key, reservation_key(program, request_key),
                             held_key(program), claims_key(program)], [rc, request_key])
    return _text(state)


async def give_back(store: Store, reward_key: str, op: str, params: dict[str, Any],
                    points: int, original_key: str, mask: str, ttl: int) -> bool:
    """After an undo's card script (`params`: its parameters) gave `points` back for the claim
    `original_key`: its item back and the undo's line in the claims stream (the line
    `reward_log` in _prelude.lua writes on one Redis). False when this undo had done so."""
    program = program_of(reward_key)
    line = {"op": op, "rw": reward_of(reward_key), "card": mask, "ch": params["ch"],
            "dp": points, "term": params.get("term", ""), "merch": params.get("merch", ""),
            "key": params["key"], "t": params["now"], "opid": params.get("opid", ""),
            "orig": original_key}
    done = await store.run("reward_return",
                           [reward_key, returned_key(program, params["key"]),
                            claims_key(program)],
                           [msgpack.packb(line), str(max(ttl, 1))])
    return bool(done)

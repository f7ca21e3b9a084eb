"""Where a card lives in Redis, and the operator actions on cards (issue, show, unlock, rollback).

A card is keyed by a hash of its number, never the number itself, inside the hash tag
`{c:<id>}` so every key of one card is in one slot (Redis Cluster ready):

  {c:<id>}:s            hash   state (fields: docs/ledger.md)
  {c:<id>}:j            stream journal, one msgpack entry per change (gateway/ledger/journal.py)
  {c:<id>}:r:<req key>  hash   record of one request: stored response, undo data, or a tombstone
  {c:<id>}:lots         hash   points lots by day and earned sums (gateway/ledger/lua/_lots.lua)

and each journal entry is also appended to the back office's feed (gateway/ledger/feed.py).

Request keys and invoice numbers belong to the merchant's slot, since the same request key may
come with another card (that is a 94 too):

  {m:<merchant>}:k:<req key>  string  fingerprint of the request that claimed the key
  {m:<merchant>}:inv          hash    invoice number -> request key that used it
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgpack

from gateway.config.model import Program
from gateway.ledger import loyalty, rewardkeys, rewardsplit
from gateway.ledger.feed import feed_key
from gateway.ledger.pins import pin_hash
from gateway.ledger.store import Store
from protocols.carddata import generate_card_number, generate_pin
from protocols.model import Op, Request, mask_card

if TYPE_CHECKING:
    from protocols._carddata_py import Draws

STATUSES = ("issued", "active", "suspended", "locked", "lost", "closed")
OPERATOR = "OPERATOR"  # terminal and merchant of what an operator does on the command line


def card_id(card: str) -> str:
    """The card's key id: a hash of the number (numbers never appear in key names)."""
    return hashlib.sha256(b"tillgate-card:" + card.encode()).hexdigest()[:32]


def state_key(cid: str) -> str:
    return f"{{c:{cid}}}:s"


def journal_key(cid: str) -> str:
    return f"{{c:{cid}}}:j"


def record_key(cid: str, request_key: str) -> str:
    return f"{{c:{cid}}}:r:{request_key}"


def lots_key(cid: str) -> str:
    return f"{{c:{cid}}}:lots"  # named in the scripts from the state key (_lots.lua)


def card_keys(cid: str, request_key: str, original_key: str | None = None,
              feed: Callable[[str], str] = feed_key) -> list[str]:
    """KEYS of every card script: state, journal, this request's record, the original's record,
    and the back office's feed (gateway/ledger/feed.py; `feed`: the store's `feed_key`, which
    on a Redis Cluster names the card's slot's feed)."""
    own = record_key(cid, request_key)
    orig = record_key(cid, original_key) if original_key else own
    return [state_key(cid), journal_key(cid), own, orig, feed(cid)]


def add_points_keys(keys: list[str], params: dict[str, Any], program_id: str,
                    index_key: Callable[[str, str, str], str] = loyalty.index_key) -> None:
    """For a card script of a program with lots, tiers or conversion (`day` in its `params`):
    append the KEYS it touches besides `card_keys` (the lots hash, then the program's expiry
    and tier indexes: `index_key`, the store's, names them in the card's slot on a Redis
    Cluster) and say where they start (`xk`), so every key a script touches is in its KEYS."""
    if "day" in params:
        cid = params["ch"]
        params["xk"] = len(keys) + 1
        keys += [lots_key(cid), index_key(program_id, "due", cid),
                 index_key(program_id, "tiers", cid)]


def claim_key(merchant: str, request_key: str) -> str:
    return f"{{m:{merchant}}}:k:{request_key}"


def invoice_key(merchant: str) -> str:
    return f"{{m:{merchant}}}:inv"


@dataclass(slots=True)
class CardView:
    """What `cards show` prints. The number is held only to be masked on output."""

    card: str
    program: str
    kind: str
    status: str
    balance: int
    points: int
    expiry: str | None
    face_value: int
    pin_tries_failed: int
    tier: str | None = None  # programs with tiers
    # programs whose points expire: the last day (YYYY-MM-DD) of the soonest lot, its points
    points_expiry: str | None = None
    points_expiring: int = 0

    def as_dict(self, mask: bool = True) -> dict[str, object]:
        return {
            "card": mask_card(self.card) if mask else self.card, "program": self.program,
            "kind": self.kind, "status": self.status, "balance": self.balance,
            "points": self.points, "expiry": self.expiry, "face_value": self.face_value,
            "pin_tries_failed": self.pin_tries_failed, "tier": self.tier,
            "points_expiry": self.points_expiry, "points_expiring": self.points_expiring,
        }


def _pack(params: dict[str, object]) -> bytes:
    return msgpack.packb(params)


async def issue_card(store: Store, program: Program, card: str, pin: str | None = None,
                     face_value: int = 0, batch: str | None = None) -> bool:
    """Create a pre-issued card; False when the number already exists. `batch` names the
    `cards import` file that created it (so a resumed import knows its own cards)."""
    params: dict[str, object] = {
        "now": int(time.time()), "prog": program.id, "kind": program.kind,
        "mask": mask_card(card), "face": face_value,
    }
    if pin is not None:
        params["pinh"] = pin_hash(card, pin)
    if batch is not None:
        params["batch"] = batch
    cid = card_id(card)
    return bool(await store.run("issue", [state_key(cid)], [_pack(params)]))


DRAWS = 1000  # numbers drawn for one new card before giving up (a program almost out of them)


def _secrets(_attempt: int) -> Draws:
    return secrets


async def issue_new_card(store: Store, program: Program, face_value: int = 0, *,
                         draws: Callable[[int], Draws] = _secrets, batch: str | None = None,
                         avoid: Container[str] = ()) -> tuple[str, str, bool]:
    """Draw a number of the program, and a PIN where it has them, until the issue script takes
    one (it refuses a taken number atomically; a collision just draws again). Returns the card,
    its PIN ("" where the program has none) and whether this call issued it.

    `draws(attempt)` is where an attempt's choices come from: `secrets`, or a keyed stream that
    draws again what an earlier run drew (gateway/issuance/realtime.py). With `batch`, a number that
    already carries it is the batch's own card from an earlier run (returned as not new).
    `avoid`: numbers to draw past (the ones a batch has already taken).
    """
    for attempt in range(DRAWS):
        card, pin = draw_card(program, draws(attempt))
        if card in avoid:
            continue
        if await issue_card(store, program, card, pin or None, face_value, batch=batch):
            return card, pin, True
        if batch is not None and await store.command(
                "HGET", state_key(card_id(card)), "batch") == batch.encode():
            return card, pin, False
    raise RuntimeError(f"program {program.id}: no free card number found in {DRAWS} draws")


def draw_card(program: Program, draw: Draws) -> tuple[str, str]:
    """One attempt's number and PIN ("" where the program has none), in the order
    issue_new_card draws them: drawing again from the same stream gives the same pair."""
    card = generate_card_number(program.prefix, program.card_length_max, program.luhn,
                                program.range_low, program.range_high, program.alphanumeric,
                                draw=draw)
    return card, generate_pin(program.pin_length, draw=draw) if program.pin_required else ""


def operator_activation(card: str | None, amount: int, face_value: int, operator: str, key: str,
                        channel: str) -> Request:
    """An operator's activation of a card it has just issued (Processor.operator_apply)."""
    return Request(op=Op.ACTIVATE_PREVALUED if face_value else Op.ACTIVATE, terminal=operator,
                   merchant=operator, card=card, amount=amount, key=key, channel=channel)


async def show_card(store: Store, card: str, program: Program | None = None) -> CardView | None:
    """The card's state; with its `program`, also its tier and what expires next."""
    return await show_card_id(store, card_id(card), card, program)


async def show_card_id(store: Store, cid: str, card: str,
                       program: Program | None = None) -> CardView | None:
    """show_card by the card's id, for a reader who has only the id (the member page of a
    holder signed in by e-mail: the back office keeps ids); `card` is what the view holds
    (the number, or its mask where the number is not known)."""
    raw = await store.command("HGETALL", state_key(cid))
    if not raw:
        return None
    st = {k.decode(): v.decode() for k, v in raw.items()}
    exp = st.get("exp", "0")
    view = CardView(
        card=card, program=st.get("prog", ""), kind=st.get("kind", ""),
        status=st.get("status", ""), balance=int(st.get("bal", 0)), points=int(st.get("pts", 0)),
        expiry=None if exp in ("", "0") else exp, face_value=int(st.get("face", 0)),
        pin_tries_failed=int(st.get("pinf", 0)),
    )
    if program is not None and program.tiers:
        view.tier = st.get("tier") or program.tiers[0].name
    lmin = int(st.get("lmin", 0))
    if program is not None and program.points_validity_days and lmin:
        view.points_expiry = loyalty.day_date(lmin + program.points_validity_days).isoformat()
        view.points_expiring = (await card_lots(store, cid, st)).get(lmin, 0)
    return view


async def card_lots(store: Store, cid: str,
                    state: dict[str, str] | None = None) -> dict[int, int]:
    """The card's points lots: program day earned -> points left (the open lot, kept in the
    state hash, included: gateway/ledger/lua/_lots.lua)."""
    if state is None:
        raw = await store.command("HMGET", state_key(cid), "ld", "ll")
        state = {"ld": (raw[0] or b"0").decode(), "ll": (raw[1] or b"0").decode()}
    flat = await store.command("HGETALL", lots_key(cid))
    lots = {int(k): int(v) for k, v in flat.items() if not k.startswith(b"e")}
    if int(state.get("ll", 0)):
        lots[int(state["ld"])] = lots.get(int(state["ld"]), 0) + int(state["ll"])
    return lots


async def unlock_card(store: Store, card: str) -> bool:
    """Operator unlock of a PIN-locked card; False when it was not locked."""
    cid = card_id(card)
    return bool(await store.run("unlock", [state_key(cid)], [_pack({"now": int(time.time())})]))


STATUS_CHANGES = ("suspended", "reinstate", "lost", "closed")


def operator_params(cid: str, key: str, op: str, term: str = OPERATOR,
                    **extra: object) -> dict[str, object]:
    """The `a` map of a card script an operator runs (no till, no stored response: norec).
    A named operator (`token:<id>` from the admin API) is the entry's `opid` too."""
    named = {"opid": term} if term != OPERATOR else {}
    return {"now": int(time.time()), "today": 0, "ch": cid, "term": term, "merch": OPERATOR,
            "key": key, "op": op, "norec": 1, "auth": "", "ttl": 1, **named, **extra}


def with_points_depth(store: Store, keys: list[str], params: dict[str, Any],
                      program: Program | None) -> None:
    """Give an operator's card script that may move points what the processor gives a till's
    (ScriptParams._with_loyalty, Processor._card_call): the lots, tiers and conversion fields
    of the card's `program` and the KEYS they touch. Without them the script treats the card
    as one of a program without lots: points given back would go into no lot (the card's points
    no longer the sum of its lots, and never expiring). None: a card of no known program."""
    if program is None or not loyalty.has_depth(program):
        return
    params.update(loyalty.depth_params(program, params["now"]))
    add_points_keys(keys, params, program.id, store.index_key)


async def set_card_status(store: Store, card: str, to: str,
                          operator: str = OPERATOR) -> dict[str, object]:
    """An operator's status change (gateway/ledger/lua/set_status.lua): the script's response map,
    rc 00 with `msg` "from -> to", 14 unknown card, 12 with `msg` when not allowed. `operator`
    is who asked (the journal entry's terminal: OPERATOR on the command line, the token's id
    over HTTP)."""
    return await set_card_status_id(store, card_id(card), to, operator)


async def set_card_status_id(store: Store, cid: str, to: str,
                             operator: str = OPERATOR) -> dict[str, object]:
    """set_card_status by the card's id (the member page's holders signed in by e-mail)."""
    if to not in STATUS_CHANGES:
        raise ValueError(f"status change {to!r}: one of {', '.join(STATUS_CHANGES)}")
    key = "status:" + secrets.token_hex(6)
    params = operator_params(cid, key, "status", term=operator, to=to)
    packed, _fresh = await store.run("set_status", card_keys(cid, key, key, store.feed_key),
                                     [_pack(params)])
    return msgpack.unpackb(packed)


async def rollback_last(store: Store, card: str, program: Program | None,
                        operator: str = OPERATOR) -> dict[str, object]:
    """Undo the card's most recent transaction with a compensating journal entry (with the card's
    `program`, its points lots and earned sums too: with_points_depth; None for a card of no
    known program). `operator` is who asked, as for set_card_status (the entry's terminal and
    opid).

    Returns the script's response map (rc 00, or 25 when there is nothing to roll back, 12 when
    the value was spent since).
    """
    cid = card_id(card)
    last = await store.command("HGET", state_key(cid), "last")
    last_key = last.decode() if last else ""
    keys = card_keys(cid, last_key or "-", last_key or "-", store.feed_key)
    params = operator_params(cid, "rollback:" + secrets.token_hex(6), "rollback",
                             term=operator, lastkey=last_key)
    rwk = await store.command("HGET", keys[3], "rwk") if last_key else None
    # a reward claim: its stock comes back too, in this call (on a cluster: just after)
    split = rewardsplit.undo_keys(store, keys, params,
                                  rewardkeys.keys_of(rwk.decode()) if rwk else None)
    with_points_depth(store, keys, params, program)
    packed, _fresh = await store.run("rollback", keys, [_pack(params)])
    res: dict[str, Any] = msgpack.unpackb(packed)
    if split:
        await rewardsplit.undone(store, res, "rollback", params, last_key, mask_card(card),
                                 rewardsplit.OPERATOR_MARK_TTL)
    return res


# In the state hash: "inactive" while the card's customer is (docs/ledger.md); else absent.
CUSTOMER_FIELD = "cust"


async def mark_customer_inactive(store: Store, cid: str, inactive: bool,
                                 operator: str = OPERATOR) -> bool | None:
    """Set (or clear) the mark that the customer holding card `cid` is inactive, which the gate
    answers 62 for (gateway/ledger/lua/set_holder.lua). True when it changed (journaled),
    False when it was so already, None for a card that is not in the store."""
    key = "cust:" + secrets.token_hex(6)
    params = operator_params(cid, key, "cust", term=operator,
                             cust="inactive" if inactive else "")
    packed, _fresh = await store.run("set_holder", card_keys(cid, key, key, store.feed_key),
                                     [_pack(params)])
    res = msgpack.unpackb(packed)
    if res["rc"] == "14":
        return None
    if res["rc"] != "00":
        raise RuntimeError(f"set_holder: {res}")
    return res["msg"] == "changed"


async def customer_marked_cards(store: Store) -> list[str]:
    """The ids of every card marked as held by an inactive customer (a SCAN of all cards, as
    the audit does, on every primary of a Redis Cluster)."""
    marked: list[str] = []
    async for keys in store.scan("{c:*}:s"):
        replies = [store.command("HGET", key, CUSTOMER_FIELD) for key in keys]
        for key, value in zip(keys, [await r for r in replies]):
            if value:
                marked.append(key.decode()[3:-3])  # {c:<id>}:s
    return marked

"""Which customer holds which card (SQL `card_holders`), and the mark an inactive customer
leaves on each of its cards in Redis, which the ledger's gate answers 62 for.

A card is linked by its number: the number is hashed to the card id (gateway/ledger/cards.py)
and SQL keeps only the id, the masked number and the program. The card must be in the store.
Linking never changes a balance. A card has at most one customer: linking a card another
customer holds is refused unless the caller says `move`.

The inactive mark lives in the card's state hash (field `cust`, set by set_holder.lua) so the
refusal is atomic with the till's operation. SQL is written first and Redis follows the commit
(`apply_marks` makes the marks of the given cards what SQL says). A crash between the two leaves
Redis behind SQL: a card of a customer just made inactive (or just linked to one) still
accepted, or a card of a customer just made active (or just unlinked) still answered 62, until
the same change is made again (every change re-applies the marks of all the customer's cards)
or `tillgate customers sync-status` runs (`sync_status`: every card SQL says is held by an
inactive customer marked, every other marked card found by a SCAN cleared).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.backoffice.customers import (
    Conflict,
    NotFound,
    customer_dict,
    find_customer,
    held_cards,
    iso,
    update_customer,
)
from gateway.backoffice.schema import card_holders, customers
from gateway.ledger.cards import (
    CUSTOMER_FIELD,
    card_id,
    customer_marked_cards,
    mark_customer_inactive,
    state_key,
)
from gateway.ledger.store import Store
from protocols.model import mask_card

IN_CHUNK = 500  # ids per SQL IN (...): well under every driver's limit on bound parameters
REDIS_CHUNK = 2000  # script calls in flight at once (the store pipelines them per turn)


@dataclass(slots=True)
class MarkReport:
    """What making Redis's marks follow SQL did."""

    cards: int = 0    # cards looked at
    marked: int = 0   # marked inactive now (journaled cust:inactive)
    cleared: int = 0  # mark taken off now (journaled cust:active)
    missing: int = 0  # held in SQL but not in the store (nothing to mark)

    def as_dict(self) -> dict[str, int]:
        return {"cards": self.cards, "marked": self.marked, "cleared": self.cleared,
                "missing": self.missing}


def chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


async def card_states(store: Store, cids: list[str]) -> dict[str, dict[str, Any]]:
    """The store's view of each card that exists: program, status, balance, points, mark."""
    found: dict[str, dict[str, Any]] = {}
    for part in chunks(cids, REDIS_CHUNK):
        replies = [store.command("HMGET", state_key(cid), "prog", "status", "bal", "pts",
                                 CUSTOMER_FIELD) for cid in part]
        for cid, reply in zip(part, [await r for r in replies]):
            prog, status, bal, pts, mark = (v.decode() if v else None for v in reply)
            if status is not None:
                found[cid] = {"program": prog, "status": status, "balance": int(bal or 0),
                              "points": int(pts or 0), "customer_inactive": mark == "inactive"}
    return found


async def inactive_holders(conn: AsyncConnection, cids: list[str]) -> set[str]:
    """Of `cids`, those SQL says are held by an inactive customer."""
    held: set[str] = set()
    for part in chunks(cids, IN_CHUNK):
        rows = await conn.execute(
            select(card_holders.c.card_id)
            .join(customers, customers.c.id == card_holders.c.customer_id)
            .where(card_holders.c.card_id.in_(part), customers.c.status == "inactive"))
        held.update(r.card_id for r in rows)
    return held


async def apply_marks(engine: AsyncEngine, store: Store, cids: list[str],
                      who: str) -> MarkReport:
    """Make each card's mark in Redis what SQL says now (read after the caller's commit):
    marked when its holder is inactive, cleared otherwise. Idempotent: a card already right
    costs one script call and journals nothing."""
    async with engine.connect() as conn:
        inactive = await inactive_holders(conn, cids)
    report = MarkReport(cards=len(cids))
    for part in chunks(cids, REDIS_CHUNK):
        changes = await asyncio.gather(*(mark_customer_inactive(store, cid, cid in inactive, who)
                                         for cid in part))
        for cid, changed in zip(part, changes):
            if changed is None:
                report.missing += 1
            elif changed:
                if cid in inactive:
                    report.marked += 1
                else:
                    report.cleared += 1
    return report


async def holder_of(conn: AsyncConnection, cid: str) -> Any:
    """The row (`code`) of the customer who holds the card with this id, or None."""
    return (await conn.execute(
        select(customers.c.code).join(card_holders,
                                      customers.c.id == card_holders.c.customer_id)
        .where(card_holders.c.card_id == cid))).first()


async def link_card(engine: AsyncEngine, store: Store, code: str, card: str, *,
                    move: bool = False, who: str, now: int | None = None) -> dict[str, Any]:
    """Register `card` to customer `code`. Conflict when another customer holds it (unless
    `move`); NotFound for an unknown customer or a card not in the store."""
    cid, mask = card_id(card), mask_card(card)
    state = (await card_states(store, [cid])).get(cid)
    if state is None:
        raise NotFound(f"card {mask}: not in the store (issue it first)")
    now = int(time.time()) if now is None else now
    async with engine.begin() as conn:
        customer = await find_customer(conn, code)
        holder = await holder_of(conn, cid)
        row = {"customer_id": customer.id, "card_mask": mask, "program": state["program"],
               "linked_t": now, "linked_by": who[:64]}
        if holder is None:
            await conn.execute(insert(card_holders).values(card_id=cid, **row))
        elif holder.code != code:
            if not move:
                raise Conflict(f"card {mask}: held by customer {holder.code!r}; to move it "
                               f"to {code!r}, ask for a move (--move, \"move\": true)")
            await conn.execute(update(card_holders).where(card_holders.c.card_id == cid)
                               .values(**row))
    await apply_marks(engine, store, [cid], who)
    return {"card": mask, "customer": code, "program": state["program"],
            "linked": holder is None or holder.code != code,
            "moved_from": holder.code if holder is not None and holder.code != code else None,
            "customer_inactive": customer.status == "inactive"}


async def unlink_card(engine: AsyncEngine, store: Store, code: str, card: str, *,
                      who: str) -> dict[str, Any]:
    """Take `card` from customer `code` (NotFound when that customer does not hold it); its
    inactive mark, if any, goes with it."""
    cid, mask = card_id(card), mask_card(card)
    async with engine.begin() as conn:
        customer = await find_customer(conn, code)
        gone = await conn.execute(delete(card_holders).where(
            card_holders.c.card_id == cid, card_holders.c.customer_id == customer.id))
        if gone.rowcount == 0:
            raise NotFound(f"card {mask}: not held by customer {code!r}")
    await apply_marks(engine, store, [cid], who)
    return {"card": mask, "customer": code, "unlinked": True}


async def change_customer(engine: AsyncEngine, store: Store, code: str, values: dict[str, Any],
                          *, who: str) -> dict[str, Any]:
    """Change a customer's fields; a status given (even unchanged) re-applies the marks of all
    its cards, so repeating a change repairs what a crash left half-done."""
    async with engine.begin() as conn:
        customer, after = await update_customer(conn, code, values)
        cids = [r.card_id for r in await held_cards(conn, customer.id)]
    before = customer.status
    marks = await apply_marks(engine, store, cids, who) if "status" in values else None
    view = await customer_view(engine, store, code)
    view["status_change"] = f"{before} -> {after}" if before != after else None
    view["marks"] = marks.as_dict() if marks else None
    return view


async def customer_view(engine: AsyncEngine, store: Store, code: str) -> dict[str, Any]:
    """A customer with its cards, each with its status, balance and points from the store."""
    async with engine.connect() as conn:
        row = await find_customer(conn, code)
        held = await held_cards(conn, row.id)
    states = await card_states(store, [h.card_id for h in held])
    view = customer_dict(row)
    view["cards"] = [{"card": h.card_mask, "program": h.program, "linked": iso(h.linked_t),
                      "linked_by": h.linked_by, **(states.get(h.card_id) or {"status": None})}
                     for h in held]
    return view


async def sync_status(engine: AsyncEngine, store: Store, *, who: str) -> MarkReport:
    """Make every mark in Redis what SQL says: the cards of inactive customers marked, every
    other marked card (found by a SCAN of the store) cleared. Repairs a crash between a
    change's SQL commit and its marks; safe to run at any time, as often as wanted."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(card_holders.c.card_id)
            .join(customers, customers.c.id == card_holders.c.customer_id)
            .where(customers.c.status == "inactive"))
        cids = [r.card_id for r in rows]
    known = set(cids)
    cids += [cid for cid in await customer_marked_cards(store) if cid not in known]
    return await apply_marks(engine, store, cids, who)

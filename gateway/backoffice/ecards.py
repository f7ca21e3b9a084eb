"""E-card orders and their delivery queue in the back office (table `ecards`, schema.py).

Plain queries, no policy: what an order is and when a try is due is gateway/issuance/ecards.py's
and ecardqueue.py's business. Every change of state is one statement whose WHERE names the
state it leaves, so a row moves once however many gateways share the database: the one whose
UPDATE counted the row owns the move.

States: queued (waiting for `next_t`, and `deliver_t`), sending (a try in progress, until
`lease_t`), sent, failed (permanent refusal or too many tries).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.backoffice.schema import ecards

STATES = ("queued", "sending", "sent", "failed")


@dataclass(frozen=True, slots=True)
class EcardRow:
    id: str
    client: str
    program: str
    amount: int
    load: str
    card_id: str
    card_mask: str
    recipient_name: str
    recipient_email: str
    sender_name: str
    message: str
    deliver_t: int
    due_t: int
    state: str
    next_t: int
    attempts: int
    sends: int
    last_error: str | None
    created_t: int
    sent_t: int | None
    lease_t: int | None = None
    card_sealed: str = field(default="", repr=False)
    pin_sealed: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, row: Any) -> EcardRow:
        return cls(**{name: getattr(row, name) for name in cls.__slots__})

    def as_dict(self) -> dict[str, object]:
        """For answers and pages: the card masked, nothing sealed."""
        return {"id": self.id, "program": self.program, "amount": self.amount,
                "load": self.load, "card": self.card_mask, "recipient_name": self.recipient_name,
                "recipient_email": self.recipient_email, "sender_name": self.sender_name,
                "message": self.message, "deliver_t": self.deliver_t, "state": self.state,
                "next_t": self.next_t, "attempts": self.attempts, "sends": self.sends,
                "last_error": self.last_error, "created_t": self.created_t,
                "sent_t": self.sent_t, "ordered_by": self.client}


async def add(engine: AsyncEngine, values: dict[str, Any]) -> tuple[EcardRow, bool]:
    """The order's row, inserted now (True) or found from an earlier call (False)."""
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(ecards).values(**values))
        created = True
    except IntegrityError:  # the same order asked again: its row is the answer
        created = False
    found = await get(engine, values["id"])
    assert found is not None
    return found, created


async def get(engine: AsyncEngine, order_id: str) -> EcardRow | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(ecards).where(ecards.c.id == order_id))).first()
    return None if row is None else EcardRow.of(row)


async def listing(engine: AsyncEngine, *, state: str | None = None, client: str | None = None,
                  limit: int = 50, offset: int = 0) -> tuple[list[EcardRow], int]:
    """Newest first, and how many there are in all."""
    where = []
    if state is not None:
        where.append(ecards.c.state == state)
    if client is not None:
        where.append(ecards.c.client == client)
    cond = and_(True, *where)
    async with engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(ecards).where(cond))
                 ).scalar_one()
        rows = (await conn.execute(select(ecards).where(cond)
                                   .order_by(ecards.c.created_t.desc(), ecards.c.id)
                                   .limit(limit).offset(offset))).all()
    return [EcardRow.of(r) for r in rows], int(total)


async def due(engine: AsyncEngine, now: int, limit: int) -> list[EcardRow]:
    """Queued rows whose time has come, oldest first."""
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(ecards).where(ecards.c.state == "queued", ecards.c.next_t <= now,
                                 ecards.c.deliver_t <= now)
            .order_by(ecards.c.next_t, ecards.c.id).limit(limit))).all()
    return [EcardRow.of(r) for r in rows]


async def claim(engine: AsyncEngine, order_id: str, now: int, lease_t: int) -> bool:
    """queued -> sending for one try, owned by the caller when True. The try is counted here,
    before the SMTP transaction, so a try cut short by a crash still counts."""
    async with engine.begin() as conn:
        res = await conn.execute(
            update(ecards).where(ecards.c.id == order_id, ecards.c.state == "queued",
                                 ecards.c.next_t <= now)
            .values(state="sending", lease_t=lease_t, attempts=ecards.c.attempts + 1))
    return res.rowcount == 1


async def sent(engine: AsyncEngine, order_id: str, now: int) -> bool:
    """sending -> sent, and the PIN dropped: it is in the recipient's hands now."""
    async with engine.begin() as conn:
        res = await conn.execute(
            update(ecards).where(ecards.c.id == order_id, ecards.c.state == "sending")
            .values(state="sent", sent_t=now, lease_t=None, pin_sealed=None, last_error=None,
                    sends=ecards.c.sends + 1))
    return res.rowcount == 1


async def retry_at(engine: AsyncEngine, order_id: str, next_t: int, error: str) -> bool:
    """sending -> queued again, not before `next_t`."""
    async with engine.begin() as conn:
        res = await conn.execute(
            update(ecards).where(ecards.c.id == order_id, ecards.c.state == "sending")
            .values(state="queued", next_t=next_t, lease_t=None, last_error=error))
    return res.rowcount == 1


async def failed(engine: AsyncEngine, order_id: str, error: str) -> bool:
    """sending -> failed: shown to the operators, who may resend."""
    async with engine.begin() as conn:
        res = await conn.execute(
            update(ecards).where(ecards.c.id == order_id, ecards.c.state == "sending")
            .values(state="failed", lease_t=None, last_error=error))
    return res.rowcount == 1


async def release_stale(engine: AsyncEngine, now: int) -> int:
    """Tries whose lease ran out (the gateway that began them stopped mid-send) go back to the
    queue, due now. How many."""
    async with engine.begin() as conn:
        res = await conn.execute(
            update(ecards).where(ecards.c.state == "sending", ecards.c.lease_t < now)
            .values(state="queued", next_t=now, lease_t=None,
                    last_error="a try was cut short (the gateway stopped); trying again"))
    return int(res.rowcount or 0)


async def resend(engine: AsyncEngine, order_id: str, now: int) -> bool:
    """A sent or failed e-card queued again, due now (how late it is counts from now), with
    its tries counted afresh; False when it is queued or sending already (nothing to do) or
    unknown."""
    async with engine.begin() as conn:
        res = await conn.execute(
            update(ecards).where(ecards.c.id == order_id,
                                 or_(ecards.c.state == "sent", ecards.c.state == "failed"))
            .values(state="queued", next_t=now, due_t=now, attempts=0, last_error=None))
    return res.rowcount == 1


async def counts(engine: AsyncEngine, now: int) -> tuple[dict[str, int], int | None]:
    """Rows per state, and when the oldest e-mail that is due and not sent was due (None: none
    is): how late the queue is, whether its tries fail or none is made."""
    async with engine.connect() as conn:
        per_state: dict[str, int] = dict((await conn.execute(
            select(ecards.c.state, func.count()).group_by(ecards.c.state))).all())
        oldest = (await conn.execute(
            select(func.min(ecards.c.due_t)).where(
                or_(ecards.c.state == "queued", ecards.c.state == "sending"),
                ecards.c.due_t <= now))).scalar_one()
    return {s: int(per_state.get(s, 0)) for s in STATES}, oldest

"""Operator accounts in the back office (table `operators`, schema.py): the people of the web
portal (gateway/web/portal) and of `tillgate users`. Plain queries, no policy: who may log in,
with which password and code, is the portal's business (gateway/web/portal/auth.py).

E-mail addresses are the login name, kept lower case and stripped, so `Ann@Example.com` and
`ann@example.com` are one account. Secrets never leave this module in the clear by accident:
`Operator.__repr__` shows no hash and no TOTP secret.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.backoffice.people import (
    ROLES,
    SECOND_FACTORS,
    STATUSES,
    normal_email,
    role_problem,
)
from gateway.backoffice.schema import operators

__all__ = ["ROLES", "SECOND_FACTORS", "STATUSES", "Operator", "OperatorExists", "normal_email",
           "role_problem"]


class OperatorExists(ValueError):
    """An operator with this e-mail address exists already."""


@dataclass(frozen=True, slots=True)
class Operator:
    id: int
    email: str
    display_name: str
    role: str
    merchant: str | None
    status: str
    second_factor: str
    session_gen: int
    created_t: int
    last_login_t: int | None
    clubs: frozenset[str] = frozenset()  # [clubs.<name>] of the config they belong to
    password_hash: str | None = field(default=None, repr=False)
    totp_secret: str | None = field(default=None, repr=False)  # encrypted (security/secretbox.py)

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def totp_enrolled(self) -> bool:
        return self.totp_secret is not None

    @classmethod
    def from_row(cls, row: Any) -> Operator:
        m = row._mapping
        return cls(id=m["id"], email=m["email"], display_name=m["display_name"], role=m["role"],
                   merchant=m["merchant"], status=m["status"],
                   second_factor=m["second_factor"], session_gen=m["session_gen"],
                   created_t=m["created_t"], last_login_t=m["last_login_t"],
                   clubs=frozenset((m["clubs"] or "").split()),
                   password_hash=m["password_hash"], totp_secret=m["totp_secret"])


async def add_operator(engine: AsyncEngine, email: str, display_name: str, role: str,
                       merchant: str | None = None, second_factor: str = "totp",
                       password_hash: str | None = None) -> Operator:
    problem = role_problem(role, merchant)
    if problem:
        raise ValueError(problem)
    if second_factor not in SECOND_FACTORS:
        raise ValueError(f"second factor: one of {', '.join(SECOND_FACTORS)}")
    now = int(time.time())
    values = {"email": normal_email(email), "display_name": display_name.strip(), "role": role,
              "merchant": merchant or None, "second_factor": second_factor,
              "password_hash": password_hash, "password_t": now if password_hash else None,
              "status": "active", "session_gen": 0, "created_t": now}
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(operators).values(**values))
    except IntegrityError:
        raise OperatorExists(f"an operator with the e-mail {values['email']} exists") from None
    found = await by_email(engine, email)
    assert found is not None
    return found


async def by_email(engine: AsyncEngine, email: str) -> Operator | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(operators).where(
            operators.c.email == normal_email(email)))).first()
    return Operator.from_row(row) if row is not None else None


async def by_id(engine: AsyncEngine, operator_id: int) -> Operator | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(operators).where(
            operators.c.id == operator_id))).first()
    return Operator.from_row(row) if row is not None else None


async def all_operators(engine: AsyncEngine, merchant: str | None = None,
                        role: str | None = None, after: int = 0,
                        limit: int | None = None) -> list[Operator]:
    """Every operator, or those of one merchant and/or one role, by id; a page of them with
    `limit`, from the first id past `after` (keyset paging: each page costs the same)."""
    query = select(operators).where(operators.c.id > after).order_by(operators.c.id)
    if limit is not None:
        query = query.limit(limit)
    if merchant is not None:
        query = query.where(operators.c.merchant == merchant)
    if role is not None:
        query = query.where(operators.c.role == role)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [Operator.from_row(r) for r in rows]


async def count_operators(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(operators))).scalar_one())


async def _update(engine: AsyncEngine, operator_id: int, **values: Any) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(
            update(operators).where(operators.c.id == operator_id).values(**values))
    return bool(result.rowcount)


async def set_status(engine: AsyncEngine, operator_id: int, status: str) -> bool:
    """Enable or disable; disabling also ends every session (a new generation)."""
    if status not in STATUSES:
        raise ValueError(f"status: one of {', '.join(STATUSES)}")
    return await _update(engine, operator_id, status=status,
                         session_gen=operators.c.session_gen + 1)


async def set_password_hash(engine: AsyncEngine, operator_id: int, password_hash: str | None,
                            end_sessions: bool = True) -> bool:
    """A new password (None: none until the operator sets one through a link). Ends the other
    sessions unless told not (the portal's own change keeps the session that made it)."""
    values: dict[str, Any] = {"password_hash": password_hash,
                              "password_t": int(time.time()) if password_hash else None}
    if end_sessions:
        values["session_gen"] = operators.c.session_gen + 1
    return await _update(engine, operator_id, **values)


async def set_role(engine: AsyncEngine, operator_id: int, role: str,
                   merchant: str | None, keep_clubs: bool = False) -> bool:
    """A new role (and merchant). The gate reads the role at every request, so it applies at
    once without ending sessions. Clubs are chosen within a merchant, so they are emptied
    unless `keep_clubs` (the caller keeps them when the merchant stays the same)."""
    problem = role_problem(role, merchant)
    if problem:
        raise ValueError(problem)
    values: dict[str, Any] = {"role": role, "merchant": merchant or None}
    if not keep_clubs:
        values["clubs"] = ""
    return await _update(engine, operator_id, **values)


async def set_clubs(engine: AsyncEngine, operator_id: int, clubs: frozenset[str] | set[str]
                    ) -> bool:
    """The clubs an operator belongs to (names of the config's [clubs]); checked against the
    config by the caller. Applies at their next request."""
    return await _update(engine, operator_id, clubs=" ".join(sorted(clubs)))


async def set_second_factor(engine: AsyncEngine, operator_id: int, choice: str) -> bool:
    if choice not in SECOND_FACTORS:
        raise ValueError(f"second factor: one of {', '.join(SECOND_FACTORS)}")
    return await _update(engine, operator_id, second_factor=choice)


async def set_totp_secret(engine: AsyncEngine, operator_id: int, encrypted: str | None,
                          step: int | None = None) -> bool:
    """Enrol (an encrypted secret and the step of the code that confirmed it) or reset (None:
    the operator enrols again at the next login; every session ends)."""
    values: dict[str, Any] = {"totp_secret": encrypted, "totp_last_step": step}
    if encrypted is None:
        values["session_gen"] = operators.c.session_gen + 1
    return await _update(engine, operator_id, **values)


async def use_totp_step(engine: AsyncEngine, operator_id: int, step: int) -> bool:
    """Take a TOTP code of time step `step`: True only if no code of this or a later step was
    taken before. One conditional UPDATE, so two requests racing with one code get one yes."""
    async with engine.begin() as conn:
        result = await conn.execute(
            update(operators)
            .where(operators.c.id == operator_id)
            .where((operators.c.totp_last_step.is_(None)) | (operators.c.totp_last_step < step))
            .values(totp_last_step=step))
    return bool(result.rowcount)


async def logged_in(engine: AsyncEngine, operator_id: int, when: int) -> None:
    await _update(engine, operator_id, last_login_t=when)


async def end_sessions(engine: AsyncEngine, operator_id: int) -> int:
    """Logout everywhere: a new generation; returns it."""
    async with engine.begin() as conn:
        await conn.execute(update(operators).where(operators.c.id == operator_id)
                           .values(session_gen=operators.c.session_gen + 1))
        gen = (await conn.execute(select(operators.c.session_gen)
                                  .where(operators.c.id == operator_id))).scalar_one()
    return int(gen)

"""Customer records and customer types in SQL: what a customer is made of, how each field is
checked, and the queries that add, find, list and change them (docs/backoffice.md, "Customers").

Only SQL here. Which cards a customer holds, and the mark an inactive customer leaves on its
cards in Redis, are gateway/backoffice/links.py; CSV files are gateway/backoffice/customercsv.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.backoffice.schema import card_holders, card_merchants, customer_types, customers

STATUSES = ("active", "inactive")
# What a customer is given as (the admin API's JSON, a CSV row, the command line's options).
FIELDS = ("code", "name", "email", "phone", "type", "status", "consent", "notes")
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
# An address people can write to: one @, a domain of dot-separated labels with a top level,
# no spaces or list separators (a CSV cell holding two addresses is refused, not half-taken).
EMAIL = re.compile(r"^[^@\s,;<>\"()\[\]]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                   r"[A-Za-z]{2,63}$")
PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{2,31}$")
TYPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
MAX_NAME, MAX_NOTES, MAX_DESCRIPTION = 200, 4000, 500
LIST_LIMIT = 1000  # most customers one page lists


class CustomerError(Exception):
    """A request about customers that cannot be done; `status` is its HTTP answer."""

    status = 400


class NotFound(CustomerError):
    status = 404


class Conflict(CustomerError):
    status = 409


def iso(t: int | None) -> str | None:
    """Epoch seconds as the journal's readers show them: UTC, to the second, with a Z."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: object, field: str, problems: list[str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(f"{field}: must be a string")
        return None
    value = value.strip()
    if any(ord(c) < 32 for c in value) and field != "notes":
        problems.append(f"{field}: has a control character")
        return None
    return value


def check_fields(raw: Mapping[str, object], *, creating: bool) -> tuple[dict[str, Any],
                                                                           list[str]]:
    """The customer's fields checked: (clean values, problems as "field: why"). Creating
    needs code and name; a change gives only what changes. An empty e-mail, phone or type
    clears it. `type` stays a name here (type_ids turns it into the row's id)."""
    problems = [f"{name}: unknown field (fields: {', '.join(FIELDS)})"
                for name in raw if name not in FIELDS]
    values: dict[str, Any] = {}
    for field in ("code", "name", "email", "phone", "type", "status", "notes"):
        if field in raw:
            text = _text(raw[field], field, problems)
            if text is not None:
                values[field] = text
    if not creating and "code" in raw:
        problems.append("code: cannot be changed (it is the customer's key)")
    if creating:
        for field in ("code", "name"):
            if not values.get(field) and not any(p.startswith(field + ":") for p in problems):
                problems.append(f"{field}: required")
    code = values.get("code")
    if code and not CODE.match(code):
        problems.append(f"code: {code!r} is not 1 to 32 letters, digits, '.', '_' or '-' "
                        "(starting with a letter or digit)")
    if "name" in values and not values["name"] and not creating:
        problems.append("name: cannot be empty")
    if len(values.get("name", "")) > MAX_NAME:
        problems.append(f"name: longer than {MAX_NAME} characters")
    if values.get("email"):
        email = values["email"]
        if len(email) > 254 or not EMAIL.match(email):
            problems.append(f"email: {email!r} is not an e-mail address")
        # kept in lower case, so that finding a customer by address is one indexed equality
        # on every database (mail systems do not tell Ada@ from ada@ in practice)
        values["email"] = email.lower()
    if values.get("phone") and not PHONE.match(values["phone"]):
        problems.append(f"phone: {values['phone']!r} is not a phone number (digits, spaces, "
                        "+ ( ) . / -)")
    if "status" in values and values["status"] not in STATUSES:
        problems.append(f"status: must be active or inactive (got {values['status']!r})")
    if len(values.get("notes", "")) > MAX_NOTES:
        problems.append(f"notes: longer than {MAX_NOTES} characters")
    if "consent" in raw:
        if isinstance(raw["consent"], bool):
            values["consent"] = raw["consent"]
        else:
            problems.append("consent: must be true or false")
    for field in ("email", "phone", "type"):
        if values.get(field) == "":
            values[field] = None
    return values, problems


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    """What a listing keeps: every field given must match (code by its prefix; `search` is
    found in the name, e-mail or phone, whatever the case; `card_id`: the holder of that card,
    by its key id; `merchant`: holders of a card with an entry at that merchant, the customers
    of a merchant manager, as the reports scope one: summaries.py's card_merchants)."""

    status: str | None = None
    type: str | None = None
    email: str | None = None
    code_prefix: str | None = None
    search: str | None = None
    card_id: str | None = None
    merchant: str | None = None

    def conditions(self) -> list[Any]:
        """The WHERE conditions, over customers joined with customer_types."""
        found: list[Any] = []
        if self.status:
            found.append(customers.c.status == self.status)
        if self.type:
            found.append(customer_types.c.name == self.type)
        if self.email:
            found.append(customers.c.email == self.email.strip().lower())
        if self.code_prefix:
            # substr, not LIKE: no wildcard to escape, and case-sensitive on SQLite too
            found.append(func.substr(customers.c.code, 1, len(self.code_prefix))
                         == self.code_prefix)
        if self.search:
            term = self.search.strip().lower()
            found.append(or_(*(func.lower(column).contains(term, autoescape=True)
                               for column in (customers.c.name, customers.c.email,
                                              customers.c.phone))))
        # IN (a subquery from the card's side), not EXISTS per customer: the database looks
        # the few holders up by their keys instead of probing every customer
        if self.card_id:
            found.append(customers.c.id.in_(select(card_holders.c.customer_id).where(
                card_holders.c.card_id == self.card_id)))
        if self.merchant:
            found.append(customers.c.id.in_(
                select(card_holders.c.customer_id)
                .join(card_merchants, card_merchants.c.card_id == card_holders.c.card_id)
                .where(card_merchants.c.merchant == self.merchant)))
        return found

    def problems(self) -> list[str]:
        if self.status is not None and self.status not in STATUSES:
            return [f"status: must be active or inactive (got {self.status!r})"]
        return []


async def type_ids(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(select(customer_types.c.name, customer_types.c.id))
    return {name: tid for name, tid in rows}


async def resolve_type(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """Turn values' type name into customer_type_id (in place); NotFound names the types."""
    if "type" not in values:
        return
    name = values.pop("type")
    if name is None:
        values["customer_type_id"] = None
        return
    ids = await type_ids(conn)
    if name not in ids:
        raise NotFound(f"type: no customer type {name!r} (have: {', '.join(sorted(ids)) or 'none'}"
                       "; add one with `tillgate customers types add`)")
    values["customer_type_id"] = ids[name]


async def add_customer(conn: AsyncConnection, values: dict[str, Any],
                       now: int | None = None) -> int:
    """Insert a customer from check_fields' values; Conflict when the code is taken."""
    now = int(time.time()) if now is None else now
    row = dict(values)
    await resolve_type(conn, row)
    row.setdefault("status", "active")
    row["consent"] = bool(row.get("consent", False))
    row["consent_t"] = now if row["consent"] else None
    row.setdefault("notes", "")
    row["created_t"] = now
    if await customer_id(conn, row["code"]) is not None:
        raise Conflict(f"code: customer {row['code']!r} exists")
    try:
        result = await conn.execute(insert(customers).values(**row))
    except IntegrityError as e:  # taken between our look and the insert
        raise Conflict(f"code: customer {row['code']!r} exists") from e
    key = result.inserted_primary_key
    assert key is not None, "an insert of one row has its key"
    return int(key[0])


async def customer_id(conn: AsyncConnection, code: str) -> int | None:
    return await conn.scalar(select(customers.c.id).where(customers.c.code == code))


def _customer_columns():
    return (customers.c.id, customers.c.code, customers.c.name, customers.c.email,
            customers.c.phone, customer_types.c.name.label("type"), customers.c.status,
            customers.c.consent, customers.c.consent_t, customers.c.notes,
            customers.c.created_t)


def _joined():
    return customers.outerjoin(customer_types,
                               customers.c.customer_type_id == customer_types.c.id)


def customer_dict(row: Any) -> dict[str, Any]:
    """A customer as the API and `--json` show it."""
    return {"code": row.code, "name": row.name, "email": row.email, "phone": row.phone,
            "type": row.type, "status": row.status, "consent": bool(row.consent),
            "consent_time": iso(row.consent_t), "notes": row.notes,
            "created": iso(row.created_t)}


async def find_customer(conn: AsyncConnection, code: str) -> Any:
    """The customer's row (with its type's name); NotFound when there is none."""
    row = (await conn.execute(select(*_customer_columns()).select_from(_joined())
                              .where(customers.c.code == code))).first()
    if row is None:
        raise NotFound(f"no customer {code!r}")
    return row


async def list_customers(conn: AsyncConnection, keep: CustomerFilter, limit: int = 50,
                         offset: int = 0, after: str | None = None
                         ) -> tuple[list[dict[str, Any]], int]:
    """One page of customers in code order, with how many match in all. `after`: the page
    that follows the customer of that code (keyset paging: as quick at the ten-thousandth
    customer as at the first, where an OFFSET reads all those before)."""
    query = select(*_customer_columns()).select_from(_joined())
    if after is not None:
        query = query.where(customers.c.code > after)
    # the join to the types only where the filter names one: a count of 10,000 customers
    # then reads one index, not the join
    counted = select(func.count()).select_from(_joined() if keep.type else customers)
    conditions = []
    conditions += keep.conditions()
    for condition in conditions:
        query = query.where(condition)
        counted = counted.where(condition)
    found = [customer_dict(r) for r in await conn.execute(
        query.order_by(customers.c.code).limit(limit).offset(offset))]
    if len(found) < limit and not offset and after is None:
        return found, len(found)  # all there are: no second pass to count them
    total = await conn.scalar(counted)
    return found, int(total or 0)


async def update_customer(conn: AsyncConnection, code: str, values: dict[str, Any],
                          now: int | None = None) -> tuple[Any, str]:
    """Change the fields given; consent's time moves when consent changes. Returns the
    customer's row as it was, and its status now."""
    now = int(time.time()) if now is None else now
    row = await find_customer(conn, code)
    change = dict(values)
    await resolve_type(conn, change)
    if "consent" in change and bool(change["consent"]) != bool(row.consent):
        change["consent_t"] = now
    if change:
        await conn.execute(update(customers).where(customers.c.id == row.id).values(**change))
    return row, change.get("status", row.status)


async def held_cards(conn: AsyncConnection, customer: int) -> list[Any]:
    """The cards a customer holds: (card_id, card_mask, program, linked_t, linked_by)."""
    rows = await conn.execute(
        select(card_holders.c.card_id, card_holders.c.card_mask, card_holders.c.program,
               card_holders.c.linked_t, card_holders.c.linked_by)
        .where(card_holders.c.customer_id == customer).order_by(card_holders.c.linked_t,
                                                                 card_holders.c.card_mask))
    return list(rows)


# Customer types


def check_type(raw: Mapping[str, object], programs: Collection[str]
               ) -> tuple[dict[str, Any], list[str]]:
    """A customer type's fields checked; its default program must be one of `programs`."""
    fields = ("name", "default_program", "description")
    problems = [f"{name}: unknown field (fields: {', '.join(fields)})"
                for name in raw if name not in fields]
    values: dict[str, Any] = {}
    for field in fields:
        text = _text(raw.get(field), field, problems)
        if text:
            values[field] = text
    name = values.get("name")
    if not name:
        problems.append("name: required")
    elif not TYPE_NAME.match(name):
        problems.append(f"name: {name!r} is not 1 to 64 letters, digits, spaces, '.', '_' "
                        "or '-'")
    program = values.get("default_program")
    if program is not None and program not in programs:
        problems.append(f"default_program: no program {program!r} (have: "
                        f"{', '.join(programs)})")
    if len(values.get("description", "")) > MAX_DESCRIPTION:
        problems.append(f"description: longer than {MAX_DESCRIPTION} characters")
    return values, problems


async def add_type(conn: AsyncConnection, values: dict[str, Any]) -> None:
    if values["name"] in await type_ids(conn):
        raise Conflict(f"name: customer type {values['name']!r} exists")
    try:
        await conn.execute(insert(customer_types).values(**values))
    except IntegrityError as e:
        raise Conflict(f"name: customer type {values['name']!r} exists") from e


async def list_types(conn: AsyncConnection) -> list[dict[str, Any]]:
    count = (select(customers.c.customer_type_id, func.count().label("n"))
             .group_by(customers.c.customer_type_id).subquery())
    rows = await conn.execute(
        select(customer_types.c.name, customer_types.c.default_program,
               customer_types.c.description, func.coalesce(count.c.n, 0).label("customers"))
        .select_from(customer_types.outerjoin(count,
                                              count.c.customer_type_id == customer_types.c.id))
        .order_by(customer_types.c.name))
    return [{"name": r.name, "default_program": r.default_program,
             "description": r.description, "customers": int(r.customers)} for r in rows]

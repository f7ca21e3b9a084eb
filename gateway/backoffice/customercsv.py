"""Customers to and from CSV: import with card links, all or nothing; export with their cards.

The file: a header row, then one row per customer (docs/backoffice.md, "Import and export"):

    code,name,email,phone,type,status,consent,notes,cards
    C-0001,Ada Lovelace,ada@example.org,+44 20 7946 0000,gold,active,yes,,6039530000000000018

`code` and `name` are required; a code the back office has already is that customer updated
with the row's columns. `cards`: the whole numbers of the cards the customer holds, separated by
spaces (several per customer); a masked number (as an export writes it) names a card the
customer already holds and changes nothing. `created` and `consent_time` (written by an export)
are set by the back office and ignored on import, so an export can be edited and imported back.

Every row is checked first (fields, card numbers, cards in the store, cards held by another
customer, types, codes or cards given twice). Any problem: every one is reported by line number
and nothing is written. Otherwise the whole file is one SQL transaction, and only after its
commit are the cards of the file's inactive customers marked in Redis (links.apply_marks; a
crash there is repaired by `customers sync-status`).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from sqlalchemy import bindparam, case, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.backoffice.customers import CustomerFilter, check_fields, iso, type_ids
from gateway.backoffice.links import IN_CHUNK, MarkReport, apply_marks, card_states, chunks
from gateway.backoffice.schema import card_holders, customer_types, customers
from gateway.config.model import Config
from gateway.issuance.importfile import ImportFileError, column_problems, csv_with_header
from gateway.ledger.cards import card_id
from gateway.ledger.store import Store
from protocols.model import mask_card

COLUMNS = ("code", "name", "email", "phone", "type", "status", "consent", "notes", "cards",
           "created", "consent_time")
SET_BY_US = ("created", "consent_time")  # exported, ignored on import
YES, NO = ("yes", "true", "1", "y"), ("no", "false", "0", "n", "")
MAX_PROBLEMS = 100  # listed; beyond that a count (a wrong file has a problem on every line)


class CustomerImportError(Exception):
    """A file refused as a whole: every problem, by line number."""

    def __init__(self, problems: list[str]):
        super().__init__(f"{len(problems)} problem(s); nothing was imported")
        self.problems = problems

    def shown(self) -> list[str]:
        more = len(self.problems) - MAX_PROBLEMS
        return self.problems[:MAX_PROBLEMS] + ([f"... and {more} more"] if more > 0 else [])


@dataclass(slots=True)
class Row:
    line: int
    values: dict[str, Any]
    cards: list[str] = field(default_factory=list)   # whole numbers, to link
    masked: list[str] = field(default_factory=list)  # masks of cards it must hold already


@dataclass(slots=True)
class ImportSummary:
    rows: int = 0
    added: int = 0
    updated: int = 0
    linked: int = 0
    moved: int = 0
    marks: MarkReport = field(default_factory=MarkReport)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "added": self.added, "updated": self.updated,
                "linked": self.linked, "moved": self.moved, "marks": self.marks.as_dict()}


def parse(data: bytes, config: Config) -> tuple[list[Row], list[str]]:
    """The file's rows, checked on their own (no store, no SQL), and its problems."""
    try:
        reader, header = csv_with_header(data)
    except ImportFileError as e:
        return [], list(e.problems)
    if not header:
        return [], ["line 1: the header row is missing (code,name,...,cards)"]
    problems = column_problems(header, COLUMNS)
    problems += [f"line 1: no {name} column" for name in ("code", "name") if name not in header]
    if problems:
        return [], problems
    rows: list[Row] = []
    first_line: dict[str, int] = {}
    card_line: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            problems.append(f"line {line}: {len(cells)} fields, the header has {len(header)}")
            continue
        cell = dict(zip(header, cells))
        raw: dict[str, object] = {name: cell[name] for name in header
                                  if name not in SET_BY_US and name not in ("consent", "cards")}
        mine: list[str] = []
        consent = cell.get("consent")
        if consent is not None:
            if consent.strip().lower() in YES:
                raw["consent"] = True
            elif consent.strip().lower() in NO:
                raw["consent"] = False
            else:
                mine.append(f"consent: {consent!r} is not yes or no")
        for name in ("status", "notes"):
            if raw.get(name) == "":
                del raw[name]  # an empty cell keeps the default (or what the customer has)
        values, found = check_fields(raw, creating=True)
        mine += found
        row = Row(line, values)
        code = values.get("code")
        if code and code in first_line:
            mine.append(f"code: {code!r} is on line {first_line[code]} too")
        elif code:
            first_line[code] = line
        for card in cell.get("cards", "").split():
            if "*" in card:
                row.masked.append(card)
            elif config.program_of_card(card) is None:
                mine.append(f"cards: {mask_card(card)} is not a card number of any program")
            elif card in card_line:
                mine.append(f"cards: {mask_card(card)} is on line {card_line[card]} too")
            else:
                card_line[card] = line
                row.cards.append(card)
        problems += [f"line {line}: {p}" for p in mine]
        rows.append(row)
    if not rows and not problems:
        problems.append("the file has a header and no customers")
    return rows, problems


async def import_customers(engine: AsyncEngine, store: Store, config: Config, data: bytes, *,
                           move: bool = False, who: str,
                           now: int | None = None) -> ImportSummary:
    """Import a file (module doc); CustomerImportError with every problem, nothing written."""
    now = int(time.time()) if now is None else now
    rows, problems = parse(data, config)
    if not rows:
        raise CustomerImportError(problems)
    # Rows with problems of their own are still checked against the store and SQL, so that
    # one refusal lists every problem of the file.
    by_cid = {card_id(card): (row, card) for row in rows for card in row.cards}
    states = await card_states(store, list(by_cid))
    for cid, (row, card) in by_cid.items():
        if cid not in states:
            problems.append(f"line {row.line}: cards: {mask_card(card)} is not in the store")
    summary = ImportSummary(rows=len(rows))
    async with engine.begin() as conn:
        plan = await _plan(conn, rows, by_cid, move, problems)
        if problems:
            raise CustomerImportError(sorted(problems, key=_line_of))
        ids = await _write_customers(conn, rows, plan, now, summary)
        links = []
        for cid, (row, card) in by_cid.items():
            holder = plan.holders.get(cid)
            if holder == row.values["code"]:
                continue  # held already
            summary.moved += holder is not None
            links.append({"card_id": cid, "customer_id": ids[row.values["code"]],
                          "card_mask": mask_card(card), "program": states[cid]["program"],
                          "linked_t": now, "linked_by": who[:64]})
        moved = [link["card_id"] for link in links if link["card_id"] in plan.holders]
        for part in chunks(moved, IN_CHUNK):
            await conn.execute(delete(card_holders).where(card_holders.c.card_id.in_(part)))
        if links:
            await conn.execute(insert(card_holders), links)
        summary.linked = len(links)
        # After the commit, Redis: every card of the file's inactive customers, and the cards
        # that may carry a mark no longer due (customers made active, cards moved here).
        inactive = {code for code, (_id, status) in plan.existing.items()
                    if status == "inactive"}  # before the file: their marks may be lifted
        inactive.update(row.values["code"] for row in rows
                        if row.values.get("status") == "inactive")
        to_check = set(moved)
        to_check.update(await _cards_of(conn, [ids[code] for code in inactive]))
    summary.marks = await apply_marks(engine, store, sorted(to_check), who)
    return summary


@dataclass(slots=True)
class _Plan:
    existing: dict[str, tuple[int, str]]  # code -> (id, status) of customers already there
    holders: dict[str, str]               # card id -> code of the customer holding it now
    types: dict[str, int]


async def _plan(conn: AsyncConnection, rows: list[Row], by_cid: dict[str, tuple[Row, str]],
                move: bool, problems: list[str]) -> _Plan:
    """What SQL has already, and the problems that only SQL can tell."""
    rows = [row for row in rows if "code" in row.values]
    codes = [row.values["code"] for row in rows]
    existing: dict[str, tuple[int, str]] = {}
    for part in chunks(codes, IN_CHUNK):
        result = await conn.execute(select(customers.c.code, customers.c.id, customers.c.status)
                                    .where(customers.c.code.in_(part)))
        existing.update({r.code: (r.id, r.status) for r in result})
    holders: dict[str, str] = {}
    for part in chunks(list(by_cid), IN_CHUNK):
        result = await conn.execute(
            select(card_holders.c.card_id, customers.c.code)
            .join(customers, customers.c.id == card_holders.c.customer_id)
            .where(card_holders.c.card_id.in_(part)))
        holders.update({r.card_id: r.code for r in result})
    types = await type_ids(conn)
    masks = await _masks_held(conn, [existing[r.values["code"]][0] for r in rows
                                     if r.masked and r.values["code"] in existing])
    for row in rows:
        code = row.values["code"]
        name = row.values.get("type")
        if name and name not in types:
            problems.append(f"line {row.line}: type: no customer type {name!r}")
        held = masks.get(existing[code][0], set()) if code in existing else set()
        for mask in row.masked:
            if mask not in held:
                problems.append(f"line {row.line}: cards: {mask} is masked and {code!r} does "
                                "not hold it; give the whole number to link a card")
    if not move:
        for cid, (row, card) in by_cid.items():
            holder = holders.get(cid)
            if holder is not None and holder != row.values.get("code"):
                problems.append(f"line {row.line}: cards: {mask_card(card)} is held by "
                                f"customer {holder!r} (import with move to move it)")
    return _Plan(existing, holders, types)


async def _masks_held(conn: AsyncConnection, ids: list[int]) -> dict[int, set[str]]:
    held: dict[int, set[str]] = {}
    for part in chunks(ids, IN_CHUNK):
        result = await conn.execute(select(card_holders.c.customer_id, card_holders.c.card_mask)
                                    .where(card_holders.c.customer_id.in_(part)))
        for r in result:
            held.setdefault(r.customer_id, set()).add(r.card_mask)
    return held


async def _cards_of(conn: AsyncConnection, ids: list[int]) -> list[str]:
    found: list[str] = []
    for part in chunks(ids, IN_CHUNK):
        result = await conn.execute(select(card_holders.c.card_id)
                                    .where(card_holders.c.customer_id.in_(part)))
        found += [r.card_id for r in result]
    return found


async def _write_customers(conn: AsyncConnection, rows: list[Row], plan: _Plan, now: int,
                           summary: ImportSummary) -> dict[str, int]:
    """Insert the new customers and update the known ones; code -> id of every row's."""
    new: list[dict[str, Any]] = []
    changes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        values = dict(row.values)
        if "type" in values:
            name = values.pop("type")
            values["customer_type_id"] = plan.types[name] if name else None
        code = values["code"]
        if code in plan.existing:
            # consent_t moves only where consent changes: set it in SQL, comparing there
            values["_id"] = plan.existing[code][0]
            changes.setdefault(tuple(sorted(values)), []).append(values)
        else:
            values.setdefault("status", "active")
            values.setdefault("notes", "")
            values["consent"] = bool(values.get("consent", False))
            values["consent_t"] = now if values["consent"] else None
            values["created_t"] = now
            new.append(values)
    for chunk in _same_keys(new):
        await conn.execute(insert(customers), chunk)
    summary.added = len(new)
    for keys, group in changes.items():
        await _update_group(conn, keys, group, now)
        summary.updated += len(group)
    ids = {code: cid for code, (cid, _status) in plan.existing.items()}
    added = [v["code"] for v in new]
    for part in chunks(added, IN_CHUNK):
        result = await conn.execute(select(customers.c.code, customers.c.id)
                                    .where(customers.c.code.in_(part)))
        ids.update({r.code: r.id for r in result})
    return ids


def _same_keys(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """executemany needs every row with the same keys: group them so."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())


async def _update_group(conn: AsyncConnection, keys: Sequence[str],
                        group: list[dict[str, Any]], now: int) -> None:
    columns = [k for k in keys if k != "_id"]
    if not columns:
        return
    values: dict[str, Any] = {k: bindparam("v_" + k) for k in columns}
    if "consent" in columns:
        # when the consent changes, its time is now; else it keeps its time
        values["consent_t"] = case((customers.c.consent != bindparam("v_consent"), now),
                                   else_=customers.c.consent_t)
    statement = update(customers).where(customers.c.id == bindparam("v__id")).values(values)
    await conn.execute(statement, [{"v_" + k: v for k, v in row.items()} for row in group])


def _line_of(problem: str) -> int:
    head = problem.split(":", 1)[0]
    return int(head[5:]) if head.startswith("line ") and head[5:].isdigit() else 0


async def export_customers(engine: AsyncEngine, out: TextIO,
                           keep: CustomerFilter | None = None) -> int:
    """Write the customers (those `keep` lets through) and their cards, masked, as CSV in the
    import's columns; returns how many customers."""
    keep = keep or CustomerFilter()
    query = (select(customers, customer_types.c.name.label("type"))
             .select_from(customers.outerjoin(customer_types,
                                              customers.c.customer_type_id == customer_types.c.id))
             .order_by(customers.c.code))
    for condition in keep.conditions():
        query = query.where(condition)
    async with engine.connect() as conn:
        held: dict[int, list[str]] = {}
        result = await conn.execute(select(card_holders.c.customer_id, card_holders.c.card_mask)
                                    .order_by(card_holders.c.card_mask))
        for r in result:
            held.setdefault(r.customer_id, []).append(r.card_mask)
        rows = await conn.execute(query)
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["code", "name", "email", "phone", "type", "status", "consent", "notes",
                         "cards", "created", "consent_time"])
        count = 0
        for r in rows:
            writer.writerow([r.code, r.name, r.email or "", r.phone or "", r.type or "",
                             r.status, "yes" if r.consent else "no", r.notes,
                             " ".join(held.get(r.id, [])), iso(r.created_t),
                             iso(r.consent_t) or ""])
            count += 1
    return count

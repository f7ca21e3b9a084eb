"""Per-day summaries of the journal (schema.py: day_sums, staff_day_sums, staff_card_days,
card_stretches, active_counts, card_merchants, summary_zones), written in the ingest's
transaction for the entries it inserted (ingest.py: a replayed entry inserts nothing, so it is
summed once), and built from the whole journal by migration 0013 (`rebuild`).

A day is the program's local day: the zone recorded for the program in summary_zones, which is
the program's configured `timezone` when its first entry is summarised. Later entries keep that
zone, so the summaries of a program are all of one zone; a report asked in another zone (a
changed `timezone`, or `--tz`) reads the journal instead (reports/summarised.py).

Active cards are exact: a card counts in a day, week or month once, at its merchant and over
all merchants, through a row of card_stretches inserted with ON CONFLICT DO NOTHING RETURNING;
each row inserted adds one to active_counts. A stretch cut by a report's period is counted from
the card's day rows instead (reports/summarised.py).

The statements are SQL text run with the driver's executemany, as ingest.py's are (the consumer
shares its process with the till path); the code is synchronous so that the migration (a
synchronous connection) and the ingest (`run_sync` on its asynchronous one) share it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.engine import Connection

from gateway.backoffice.chunks import chunked
from gateway.backoffice.reports.buckets import key_of_day
from gateway.backoffice.reports.period import DAY_SECONDS, zone, zone_name
from gateway.backoffice.schema import (
    active_counts,
    card_merchants,
    card_stretches,
    day_sums,
    journal_entries,
    staff_card_days,
    staff_day_sums,
    summary_zones,
)

# A customer's operations: a card with one of these in a stretch is active in it (`analytics`).
ACTIVE_OPS = ("activate", "reload", "redeem", "refund", "cashout", "earn", "add_points",
              "return", "redeem_points")
POINTS_OPS = ("earn", "add_points")  # points accrued or awarded
LOAD_OPS = ("activate", "reload")  # value loaded (`staff`)
KINDS = {"d": "day", "w": "week", "m": "month"}  # card_stretches.kind -> buckets.py's name
ALL = ""  # the merchant of a card_stretches / active_counts row over every merchant
# The journal's columns a summary is made of, in this order.
SUMMARISED = ("card_id", "op", "program", "dv", "dp", "merchant", "t", "opid", "reward")
CHUNK = 1000  # rows per multi-row INSERT ... RETURNING (5 columns: well under 32,766 values)
REBUILD_PAGE = 5000  # journal rows read at a time by `rebuild`


def _placeholders(dialect: str, rows: int, columns: int) -> str:
    if dialect == "postgresql":  # asyncpg's own
        numbers = iter(range(1, rows * columns + 1))
        return ", ".join("(" + ", ".join(f"${next(numbers)}" for _ in range(columns)) + ")"
                         for _ in range(rows))
    return ", ".join(["(" + ", ".join("?" * columns) + ")"] * rows)


@cache
def _upserts(dialect: str) -> tuple[str, str, str, str, str]:
    """The sums' upserts (day_sums, staff_day_sums), staff_card_days' insert,
    active_counts' upsert and card_merchants' insert."""
    def added(table, key: Sequence[str], values: Sequence[str]) -> str:
        columns = (*key, *values)
        return (f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
                f"{_placeholders(dialect, 1, len(columns))} ON CONFLICT ({', '.join(key)}) "
                "DO UPDATE SET " + ", ".join(f"{v} = {table.name}.{v} + excluded.{v}"
                                             for v in values))

    sums = ("entries", "dv", "dp", "rewards")
    return (added(day_sums, ("program", "day", "merchant", "op"), sums),
            added(staff_day_sums, ("program", "day", "merchant", "opid", "op"), sums),
            f"INSERT INTO {staff_card_days.name} (program, day, opid, merchant, card_id) "
            f"VALUES {_placeholders(dialect, 1, 5)} ON CONFLICT DO NOTHING",
            added(active_counts, ("program", "kind", "key", "merchant"), ("cards",)),
            f"INSERT INTO {card_merchants.name} (merchant, card_id) "
            f"VALUES {_placeholders(dialect, 1, 2)} ON CONFLICT DO NOTHING")


@cache
def _stretches_insert(dialect: str, rows: int) -> str:
    return (f"INSERT INTO {card_stretches.name} (program, kind, key, merchant, card_id) "
            f"VALUES {_placeholders(dialect, rows, 5)} ON CONFLICT DO NOTHING "
            "RETURNING program, kind, key, merchant")


class LocalDays:
    """Epoch seconds -> the program's local day number. A zone's offset is looked up once per
    UTC hour when it is the same at the hour's first and last second (always but in the hour
    of a change, whose entries are looked up one by one: exact at the second)."""

    def __init__(self, zones: Mapping[str, dt.tzinfo]):
        self.zones = zones
        self.offsets: dict[tuple[str, int], int | None] = {}

    def __call__(self, program: str, t: int) -> int:
        tz = self.zones[program]
        if tz is dt.UTC:
            return t // DAY_SECONDS
        hour = t // 3600
        offset = self.offsets.get((program, hour), -1)
        if offset == -1:
            first, last = _offset(hour * 3600, tz), _offset(hour * 3600 + 3599, tz)
            offset = self.offsets[(program, hour)] = first if first == last else None
        if offset is None:
            offset = _offset(t, tz)
        return (t + offset) // DAY_SECONDS


def _offset(t: int, tz: dt.tzinfo) -> int:
    delta = dt.datetime.fromtimestamp(t, tz).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def zones_of(conn: Connection, programs: Iterable[str], configured: Mapping[str, str]
             ) -> dict[str, dt.tzinfo]:
    """The zone of each program's summaries; a program not summarised yet gets its configured
    zone (UTC when the config does not name it), recorded now."""
    recorded = dict(conn.execute(select(summary_zones.c.program, summary_zones.c.zone)).all())
    new = sorted(set(programs) - set(recorded))
    if new:
        for program in new:
            recorded[program] = configured.get(program, "UTC")
        conn.execute(summary_zones.insert(), [{"program": p, "zone": recorded[p]} for p in new])
    return {program: zone(name) for program, name in recorded.items()}


def add(conn: Connection, rows: Sequence[Sequence[Any]], configured: Mapping[str, str]) -> None:
    """Sum `rows` (journal entries just inserted, columns SUMMARISED) into the summaries."""
    if not rows:
        return
    dialect = conn.dialect.name
    local_day = LocalDays(zones_of(conn, {r[2] or "" for r in rows}, configured))
    sums: dict[tuple[Any, ...], list[int]] = {}
    staff: dict[tuple[Any, ...], list[int]] = {}
    served: set[tuple[Any, ...]] = set()
    stretches: set[tuple[Any, ...]] = set()
    merchants: set[tuple[str, str]] = set()
    for card_id, op, program, dv, dp, merchant, t, opid, reward in rows:
        program = program or ""
        day = local_day(program, t)
        figures = (1, dv, dp, 1 if reward else 0)
        merchants.add((merchant, card_id))
        _sum_into(sums, (program, day, merchant, op), figures)
        if opid:
            _sum_into(staff, (program, day, merchant, opid, op), figures)
            served.add((program, day, opid, merchant, card_id))
        if op in ACTIVE_OPS:
            for kind, by in KINDS.items():
                key = key_of_day(by, day)
                stretches.add((program, kind, key, merchant, card_id))
                stretches.add((program, kind, key, ALL, card_id))
    add_sums, add_staff, add_served, add_counts, add_merchants = _upserts(dialect)
    conn.exec_driver_sql(add_sums, [(*k, *v) for k, v in sums.items()])
    conn.exec_driver_sql(add_merchants, sorted(merchants))
    if staff:
        conn.exec_driver_sql(add_staff, [(*k, *v) for k, v in staff.items()])
        conn.exec_driver_sql(add_served, list(served))
    counted: Counter[tuple[Any, ...]] = Counter()
    ordered = sorted(stretches)  # one order for every writer: no deadlock between two
    for chunk in chunked(ordered, CHUNK):  # a few row counts: few statements (chunks.py)
        inserted = conn.exec_driver_sql(_stretches_insert(dialect, len(chunk)),
                                        tuple(v for row in chunk for v in row))
        counted.update(tuple(r) for r in inserted.all())
    if counted:
        conn.exec_driver_sql(add_counts, [(*k, n) for k, n in sorted(counted.items())])


def _sum_into(table: dict[tuple[Any, ...], list[int]], key: tuple[Any, ...],
              figures: tuple[int, ...]) -> None:
    held = table.get(key)
    if held is None:
        table[key] = list(figures)
    else:
        for i, value in enumerate(figures):
            held[i] += value


SUMMARY_TABLES = (day_sums, staff_day_sums, staff_card_days, card_stretches, active_counts,
                  card_merchants, summary_zones)


def rebuild(conn: Connection, configured: Mapping[str, str]) -> int:
    """Empty the summaries and sum the whole journal into them again (migration 0013; a
    program's `timezone` changed). Reads the journal a page at a time in key order; returns
    the number of entries summed."""
    for table in SUMMARY_TABLES:
        conn.execute(delete(table))
    j = journal_entries
    columns = [j.c[name] for name in SUMMARISED]
    last: tuple[str, str] | None = None
    total = 0
    while True:
        page = select(*columns, j.c.entry_id).order_by(j.c.card_id, j.c.entry_id)
        if last is not None:
            page = page.where(tuple_(j.c.card_id, j.c.entry_id) > tuple_(*last))
        rows = conn.execute(page.limit(REBUILD_PAGE)).all()
        if not rows:
            return total
        add(conn, [r[:-1] for r in rows], configured)
        total += len(rows)
        last = (rows[-1][0], rows[-1][-1])


def configured_zones(programs: Mapping[str, Any]) -> dict[str, str]:
    """Program id -> its configured zone name, from the config's programs."""
    return {pid: zone_name(zone(p.timezone)) for pid, p in programs.items()}

"""The points sweep (docs/ledger.md "Points lots and expiry", "Tiers"): expire the lots that are
due and re-evaluate tiers at their review day, card by card, each in one atomic call of
gateway/ledger/lua/sweep.lua. Run by `tillgate points expire` and hourly in `tillgate serve`.

It reads only the cards that have something due: each program keeps two sorted sets in a slot of
its own (`{x:<program>}`), cards by the day their oldest lot is due and cards above the lowest
tier by their review day; the card scripts keep them. A card swept leaves the due range (its
score moves on, or it is removed), so the sweep is resumable: a run that stops half-way (a crash,
or `limit`) leaves the rest in the range for the next run, and a card swept twice expires
nothing the second time.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import msgpack

from gateway.config.model import Config, Program
from gateway.ledger import cards, loyalty
from gateway.ledger.store import Store

BATCH = 256  # cards read from an index per round trip


@dataclass(slots=True)
class SweepReport:
    cards: int = 0  # cards swept
    expired: int = 0  # points expired, all cards
    expiries: int = 0  # cards that had points expire (one `expire` entry each)
    tier_changes: int = 0  # `tier` entries (down, or up after a config change)
    stopped: bool = False  # `limit` reached before the indexes were empty
    by_program: dict[str, int] = field(default_factory=dict)  # program -> points expired


def _sweeps(program: Program) -> bool:
    return program.is_loyalty and bool(program.points_validity_days or program.tiers)


async def sweep(store: Store, config: Config, now: float, limit: int | None = None) -> SweepReport:
    """Sweep every loyalty program as of `now` (epoch seconds); at most `limit` cards (a test's
    crash half-way; None = all)."""
    report = SweepReport()
    run = "sweep:" + secrets.token_hex(6)  # the entries' request key: which run made them
    for program in config.programs.values():
        if not _sweeps(program):
            continue
        report.by_program[program.id] = 0
        fixed = loyalty.depth_params(program, now)
        day = fixed["day"]
        indexes = await store.index_keys(program.id, "due") if program.points_validity_days else []
        if program.tiers:
            indexes += await store.index_keys(program.id, "tiers")
        done: set[bytes] = set()
        while True:
            due: set[bytes] = set()
            for index in indexes:
                due.update(await store.command("ZRANGEBYSCORE", index, "-inf", day,
                                               "LIMIT", 0, BATCH))
            due -= done  # a card the script left in range (cannot happen) is not retried
            if not due:
                break
            for cid in sorted(due):
                if limit is not None and report.cards >= limit:
                    report.stopped = True
                    return report
                done.add(cid)
                if not await _sweep_card(store, cid.decode(), fixed, now, run, report,
                                         program.id):
                    for index in indexes:  # a card no longer in the store: out of the indexes
                        await store.command("ZREM", index, cid)
    return report


async def _sweep_card(store: Store, cid: str, fixed: dict, now: float, run: str,
                      report: SweepReport, program_id: str) -> bool:
    """Sweep one card; False when it is not in the store."""
    params = {"now": int(now), "today": 0, "ch": cid, "term": cards.OPERATOR,
              "merch": cards.OPERATOR, "key": run, "op": "sweep", "norec": 1, "auth": "",
              "ttl": 1, **fixed}
    keys = cards.card_keys(cid, run, feed=store.feed_key)
    cards.add_points_keys(keys, params, program_id, store.index_key)
    packed, _fresh = await store.run("sweep", keys,
                                     [msgpack.packb(params)])
    res = msgpack.unpackb(packed)
    if res["rc"] == "14":
        return False
    report.cards += 1
    gone = -int(res.get("ptsd", 0) or 0)
    if gone:
        report.expired += gone
        report.expiries += 1
        report.by_program[program_id] += gone
    report.tier_changes += int(res.get("tch", 0) or 0)
    return True

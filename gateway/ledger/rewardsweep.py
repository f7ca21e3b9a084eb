"""The sweep of reward reservations on a Redis Cluster (gateway/ledger/rewardsplit.py): settles
the claims whose gateway died between reserving the item (step 1) and settling it (step 3).

A reservation held for `SWEEP_AFTER` seconds is settled from the card's record of its request,
read in the card's slot by reward_orphan.lua: approved, it becomes the claim (its line in the
claims stream); refused, or never run, the item goes back. "Never run" is made final first: the
script leaves a tombstone where the card's record would be, so a retransmission arriving later
is answered 05 and cannot take the points of a claim whose item was given back. It runs with the
points sweep (`tillgate serve`, worker 0 only; `tillgate points expire`); on one Redis there are
no reservations and it reads one empty sorted set per loyalty program.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config.model import Config
from gateway.ledger import cards, rewardsplit
from gateway.ledger.params import record_ttl
from gateway.ledger.rewardkeys import held_key, reservation_key, reward_key
from gateway.ledger.store import Store
from gateway.ledger.sweep import SweepReport, sweep

BATCH = 256  # reservations read per round trip


@dataclass(slots=True)
class ReservationReport:
    claimed: int = 0  # held reservations whose card script had approved: now claims
    returned: int = 0  # items given back (the card script refused, or never ran)


async def sweep_reservations(store: Store, config: Config, now: float, record_ttl: int,
                             after: float = rewardsplit.SWEEP_AFTER) -> ReservationReport:
    """Settle every reservation held since before `now - after` (epoch seconds)."""
    report = ReservationReport()
    for program in config.programs.values():
        if not program.is_loyalty:
            continue
        seen: set[bytes] = set()
        while True:
            held = [k for k in await store.command(
                "ZRANGEBYSCORE", held_key(program.id), "-inf", int(now - after),
                "LIMIT", 0, BATCH) if k not in seen]
            if not held:
                break
            for key in held:
                seen.add(key)  # settled or not, looked at once per run
                await _settle_one(store, program.id, key.decode(), now, record_ttl, report)
    return report


async def _settle_one(store: Store, program_id: str, key: str, now: float, record_ttl: int,
                      report: ReservationReport) -> None:
    state, cid, rid = await store.command("HMGET", reservation_key(program_id, key),
                                          "st", "ch", "rw")
    if state != b"held" or not cid or not rid:  # settled meanwhile, or expired: unlist it
        await store.command("ZREM", held_key(program_id), key)
        return
    rc = await store.run("reward_orphan", [cards.record_key(cid.decode(), key)],
                         [str(int(now)), str(record_ttl)])
    rc = rc.decode() if isinstance(rc, bytes) else str(rc)
    done = await rewardsplit.settle(store, reward_key(program_id, rid.decode()), key, rc)
    if done == "claimed":
        report.claimed += 1
    elif done == "returned":
        report.returned += 1


async def sweep_points_and_reservations(store: Store, config: Config, now: float,
                                        ) -> tuple[SweepReport, ReservationReport]:
    """The points sweep (gateway/ledger/sweep.py), then the reservations held too long: what
    `serve` runs every points_sweep_interval and `tillgate points expire` runs by hand."""
    return (await sweep(store, config, now),
            await sweep_reservations(store, config, now, record_ttl(config)))

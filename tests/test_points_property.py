"""Property: random earn / spend / add / return / void / reversal / balance / sweep sequences on
one loyalty card, with the clock moving on by hours to weeks, keep the points lots exact.

The program is the default loyalty program with a short life, so that lots expire and tiers
move within an example: points valid 30 days, tiers on the last 60 days, reviewed every 10.
After every step: the card's points equal the sum of its live lots and are never negative; an
`expire` entry took exactly the points that were due (lots whose last day had passed) and no
lot that is due survives it; a tier goes down only in the sweep, never in a transaction; the
points earned within the tier window (`wsum`) are the sum of the days' earned sums kept (`ed`
and the `e<day>` fields), or, on tiers without a window, the points earned ever (`le`) those
the journal shows; the audit (every entry against the running sums) holds at the end.
Twice more without lots, tiers alone (an earn takes another path through _lots.lua): on the
60-day window, and on points earned ever.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ledger_support import MERCH, TERM, ledger_config, random_number

from gateway.ledger import cards
from gateway.ledger.audit import audit
from gateway.ledger.journal import Entry
from gateway.ledger.processor import Processor
from gateway.ledger.store import Store
from gateway.ledger.sweep import sweep
from protocols.model import Op, Request

DAY0 = 20_500
KINDS = ("earn", "earn", "spend", "padd", "return", "void", "reverse", "balance", "sweep")
UNDOABLE = {"earn", "spend", "padd", "return"}
OPS = {"earn": Op.EARN, "spend": Op.REDEEM_POINTS, "padd": Op.ADD_POINTS, "return": Op.RETURN,
       "balance": Op.POINTS_BALANCE}

step = st.tuples(
    st.sampled_from(KINDS),
    st.integers(1, 60_000),  # amount: minor units (earn, return) or points (spend, add)
    st.integers(0, 24 * 14),  # hours the clock moves on before the step
    st.integers(0, 10_000),  # picks the original of a void or reversal
)


SHAPES = {"lots and tiers": (30, 60), "tiers on a window": (0, 60), "tiers ever": (0, 0)}


def short_lived(shape: str):
    validity, window = SHAPES[shape]
    config = ledger_config()
    program = replace(config.programs["loyalty"], points_validity_days=validity,
                      tier_window_days=window, tier_review_days=10)
    return replace(config, programs={**config.programs, "loyalty": program}), program


async def window_sums_agree(store: Store, cid: str) -> None:
    """`wsum` is the sum of `ed` and every `e<day>` field kept (each change moves both)."""
    state = await store.command("HGETALL", cards.state_key(cid))
    kept = await store.command("HGETALL", cards.lots_key(cid))
    days = sum(int(v) for k, v in kept.items() if k.startswith(b"e"))
    assert int(state.get(b"wsum", 0)) == int(state.get(b"ed", 0)) + days, (state, kept)


async def lots_of(store: Store, cid: str) -> dict[int, int]:
    return await cards.card_lots(store, cid)


async def journal(store: Store, cid: str) -> list[Entry]:
    page = await store.command("XRANGE", cards.journal_key(cid), "-", "+")
    return [Entry.decode(i, f[b"e"]) for i, f in page]


EARNED = {"earn", "add_points", "return"}  # _lots.lua ly.EARNED


async def lifetime_sum_agrees(store: Store, cid: str) -> None:
    """`le` is the points earned ever: the journal's earns, adds and returns, and the undos of
    them, each kept at 0 or more as the script does."""
    entries = await journal(store, cid)
    ops = {e.id: e.op for e in entries}
    earned = 0
    for e in entries:
        if e.op in EARNED or (e.undo is not None and ops.get(e.undo) in EARNED):
            earned = max(0, earned + e.dp)
    state = await store.command("HGETALL", cards.state_key(cid))
    assert int(state.get(b"le", 0)) == earned, (state, entries)


async def run_example(url: str, plan, shape: str) -> None:
    config, program = short_lived(shape)
    rank = {t.name: i for i, t in enumerate(program.tiers)}
    store = await Store.connect(url, pool_size=2)
    clock = [DAY0 * 86400.0 + 3600]
    processor = Processor(config, store, clock=lambda: clock[0])
    try:
        card = random_number(config, "loyalty")
        cid = cards.card_id(card)
        assert await cards.issue_card(store, program, card)
        done: list[str] = []  # keys of applied, undoable requests

        def request(op: Op, n: int, **kw) -> Request:
            return Request(op=op, card=card, terminal=TERM, merchant=MERCH,
                           key=f"P:{TERM}:{MERCH}:{n}:0101", **kw)

        [activated] = await processor.process_many([request(Op.ACTIVATE, 0)])
        assert activated.code == "00"
        for n, (kind, amount, hours, pick) in enumerate(plan, start=1):
            clock[0] += hours * 3600
            day = int(clock[0] // 86400)
            lots_before = await lots_of(store, cid)
            seen = len(await journal(store, cid))
            tier_before = (await store.command("HGET", cards.state_key(cid), "tier") or b"BRONZE")
            if kind == "sweep":
                await sweep(store, config, clock[0])
            else:
                if kind in ("void", "reverse"):
                    if not done:
                        continue
                    req = request(Op.VOID if kind == "void" else Op.REVERSAL, n,
                                  original_key=done[pick % len(done)])
                else:
                    req = request(OPS[kind], n, amount=amount)
                [res] = await processor.process_many([req])
                assert res.code in ("00", "51", "12"), (kind, res)
                if res.code == "00" and kind in UNDOABLE:
                    done.append(req.key)
            state = await store.command("HGETALL", cards.state_key(cid))
            lots = await lots_of(store, cid)
            pts = int(state.get(b"pts", 0))
            assert pts >= 0 and all(v > 0 for v in lots.values()), (pts, lots)
            if program.points_validity_days:
                assert pts == sum(lots.values()), (kind, pts, lots)
            else:
                assert not lots, lots
            if program.tier_window_days:
                await window_sums_agree(store, cid)
            else:
                await lifetime_sum_agrees(store, cid)
            tier = tier_before.decode()
            new = (await journal(store, cid))[seen:]
            expired = -sum(e.dp for e in new if e.op == "expire")
            if expired:
                due = sum(v for d, v in lots_before.items()
                          if d + program.points_validity_days < day)
                # all that was due; more only what an undo gave back to lots due since
                given_back = sum(e.dp for e in new if e.op in ("void", "reversal") and e.dp > 0)
                assert due <= expired <= due + given_back, (new, lots_before, day)
                assert all(d + program.points_validity_days >= day for d in lots), lots
            for e in new:
                if e.op == "tier":
                    assert e.tier is not None
                    if kind != "sweep":
                        assert rank[e.tier] > rank[tier], ("down mid-transaction", kind, e)
                    tier = e.tier
        report = await audit(store)
        assert report.ok, report.differences
    finally:
        await store.close()


def run_in_thread(redis_client, redis_url, plan, shape: str) -> None:
    """On its own asyncio loop in a worker thread, as test_ledger_property.py runs."""
    redis_client.flushall()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run_example(redis_url, plan, shape)).result()


HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@settings(max_examples=60, deadline=None, suppress_health_check=HEALTH)
@given(plan=st.lists(step, min_size=5, max_size=40))
def test_lots_stay_exact_under_random_sequences(redis_client, redis_url, plan):
    run_in_thread(redis_client, redis_url, plan, "lots and tiers")


# (two functions, not a parametrize: pytest-twisted loses the fixtures of a parametrized
# hypothesis test after its first example)
@settings(max_examples=30, deadline=None, suppress_health_check=HEALTH)
@given(plan=st.lists(step, min_size=5, max_size=40))
def test_window_tiers_without_lots_under_random_sequences(redis_client, redis_url, plan):
    run_in_thread(redis_client, redis_url, plan, "tiers on a window")


@settings(max_examples=30, deadline=None, suppress_health_check=HEALTH)
@given(plan=st.lists(step, min_size=5, max_size=40))
def test_lifetime_tiers_without_lots_under_random_sequences(redis_client, redis_url, plan):
    run_in_thread(redis_client, redis_url, plan, "tiers ever")

"""Property: random earn / spend / add / return / void / reversal / balance / sweep sequences on
one loyalty card, with the clock moving on by hours to weeks, keep the points lots exact.

The program is the default loyalty program with a short life, so that lots expire and tiers
move within an example: points valid 30 days, tiers on the last 60 days, reviewed every 10.
After every step: the card's points equal the sum of its live lots and are never negative; an
`expire` entry took exactly the points that were due (lots whose last day had passed) and no
lot that is due survives it; a tier goes down only in the sweep, never in a transaction; the
audit (every entry against the running sums) holds at the end.
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


def short_lived():
    config = ledger_config()
    program = replace(config.programs["loyalty"], points_validity_days=30, tier_window_days=60,
                      tier_review_days=10)
    return replace(config, programs={**config.programs, "loyalty": program}), program


async def lots_of(store: Store, cid: str) -> dict[int, int]:
    return await cards.card_lots(store, cid)


async def journal(store: Store, cid: str) -> list[Entry]:
    page = await store.command("XRANGE", cards.journal_key(cid), "-", "+")
    return [Entry.decode(i, f[b"e"]) for i, f in page]


async def run_example(url: str, plan) -> None:
    config, program = short_lived()
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
            assert pts == sum(lots.values()), (kind, pts, lots)
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


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plan=st.lists(step, min_size=5, max_size=40))
def test_lots_stay_exact_under_random_sequences(redis_client, redis_url, plan):
    """On its own asyncio loop in a worker thread, as test_ledger_property.py runs."""
    redis_client.flushall()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run_example(redis_url, plan)).result()

"""Property: random concurrent mixes of operations, retransmissions, conflicting keys, voids and
reversals (some before their originals) from several clients never lose, double or overdraw value.

Each example issues a few cards, then sends the generated requests in waves; within a wave every
request is in flight at once, spread over three Processors (each with its own Store and pool, as
three gateways would be). Afterwards: no balance or points below zero, every card equals its
journal (the audit), each request key was applied at most once per card, every entry was undone
at most once, and all requests that share a key and content got the same answer while at most
one content per key got anything but 94.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ledger_support import MERCH, TERM, ledger_config, random_number

from gateway.ledger import cards
from gateway.ledger.audit import audit
from gateway.ledger.journal import entries
from gateway.ledger.processor import Processor
from gateway.ledger.store import Store
from protocols.model import Op, Request

GIFT_CARDS, LOYALTY_CARDS = 3, 2
KINDS = ("redeem", "partial", "reload", "refund", "cashout", "balance", "void", "reverse",
         "earn", "predeem", "return", "retransmit", "conflict", "transfer")

step = st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, 4),  # card (gift 0-2, loyalty 3-4 where the op wants one)
    st.integers(1, 3000),  # amount
    st.integers(0, 2),  # wave
    st.integers(0, 10_000),  # picks another step (original of a void/reversal, retransmitted one)
)


def build(plan, gift, loyalty):
    """Turn generated steps into Requests; keys are unique unless a step reuses one."""
    reqs: list[tuple[int, Request]] = []
    for i, (kind, c, amount, wave, pick) in enumerate(plan):
        key = f"I2:{TERM}:{MERCH}:{i:06d}:0101000000"
        gcard, lcard = gift[c % GIFT_CARDS], loyalty[c % LOYALTY_CARDS]
        other = f"I2:{TERM}:{MERCH}:{pick % len(plan):06d}:0101000000"
        base = dict(terminal=TERM, merchant=MERCH, key=key)
        if kind in ("retransmit", "conflict"):
            if not reqs:
                continue
            w, earlier = reqs[pick % len(reqs)]
            clone = Request(**{f: getattr(earlier, f) for f in Request.__slots__})
            if kind == "conflict":
                clone.amount += 1
            reqs.append((wave, clone))
            continue
        if kind in ("void", "reverse"):
            op = Op.VOID if kind == "void" else Op.REVERSAL
            card = plan[pick % len(plan)][1]
            target_loyal = plan[pick % len(plan)][0] in ("earn", "predeem", "return")
            card_no = (loyalty if target_loyal else gift)[card % (LOYALTY_CARDS if target_loyal
                                                                  else GIFT_CARDS)]
            req = Request(op=op, card=card_no, original_key=other,
                          **{**base, "key": key.replace("I2", "I4" if op is Op.REVERSAL
                                                        else "I2")})
        elif kind in ("earn", "predeem", "return"):
            op = {"earn": Op.EARN, "predeem": Op.REDEEM_POINTS, "return": Op.RETURN}[kind]
            req = Request(op=op, card=lcard, amount=amount if op is not Op.REDEEM_POINTS
                          else amount // 100 + 1, **base)
        elif kind == "transfer":
            req = Request(op=Op.TRANSFER, card=gcard, target_card=gift[(c + 1) % GIFT_CARDS],
                          **base)
        else:
            op = {"redeem": Op.REDEEM, "partial": Op.REDEEM, "reload": Op.RELOAD,
                  "refund": Op.REFUND, "cashout": Op.CASHOUT, "balance": Op.BALANCE}[kind]
            req = Request(op=op, card=gcard, amount=0 if op in (Op.CASHOUT, Op.BALANCE)
                          else amount, partial_ok=kind == "partial", **base)
        reqs.append((wave, req))
    return reqs


async def setup(url):
    config = ledger_config()
    stores = [await Store.connect(url, pool_size=4) for _ in range(3)]
    rng = random.Random(7)
    gift = [random_number(config, "gift", rng) for _ in range(GIFT_CARDS)]
    loyalty = [random_number(config, "loyalty", rng) for _ in range(LOYALTY_CARDS)]
    for card in gift:
        await cards.issue_card(stores[0], config.programs["gift"], card)
    for card in loyalty:
        await cards.issue_card(stores[0], config.programs["loyalty"], card)
    return config, stores, gift, loyalty


async def check(store, all_cards, sent):
    for card in all_cards:
        view = await cards.show_card(store, card)
        assert view.balance >= 0 and view.points >= 0, view
    report = await audit(store)
    assert report.ok, report.differences
    applied: Counter[tuple[str, str, str]] = Counter()
    # Journal ids are stream ids, unique within one card's stream only: key undos by card.
    undone: Counter[tuple[str, str]] = Counter()
    for card in all_cards:
        async for e in entries(store, cards.journal_key(cards.card_id(card))):
            applied[(card, e.key, e.op)] += 1
            if e.undo:
                undone[(card, e.undo)] += 1
    assert max(applied.values(), default=1) == 1, applied.most_common(3)
    assert max(undone.values(), default=1) == 1, undone.most_common(3)
    answers: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for req, res in sent:
        answers[req.key][req.fingerprint()].add(
            (res.code, res.amount, res.balance, res.points, res.auth_id))
    for key, by_content in answers.items():
        not_dup = [fp for fp, got in by_content.items() if got != {("94", None, None, None,
                                                                      None)}]
        assert len(not_dup) <= 1, (key, by_content)
        for got in by_content.values():
            assert len({g for g in got if g[0] != "94"}) <= 1, (key, got)


async def run_example(url, plan, activations):
    config, stores, gift, loyalty = await setup(url)
    try:
        await send_and_check(config, stores, gift, loyalty, plan, activations)
    finally:
        for s in stores:
            await s.close()


async def send_and_check(config, stores, gift, loyalty, plan, activations):
    processors = [Processor(config, s) for s in stores]
    activate = [Request(op=Op.ACTIVATE, card=c, amount=a, terminal=TERM, merchant=MERCH,
                        key=f"act{i}") for i, (c, a) in enumerate(zip(gift, activations))]
    activate += [Request(op=Op.ACTIVATE, card=c, terminal=TERM, merchant=MERCH,
                         key=f"lact{i}") for i, c in enumerate(loyalty)]
    sent = []
    rng = random.Random(len(plan))
    planned = build(plan, gift, loyalty)
    for wave in [activate] + [[r for w, r in planned if w == n] for n in range(3)]:
        rng.shuffle(wave)
        # every request of the wave at once, spread over three gateways' processors
        shares = [wave[i::3] for i in range(3)]
        answers = await asyncio.gather(*(p.process_many(s) for p, s in zip(processors, shares)))
        for share, got in zip(shares, answers):
            sent.extend(zip(share, got))
    assert all(res.code != "96" for _, res in sent)
    await check(stores[0], gift + loyalty, sent)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plan=st.lists(step, min_size=5, max_size=60), activations=st.lists(
    st.integers(0, 5000), min_size=GIFT_CARDS, max_size=GIFT_CARDS))
def test_concurrent_mixes_keep_the_ledger_exact(redis_client, redis_url, plan, activations):
    """Runs on its own asyncio loop in a worker thread: the Processor's batch coroutine is the
    same one `submit()` schedules; the Twisted side of it is covered by test_processor.py."""
    redis_client.flushall()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run_example(redis_url, plan, activations)).result()

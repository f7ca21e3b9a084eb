"""The journal feed (gateway/ledger/feed.py): every journal entry also reaches the feed, in the
same script call, and the Cluster form's slot tags map each card to a feed of its own slot."""

from __future__ import annotations

import msgpack
import pytest_twisted
from test_ledger_support import ledger  # noqa: F401  (fixture)

from gateway.ledger import cards, feed
from gateway.ledger.journal import entries
from protocols.model import RC, Op


def test_crc16_and_slots_are_redis_clusters():
    # The examples of the Redis Cluster specification.
    assert feed.crc16(b"123456789") == 0x31C3
    assert feed.key_slot("foo") == 12182
    assert feed.key_slot("{user1000}.following") == feed.key_slot("user1000")
    assert feed.key_slot("foo{}{bar}") == feed.crc16(b"foo{}{bar}") % feed.SLOTS


def test_one_tag_per_slot_each_mapping_to_its_slot():
    tags = feed.slot_tags()
    assert len(tags) == feed.SLOTS == len(set(tags))
    for slot, tag in enumerate(tags):
        assert feed.key_slot("{" + tag + "}:q") == slot
    streams = feed.cluster_feed_streams()
    assert len(streams) == feed.SLOTS and streams[5] == "{" + tags[5] + "}:q"


def test_a_cards_cluster_feed_is_in_the_cards_slot():
    for n in range(200):
        cid = cards.card_id(f"6039530000{n:06d}")
        key = feed.cluster_feed_key(cid)
        assert feed.key_slot(key) == feed.key_slot(cards.state_key(cid))
        assert key in feed.cluster_feed_streams()


@pytest_twisted.ensureDeferred
async def test_every_journal_entry_reaches_the_feed_once_in_order(ledger):  # noqa: F811
    card = await ledger.issue("gift", activate=5000)
    other = await ledger.issue("gift", activate=100)
    sale = ledger.key()
    assert (await ledger.send(Op.REDEEM, card, 1250, key=sale)).code == "00"
    assert (await ledger.send(Op.REDEEM, card, 1250, key=sale)).code == "00"  # a replay
    assert (await ledger.send(Op.REDEEM, card, 99999)).code == RC.INSUFFICIENT_FUNDS
    assert (await ledger.send(Op.BALANCE, card)).code == "00"
    assert (await ledger.send(Op.VOID, card, 1250, original_key=sale)).code == "00"
    assert (await ledger.send(Op.TRANSFER, other, 0, target_card=card)).code == "00"
    assert (await ledger.call(cards.set_card_status(ledger.store, card, "suspended")))["rc"] \
        == "00"

    fed = await ledger.call(ledger.store.client.xrange(feed.FEED_STREAM))
    journals = {}
    for number in (card, other):
        cid = cards.card_id(number)
        journals[cid] = await ledger.call(journal_of(ledger.store, cid))
    # every journal entry once, with its own bytes and id, and nothing else
    assert len(fed) == sum(len(j) for j in journals.values()) == 7
    per_card: dict[str, list[str]] = {}
    for _id, fields in fed:
        entry = msgpack.unpackb(fields[b"e"])
        per_card.setdefault(entry["ch"], []).append(fields[b"j"].decode())
        assert fields[b"p"] == b"gift"
    for cid, journal in journals.items():
        assert per_card[cid] == [e.id for e in journal]  # in the journal's order
    assert [e.op for e in journals[cards.card_id(card)]] == [
        "activate", "redeem", "void", "transfer_in", "status:suspended"]


async def journal_of(store, cid):
    return [e async for e in entries(store, cards.journal_key(cid))]

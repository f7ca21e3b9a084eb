"""The ledger's mark for its request records' layout (gateway/ledger/recordlayout.py,
docs/ledger.md "Request records"): a new ledger is packed, one an older version wrote stays in
fields until `tillgate ledger records packed`, a server that would keep a packed record as a
hash table gets fields, and the config's true / false overrides; on a real Redis, through the
Processor and the real command line."""

from __future__ import annotations

import itertools
import logging
from dataclasses import replace

import pytest_twisted
from test_ledger_cli import config_file, tillgate  # noqa: F401  (config_file: a fixture)
from test_ledger_support import Ledger, ledger_config

from gateway.ledger import cards, recordlayout
from gateway.ledger.store import Store
from gateway.reactor import deferred_from_coro
from protocols.model import Op

FIELDS_RECORD = {b"resp", b"rc", b"op", b"t", b"ramt", b"dv", b"dp", b"jid", b"n", b"prev",
                 b"key"}
PACKED_RECORD = {b"resp", b"rc", b"u"}
REQUEST_KEYS = itertools.count(1)  # one sequence for every Ledger of the module: keys unique


async def _redeemed(store: Store, packed_records: bool | None = None) -> str:
    """The key of the record a redeem through a Processor on `store` leaves."""
    config = ledger_config()
    config = replace(config, redis=replace(config.redis, packed_records=packed_records))
    ledger = Ledger(config, store)
    ledger._keys = REQUEST_KEYS
    card = await ledger.issue("gift", activate=2000)
    key = ledger.key()
    assert (await ledger.send(Op.REDEEM, card, 500, key=key)).balance == 1500
    return cards.record_key(cards.card_id(card), key)


async def _redeem_record(redis_client, store: Store, packed_records: bool | None = None,
                         ) -> set[bytes]:
    """The fields of the record a redeem through a Processor on `store` leaves."""
    return set(redis_client.hgetall(await _redeemed(store, packed_records)))


async def _connect(url: str) -> Store:
    return await deferred_from_coro(Store.connect(url))


@pytest_twisted.ensureDeferred
async def test_a_new_ledger_is_marked_packed(redis_url, redis_client):
    store = await _connect(redis_url)
    try:
        assert store.packed_records
        assert redis_client.get(recordlayout.LAYOUT_KEY) == b"packed"
        assert await _redeem_record(redis_client, store) == PACKED_RECORD
        # the config's false overrides the mark for its gateway
        assert await _redeem_record(redis_client, store, False) == FIELDS_RECORD
    finally:
        await deferred_from_coro(store.close())


@pytest_twisted.ensureDeferred
async def test_a_ledger_an_older_version_wrote_stays_in_fields_until_marked(
        redis_url, redis_client):
    # cards and no mark: what a version before the mark leaves
    redis_client.hset(cards.state_key("0" * 32), mapping={"status": "active", "bal": 0})
    store = await _connect(redis_url)
    try:
        assert not store.packed_records
        assert redis_client.get(recordlayout.LAYOUT_KEY) == b"fields"  # decided once
        assert await _redeem_record(redis_client, store) == FIELDS_RECORD
        assert await _redeem_record(redis_client, store, True) == PACKED_RECORD
    finally:
        await deferred_from_coro(store.close())
    assert await deferred_from_coro(recordlayout.set_layout(store, "packed")) == "fields"
    again = await _connect(redis_url)  # a gateway's next start
    try:
        assert again.packed_records
        assert await _redeem_record(redis_client, again) == PACKED_RECORD
    finally:
        await deferred_from_coro(again.close())


@pytest_twisted.ensureDeferred
async def test_a_server_that_would_not_keep_a_packed_record_compact_gets_fields(
        redis_url, redis_client, caplog):
    # Redis's default: hash values up to 64 bytes stay in the compact encoding; a packed
    # record's `u` is longer, and its hash would take 504 bytes instead of 344
    redis_client.config_set("hash-max-ziplist-value", 64)
    try:
        with caplog.at_level(logging.INFO, logger="gateway.ledger.recordlayout"):
            store = await _connect(redis_url)
        try:
            assert redis_client.get(recordlayout.LAYOUT_KEY) == b"packed"  # a new ledger
            assert not store.packed_records
            assert await _redeem_record(redis_client, store) == FIELDS_RECORD
            assert "written as fields, though the ledger is marked packed" in caplog.text
            assert "up to 64 bytes (hash-max-ziplist-value), a packed record needs 128" \
                in caplog.text
        finally:
            await deferred_from_coro(store.close())
    finally:
        redis_client.config_set("hash-max-ziplist-value", recordlayout.COMPACT_VALUE_BYTES)
    # the embedded server's setting keeps one compact: 344 bytes, as a record in fields
    store = await _connect(redis_url)
    try:
        record = await _redeemed(store)
        assert redis_client.object("encoding", record) in (b"ziplist", b"listpack")
    finally:
        await deferred_from_coro(store.close())


@pytest_twisted.ensureDeferred
async def test_an_unknown_mark_is_read_as_fields(redis_url, redis_client):
    redis_client.set(recordlayout.LAYOUT_KEY, "columnar")  # a later version's layout
    store = await _connect(redis_url)
    try:
        assert not store.packed_records
        assert redis_client.get(recordlayout.LAYOUT_KEY) == b"columnar"  # left as it is
    finally:
        await deferred_from_coro(store.close())


def test_the_command_line_shows_and_sets_the_mark(config_file, redis_client):  # noqa: F811
    redis_client.hset(cards.state_key("0" * 32), mapping={"status": "active", "bal": 0})
    shown = tillgate(config_file, "ledger", "records")
    assert (shown.returncode, shown.stdout) == (0, "request records: fields\n"), shown.stderr
    done = tillgate(config_file, "ledger", "records", "packed")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ("request records: fields -> packed; each gateway writes packed "
                           "records from its next start\n")
    assert redis_client.get(recordlayout.LAYOUT_KEY) == b"packed"
    again = tillgate(config_file, "ledger", "records", "packed")
    assert again.stdout == "request records: packed (unchanged)\n"
    wrong = tillgate(config_file, "ledger", "records", "columnar")
    assert wrong.returncode == 2 and "invalid choice: 'columnar'" in wrong.stderr

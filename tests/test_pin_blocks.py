"""PIN blocks: ISO 9564 format 0 (clear and under TDES) and format 4 (AES), from the standards'
constructions and published cipher vectors, and end to end through the Processor.

Sources of the vectors:
- format 0, PIN 1234 and PAN 4111111111111111: PIN field 041234FFFFFFFFFF XOR PAN field
  0000111111111111 = 041225EEEEEEEEEE (ISO 9564-1 format 0 construction, the usual worked example)
- DES: FIPS 81 appendix B, key 0123456789ABCDEF, "Now is t" -> 3FA40E8A984D4815; TDES with
  K1 = K2 = K3 is single DES (SP 800-67 keying option 3), which checks our TDES wiring
- AES-128: FIPS 197 appendix C.1, key 000102...0F, 00112233...FF -> 69C4E0D86A7B0430D8CDB78070B4C55A
- format 4: the fields and the two-pass encipherment of ISO 9564-1:2017 section 9.4, checked layer
  by layer below
"""

from __future__ import annotations

import tomllib

import pytest
import pytest_twisted
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ledger_support import EXTRA_PROGRAMS, Ledger

from gateway.config.model import ConfigError, parse_config
from gateway.ledger.store import Store
from gateway.reactor import deferred_from_coro
from gateway.security.pinkeys import PinKey, PinKeys, format4_pan_field, format4_pin_field, xor
from protocols import isobuild, isomap
from protocols.model import RC, Op, Request

TDES2 = "0123456789ABCDEFFEDCBA9876543210"
TDES3 = "0123456789ABCDEFFEDCBA987654321089ABCDEF01234567"
AES128 = "000102030405060708090A0B0C0D0E0F"


def test_format0_clear_block_worked_example():
    assert isobuild.pin_block("1234", "4111111111111111") == "041225EEEEEEEEEE"
    assert isomap.clear_pin("041225EEEEEEEEEE", "4111111111111111") == "1234"


def test_tdes_is_wired_as_the_standard_says():
    des = PinKey("tdes", bytes.fromhex("0123456789ABCDEF" * 3))
    assert des.encrypt(b"Now is t").hex().upper() == "3FA40E8A984D4815"
    assert des.decrypt(bytes.fromhex("3FA40E8A984D4815")) == b"Now is t"


def test_aes_is_wired_as_the_standard_says():
    aes = PinKey("aes", bytes.fromhex(AES128))
    out = aes.encrypt(bytes.fromhex("00112233445566778899AABBCCDDEEFF"))
    assert out.hex().upper() == "69C4E0D86A7B0430D8CDB78070B4C55A"


@pytest.mark.parametrize("key", [TDES2, TDES3])
def test_tdes_format0_block_decrypts_to_the_pin(key):
    k = PinKey("tdes", bytes.fromhex(key))
    block = k.block_for("1234", "4111111111111111")
    assert k.decrypt(bytes.fromhex(block)).hex().upper() == "041225EEEEEEEEEE"
    assert k.pin_from_block(block, "4111111111111111") == "1234"
    assert k.pin_from_block(block, "4111111111111129") is None  # another card's block
    other = PinKey("tdes", bytes.fromhex(TDES3 if key == TDES2 else TDES2))
    assert other.pin_from_block(block, "4111111111111111") != "1234"


def test_format4_fields_and_two_pass_encipherment():
    fill = bytes.fromhex("0123456789ABCDEF")
    pin_field = format4_pin_field("1234", fill)
    assert pin_field.hex().upper() == "441234AAAAAAAAAA0123456789ABCDEF"
    pan_field = format4_pan_field("4111111111111111")
    assert pan_field.hex().upper() == "44111111111111111000000000000000"
    assert format4_pan_field("7712345678").hex().upper() == "0" + "007712345678" + "0" * 19
    k = PinKey("aes", bytes.fromhex(AES128))
    block = bytes.fromhex(k.block_for("1234", "4111111111111111", fill))
    assert block == k.encrypt(xor(k.encrypt(pin_field), pan_field))
    assert k.pin_from_block(block.hex(), "4111111111111111") == "1234"
    assert k.pin_from_block(block.hex(), "4111111111111129") is None
    with pytest.raises(ValueError):
        k.pin_from_block("041225EEEEEEEEEE", "4111111111111111")  # format 4 is 16 bytes


@settings(max_examples=40, deadline=None)
@given(pin=st.text("0123456789", min_size=4, max_size=12),
       pan=st.text("0123456789", min_size=10, max_size=19),
       algorithm=st.sampled_from(["tdes", "aes"]))
def test_round_trip_any_pin_and_card(pin, pan, algorithm):
    key = PinKey(algorithm, bytes.fromhex(TDES3 if algorithm == "tdes" else AES128 * 2))
    assert key.pin_from_block(key.block_for(pin, pan), pan) == pin


def test_format4_blocks_of_one_pin_differ_by_their_random_fill():
    k = PinKey("aes", bytes.fromhex(AES128))
    assert k.block_for("1234", "4111111111111111") != k.block_for("1234", "4111111111111111")


def test_pins_and_keys_stay_out_of_reprs():
    req = Request(op=Op.BALANCE, terminal="T", merchant="M", key="k", pin="4321",
                  pin_block="0412ABCDEF012345")
    assert "4321" not in repr(req) and "0412ABCDEF012345" not in repr(req)
    assert TDES2 not in repr(PinKey("tdes", bytes.fromhex(TDES2))).upper()


# -- configuration: keys from files or the environment only ------------------------------------

def config_with(pin_keys, **env):
    with open("config/tillgate.toml", "rb") as f:
        data = tomllib.load(f)
    data["programs"].update(EXTRA_PROGRAMS)
    data["security"] = {"pin_keys": pin_keys}
    return parse_config(data, "test")


def test_keys_come_from_a_file_or_the_environment(tmp_path, monkeypatch):
    key_file = tmp_path / "till1.key"
    key_file.write_text(TDES2 + "\n")
    monkeypatch.setenv("TG_TEST_MERCHANT_KEY", AES128)
    config = config_with([
        {"terminal": "TILL0001", "algorithm": "tdes", "key_file": str(key_file)},
        {"merchant": "BHNRESELLER0001", "algorithm": "aes", "key_env": "TG_TEST_MERCHANT_KEY"}])
    keys = PinKeys(config.security.pin_keys)
    assert keys.key_for("TILL0001", "STORE0000000001").algorithm == "tdes"
    assert keys.key_for("TILL0002", "STORE0000000001") is None
    assert keys.key_for("BHN00001", "BHNRESELLER0001").algorithm == "aes"
    assert TDES2 not in repr(config.security)


def test_bad_key_settings_are_named(tmp_path, monkeypatch):
    monkeypatch.delenv("TG_NOT_SET", raising=False)
    short = tmp_path / "short.key"
    short.write_text("0123")
    with pytest.raises(ConfigError) as e:
        config_with([{"terminal": "TILL0001", "key": TDES2},
                     {"terminal": "NOSUCH", "key_env": "TG_NOT_SET"},
                     {"terminal": "TILL0002", "key_file": str(short)},
                     {"merchant": "STORE0000000001", "algorithm": "rsa",
                      "key_file": str(tmp_path / "missing")}])
    errors = "\n".join(e.value.errors)
    assert TDES2 not in errors  # a literal key is refused without being echoed
    for text in ("security.pin_keys[0].key: secrets are never written",
                 "security.pin_keys[1].terminal: unknown terminal",
                 "security.pin_keys[1].key_env: environment variable TG_NOT_SET",
                 "security.pin_keys[2].key_file: file", "security.pin_keys[3].algorithm",
                 "security.pin_keys[3].key_file: cannot read"):
        assert text in errors, errors


# -- end to end: field 52 encrypted under the terminal's key ------------------------------------

@pytest_twisted.async_yield_fixture
async def keyed_ledger(redis_url, monkeypatch):
    monkeypatch.setenv("TG_TEST_TILL_KEY", TDES2)
    config = config_with([{"terminal": "TILL0001", "algorithm": "tdes",
                           "key_env": "TG_TEST_TILL_KEY"}])
    store = await deferred_from_coro(Store.connect(redis_url, pool_size=4))
    yield Ledger(config, store)
    await deferred_from_coro(store.close())


def iso_balance(card: str, block: str, terminal: str = "TILL0001", stan: str = "000001"):
    fields = isobuild.request_fields(Op.BALANCE, terminal=terminal, merchant="STORE0000000001",
                                     stan=stan, card=card, pin="0000")
    fields["52"] = block
    return isomap.message_to_request(fields, source="127.0.0.1:5000")


@pytest_twisted.ensureDeferred
async def test_encrypted_field_52_is_decrypted_under_the_terminal_key(keyed_ledger):
    ledger = keyed_ledger
    card = await ledger.issue("secure", pin="2468", activate=700)
    key = PinKey("tdes", bytes.fromhex(TDES2))
    ok = await ledger.processor.submit(iso_balance(card, key.block_for("2468", card)))
    assert (ok.code, ok.balance) == ("00", 700)
    clear = isobuild.pin_block("2468", card)  # a clear block from a terminal that has a key
    assert (await ledger.processor.submit(iso_balance(card, clear, stan="000002"))).code == (
        RC.INCORRECT_PIN)
    wrong_key = PinKey("tdes", bytes.fromhex(TDES3))
    assert (await ledger.processor.submit(
        iso_balance(card, wrong_key.block_for("2468", card), stan="000003"))).code == (
        RC.INCORRECT_PIN)
    # TILL0002 has no key: its clear format 0 block is read as before
    assert (await ledger.processor.submit(
        iso_balance(card, clear, terminal="TILL0002", stan="000004"))).code == "00"


# -- PINs never reach the log --------------------------------------------------------------------

def test_hexdumps_mask_tgl_pins():
    from gateway.listeners.hexdump import masked_hexdump, tgl_dump

    tgl = b"\x02TGL1\x1cQ\x1cop=balance\x1cpin=4821\x1cid=7\x03"
    for dump in (masked_hexdump(tgl), tgl_dump(tgl[1:-1])):
        assert "4821" not in dump and "34 38 32 31" not in dump


@pytest_twisted.ensureDeferred
async def test_a_refused_iso_message_is_logged_without_its_pin_block(tillgate_inprocess_factory,
                                                                     caplog):
    import asyncio
    import logging
    import re

    from gateway.sim.isoclient import IsoClient

    gw = await tillgate_inprocess_factory()
    card = "6039540000000000001"[:16]
    fields = isobuild.request_fields(Op.BALANCE, terminal="TILL0001", merchant="STORE0000000001",
                                     stan="000009", card=card, pin="4821")
    block = fields["52"]
    fields["3"] = "990000"  # a processing code nobody knows: refused, logged with a hex dump

    def exchange() -> dict[str, str]:
        with IsoClient("127.0.0.1", gw.port("iso"), timeout=5) as client:
            return client.exchange(fields)

    with caplog.at_level(logging.INFO):
        answer = await deferred_from_coro(asyncio.to_thread(exchange))
    assert answer["39"] != "00"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "refused" in logged
    dumped = b"".join(bytes.fromhex(m.group(1)) for m in
                      re.finditer(r"(?m)^[0-9a-f]{4}  ((?:[0-9a-f]{2} )*[0-9a-f]{2})", logged))
    # the dump is there, up to where field 52 can start (tests/test_pin_logs.py has the rest)
    assert dumped.startswith(b"0200") and "(PIN block) can start not shown" in logged
    assert block.encode() not in dumped and block not in logged

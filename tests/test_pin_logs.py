"""Issue 12, part 1: no refused or garbled message puts PIN material in the log.

Over real sockets into a real gateway: ISO 8583 on TCP in every framing the listener supports
(and both bitmaps), ISO 8583 and TGL/1 in STX/ETX frames on a real pseudo-terminal and TGL/1 on
TCP, and a `tillgate serve` subprocess whose stderr is read back. Each message carries a PIN
block (or a TGL/1 PIN) and is broken where the old log leaked it: an unreadable MTI, a bad field
49 or a non-ASCII byte inside field 52 (decoding stopped at or before 52, so the decoder could
not say where the block was), a garbled `pin` key, a bad LRC.
"""

from __future__ import annotations

import socket
import struct

import pytest
import pytest_twisted
from isohelpers import in_thread
from linetill import ACK, NAK, frame, tgl_request
from pinguard import WITHHELD, Material
from test_ledger_support import ledger  # noqa: F401  (fixture)
from test_line_serial import serial_line
from test_line_tcp import TERM, tcp_line

from gateway.sim.isoclient import IsoClient
from gateway.testing import GatewayProcess
from protocols import isocodec
from protocols.isobuild import pin_block, request_fields
from protocols.isospec import SPEC_ASCII, SPEC_BINARY_BITMAP
from protocols.model import Op

TILL = {"terminal": "TILL0001", "merchant": "STORE0000000001"}
CARD = "6039531234567890126"  # its block starts 04483B: no digit run a card mask would hide
PIN = "4829"


def pin_message(spec=SPEC_ASCII) -> tuple[bytes, str]:
    """A 0200 redeem carrying field 49 and a clear format-0 PIN block (field 52), encoded."""
    fields = request_fields(Op.REDEEM, card=CARD, amount=125, stan="000042", currency="840",
                            pin=PIN, **TILL)
    return isocodec.encode(fields, spec), fields["52"]


def broken(payload: bytes, block: str, how: str) -> bytes:
    at = payload.index(block.encode())  # field 52; field 49 (3 bytes) is just before it
    if how == "mti":
        return b"\xff\xfe00" + payload[4:]
    if how == "field 49":
        return payload[:at - 3] + b"8\xe90" + payload[at:]
    if how == "52, last byte":
        return payload[:at + 15] + b"\xff" + payload[at + 16:]
    if how == "52, first byte":
        return payload[:at] + b"\xff" + payload[at + 1:]
    if how == "52, not hex":  # decodes; the mapping refuses it (the old hide() covered this one)
        return payload[:at + 15] + b"G" + payload[at + 16:]
    raise AssertionError(how)


BREAKS = ["mti", "field 49", "52, last byte", "52, first byte", "52, not hex"]


def assert_no_pin_material(text: str, blocks=(), pins=(), bare=()) -> None:
    """No block (or 15 characters of one), no `pin=` value of `pins`, and not even the digits
    of `bare` (PINs long and odd enough to be told from other numbers) in `text`."""
    material = Material()
    for block in blocks:
        material.add_block(block, "this test")
    for pin in pins:
        material.add_pin(pin, "this test")
    assert material.find(text) is None, "PIN material in the log"
    assert WITHHELD not in text  # the session guard found (and withheld) a record
    for pin in bare:  # a garbled key is no longer `pin=`: the digits must not be there at all
        assert pin not in text and pin not in _dumped(text)


def _dumped(text: str) -> str:
    from pinguard import _DUMP_LINE

    return bytes.fromhex(" ".join(_DUMP_LINE.findall(text))).decode("latin-1")


# --- ISO 8583 over TCP ---------------------------------------------------------------------


@pytest.mark.parametrize(("framing", "bitmap"), [("len2b", "ascii"), ("len4a", "ascii"),
                                                 ("tpdu", "ascii"), ("len2b", "binary")])
@pytest_twisted.ensureDeferred
async def test_refused_iso_messages_log_no_pin_block(tillgate_inprocess_factory, redis_url,
                                                      caplog, framing, bitmap):
    gw = (await tillgate_inprocess_factory(redis_url=redis_url, framing=framing,
                                           bitmap=bitmap)).gateway
    spec = SPEC_BINARY_BITMAP if bitmap == "binary" else SPEC_ASCII
    payload, block = pin_message(spec)
    options: dict = {"framing": framing, "bitmap": bitmap}
    if framing == "tpdu":
        options["tpdu"] = bytes.fromhex("6000120034")

    def send(message: bytes) -> str:
        """The answer's field 39, or `closed`."""
        with IsoClient("127.0.0.1", gw.listeners[0].bound_port, **options) as c:
            c.send_raw(message)
            try:
                return c.receive()["39"]
            except (ConnectionError, OSError):
                return "closed"

    answers = {how: await in_thread(send, broken(payload, block, how)) for how in BREAKS}
    assert answers == {"mti": "closed", "field 49": "30", "52, last byte": "30",
                       "52, first byte": "30", "52, not hex": "30"}
    refusals = [r for r in caplog.records if "refused" in r.getMessage()
                or "unanswerable" in r.getMessage()]
    assert len(refusals) == len(BREAKS)
    assert_no_pin_material(caplog.text, [block])
    # What the log still says: why, and the message up to where field 52 can start.
    assert "body not shown" in caplog.text  # the unreadable MTI
    assert "from where field 52 (PIN block) can start not shown" in caplog.text


@pytest_twisted.ensureDeferred
async def test_a_framing_error_logs_the_length_header_only(tillgate_inprocess_factory, redis_url,
                                                           caplog):
    gw = (await tillgate_inprocess_factory(redis_url=redis_url, framing="len4a")).gateway
    payload, block = pin_message()

    def send() -> bytes:
        with socket.create_connection(("127.0.0.1", gw.listeners[0].bound_port), timeout=5) as s:
            s.sendall(b"00x0" + payload)  # a garbled len4a length, then a message with a block
            return s.recv(10)

    assert await in_thread(send) == b""
    assert "garbled len4a length" in caplog.text
    assert_no_pin_material(caplog.text, [block])
    assert "30 30 78 30" in caplog.text and "30 32 30 30" not in caplog.text  # no MTI bytes


# --- STX/ETX lines: ISO 8583 on a serial pty, TGL/1 on a pty and on TCP --------------------


def garble_lrc(framed: bytes) -> bytes:
    return framed[:-1] + bytes([framed[-1] ^ 0x5A])


@pytest_twisted.ensureDeferred
async def test_iso_on_a_serial_line_logs_no_pin_block(ledger, tmp_path, caplog):  # noqa: F811
    payload, block = pin_message()
    async with serial_line(ledger, tmp_path, protocol="iso8583") as rig:
        line = rig.line
        line.write(garble_lrc(frame(payload)))  # a garbled frame: NAKed and logged
        await line.expect(NAK)
        for how in ("mti", "field 49", "52, last byte"):
            line.write(frame(broken(payload, block, how)))
            await line.expect(ACK)
            if how != "mti":  # an unaddressable message is ACKed and only logged
                await line.read_frame()
        await line.quiet(0.1)
    assert "bad LRC" in caplog.text and "unaddressable message" in caplog.text
    assert_no_pin_material(caplog.text, [block])


GARBLED_PIN = "90817263"


def tgl_with_pin(key: bytes) -> bytes:
    """A redeem whose `pin` key arrived as `key` (line noise flipped a bit)."""
    good = tgl_request(id="51", op="redeem", card=CARD, amt="100", pin=GARBLED_PIN, **TERM)
    return good.replace(b"pin=", key + b"=")


@pytest_twisted.ensureDeferred
async def test_tgl_on_tcp_logs_no_pin(ledger, caplog):  # noqa: F811
    async with tcp_line(ledger) as (service, line):
        # NAKed: a bad LRC on a frame whose pin key and value arrived whole.
        line.write(garble_lrc(frame(tgl_with_pin(b"pin"))))
        await line.expect(NAK)
        # NAKed: a bad LRC, and the key itself garbled (the old dump hid `pin=` values only).
        line.write(garble_lrc(frame(tgl_with_pin(b"pIn"))))
        await line.expect(NAK)
        # A good LRC but a garbled key (and a bad amount): a format error, logged with its dump.
        r = await line.request(tgl_with_pin(b"PIN").replace(b"amt=100", b"amt=1.00"))
        assert r == {"id": "51", "rc": "30"}
        # A garbled separator merged the PIN into the op: the error message must not echo it.
        merged = tgl_request(id="52", op="redeem", pin=GARBLED_PIN, card=CARD, amt="1", **TERM)
        r = await line.request(merged.replace(b"op=redeem\x1cpin=", b"op=redeem<pin="))
        assert r == {"id": "52", "rc": "30"}
        await line.quiet(0.1)
    assert caplog.text.count("bad LRC") == 2 and caplog.text.count("format error") == 2
    assert "op: unknown operation" in caplog.text
    assert_no_pin_material(caplog.text, pins=[GARBLED_PIN], bare=[GARBLED_PIN])


@pytest_twisted.ensureDeferred
async def test_tgl_on_a_serial_line_logs_no_pin(ledger, tmp_path, caplog):  # noqa: F811
    async with serial_line(ledger, tmp_path) as rig:
        rig.line.write(garble_lrc(frame(tgl_with_pin(b"pmn"))))
        await rig.line.expect(NAK)
        await rig.line.quiet(0.1)
    assert "bad LRC" in caplog.text
    assert_no_pin_material(caplog.text, pins=[GARBLED_PIN], bare=[GARBLED_PIN])


# --- a tillgate serve subprocess ------------------------------------------------------------


def test_the_daemon_logs_no_pin_block(tmp_path, redis_url):
    gateway = GatewayProcess.prepare(tmp_path / "gw", redis_url=redis_url).start()
    payload, block = pin_message()
    try:
        for how in ("mti", "52, last byte"):
            with socket.create_connection(("127.0.0.1", gateway.ports["iso"]), timeout=5) as s:
                message = broken(payload, block, how)
                s.sendall(struct.pack(">H", len(message)) + message)
                s.recv(512)  # the 30, or the close
    finally:
        assert gateway.stop() == 0
    log = gateway.log
    assert "unanswerable message" in log and "refused with 30" in log
    assert_no_pin_material(log, [block])


def test_tillgate_sim_prints_no_pin_or_pin_block(tillgate_gateway):
    import subprocess
    import sys

    issued = tillgate_gateway.issue_card("secure")
    assert issued.pin
    wrong = "9999" if issued.pin != "9999" else "1111"
    outputs = []
    for protocol in ("iso", "tgl"):
        for pin in (issued.pin, wrong):
            for form in ((), ("--json",)):
                run = subprocess.run(
                    [sys.executable, "-m", "gateway.cli", "sim", "balance", "--protocol", protocol,
                     "--card", issued.number, "--pin", pin, *form,
                     "--config", str(tillgate_gateway.config_path)],
                    capture_output=True, text=True, timeout=60)
                assert run.returncode in (0, 1), run.stderr
                outputs.append(run.stdout + run.stderr)
    text = "\n".join(outputs)
    assert "balance" in text
    blocks = [pin_block(pin, issued.number) for pin in (issued.pin, wrong)]
    assert_no_pin_material(text, blocks, pins=[issued.pin, wrong])
    assert_no_pin_material(tillgate_gateway.log, blocks, pins=[issued.pin, wrong])


# --- the session guard itself ---------------------------------------------------------------


def test_the_guard_is_installed_for_the_whole_session():
    import logging
    import subprocess

    from gateway import testing
    from gateway.security.pinkeys import PinKey
    from protocols import carddata, isobuild

    for wrapped in (isobuild.pin_block, PinKey.block_for, carddata.generate_pin, subprocess.run,
                    testing.GatewayProcess.start, tgl_request):
        assert hasattr(wrapped, "__wrapped__"), wrapped
    import pinguard

    assert any(isinstance(h, pinguard._LogScanner) for h in logging.getLogger().handlers)


def test_the_guard_finds_a_block_split_across_hex_dump_lines():
    from gateway.listeners.hexdump import masked_hexdump

    block = pin_block("1234", CARD)
    material = Material()
    material.add_block(block, "pin_block")
    dump = masked_hexdump(b"0200" + b"x" * 10 + block.encode())  # the block spans two lines
    assert block[:WINDOW_SPLIT] in dump and block not in dump
    assert material.find(dump) == "a PIN block (from pin_block)"
    assert material.find(block[1:].lower()) is not None  # its last 15, in any case
    assert material.find(block[:14]) is None  # 14 characters are not a find
    material.add_pin("7531", "generate_pin")
    assert material.find("TGL1 Q id=1 pin=7531") and not material.find("stan 7531")
    assert material.find('{"pin": "7531"}') and not material.find('{"pin": "7532"}')
    assert material.find("op=balance\x1cPIN=24680") == "a TGL/1 pin= value"  # made elsewhere


WINDOW_SPLIT = 2  # 0200 + 10 bytes put the first 2 characters of the block on line one


LEAKY_TEST = '''
import logging

from protocols.isobuild import pin_block


def test_leaks():
    logging.getLogger("leaky").warning("block %s", pin_block("1234", "6039530000000000018"))
'''


def test_the_guard_fails_a_test_that_logs_a_pin_block_and_never_prints_it(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).parent
    (tmp_path / "conftest.py").write_text(
        "from pinguard import no_pin_material_in_logs, pytest_configure, pytest_sessionfinish\n")
    (tmp_path / "test_leaky.py").write_text(LEAKY_TEST)
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                          "-p", "no:tillgate", "--rootdir", str(tmp_path), str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**__import__("os").environ, "PYTHONPATH": str(tests)})
    assert run.returncode == 1, run.stdout + run.stderr
    assert "PIN material reached a log: a PIN block (from isobuild.pin_block) in a log " \
           "record of leaky (WARNING)" in run.stdout
    block = pin_block("1234", CARD)
    assert block[:15] not in run.stdout + run.stderr


LEAKY_SESSION = '''
import logging

import pytest

from protocols.isobuild import pin_block


@pytest.fixture(scope="session")
def leaky_session():
    yield
    logging.getLogger("leaky").warning("block %s", pin_block("1234", "6039530000000000018"))


def test_clean(leaky_session):
    pass
'''


def test_under_xdist_a_workers_session_find_fails_the_run(tmp_path):
    """What a worker's session fixtures log after its last test reaches the controller
    (xdist's `workeroutput`), which fails the run: tox runs the suite with `-n 2`."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).parent
    (tmp_path / "conftest.py").write_text(
        "from pinguard import (no_pin_material_in_logs, pytest_configure, pytest_sessionfinish,\n"
        "    pytest_terminal_summary, pytest_testnodedown)\n")
    (tmp_path / "test_leaky_session.py").write_text(LEAKY_SESSION)
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                          "-p", "no:tillgate", "-n", "1", "--rootdir", str(tmp_path),
                          str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(tests)})
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    assert "PIN material reached a log: a PIN block (from isobuild.pin_block)" in run.stdout
    assert "pinguard: 2 PIN-block windows and 1 PINs" in run.stdout  # the worker's, summed
    assert pin_block("1234", CARD)[:15] not in run.stdout + run.stderr

"""Serial tills over real pseudo-terminals, against the real Processor and redis-server.

The gateway opens the pty's slave end by path through twisted's SerialPort (pyserial applies the
listener's baud rate, data bits, parity, stop bits and flow control to the real tty); the test
till holds the master end. The configured device is a symlink, so a test can unplug the device
(close the pty) and plug a new one in under the same name.
"""

from __future__ import annotations

import contextlib
import os
import termios
import tomllib

import pytest
import pytest_twisted
from linetill import ACK, NAK, PtyTill, TillLine, frame, tgl_fields, tgl_request
from test_ledger_support import ledger  # noqa: F401  (fixture)
from test_line_tcp import TERM, session
from twisted.internet import reactor, task

from gateway.config.model import Listener, parse_config
from gateway.config.sections import ConfigError
from gateway.listeners.serial_port import SerialListenerService


class Pty:
    """A pseudo-terminal pair published under a stable device name (a symlink), with the test
    till on its master end."""

    def __init__(self, link: str):
        self.link = link
        self.master, self.slave = os.openpty()
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(os.ttyname(self.slave), link)
        self.till = PtyTill(reactor, self.master)

    def unplug(self) -> None:
        self.till.unplug()
        os.close(self.slave)
        os.unlink(self.link)


class SerialRig:
    """A serial listener on a device name that a test can plug a pty into, and pull out."""

    def __init__(self, link: str):
        self.link = link
        self.pty: Pty | None = None
        self.service: SerialListenerService | None = None

    @property
    def line(self) -> TillLine:
        assert self.pty is not None
        return self.pty.till.line

    def plug(self) -> TillLine:
        self.pty = Pty(self.link)
        return self.line

    def unplug(self) -> None:
        assert self.pty is not None
        self.pty.unplug()
        self.pty = None


def serial_listener(device: str, protocol: str = "line", **kw) -> Listener:
    settings = dict(baud=19200, bytesize=7, parity="E", stopbits=1, flow="none",
                    retries=3, retry_interval=3.0)
    settings.update(kw)
    return Listener(name="till-com1", protocol=protocol, transport="serial", device=device,
                    **settings)


async def until(predicate, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await task.deferLater(reactor, 0.02, lambda: None)
    raise AssertionError("condition not met in time")


@contextlib.asynccontextmanager
async def serial_line(ledger, tmp_path, *, plugged: bool = True, **settings):  # noqa: F811
    """A SerialListenerService (fast back-off) on `tmp_path/ttyTILL`, a pty plugged in unless
    `plugged=False`; stops the service and unplugs whatever is plugged in afterwards."""
    rig = SerialRig(str(tmp_path / "ttyTILL"))
    if plugged:
        rig.plug()
    rig.service = SerialListenerService(reactor, serial_listener(rig.link, **settings),
                                        ledger.processor, ledger.config,
                                        initial_delay=0.05, max_delay=0.4)
    await rig.service.start()
    try:
        yield rig
    finally:
        await rig.service.stop()
        if rig.pty is not None:
            rig.unplug()


@pytest_twisted.ensureDeferred
async def test_listener_settings_reach_the_tty(ledger, tmp_path):  # noqa: F811
    async with serial_line(ledger, tmp_path, flow="rtscts", stopbits=2) as rig:
        assert rig.service.is_open
        iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(rig.pty.slave)
        assert ispeed == ospeed == termios.B19200
        assert cflag & termios.CSTOPB
        assert cflag & termios.CRTSCTS
        assert not iflag & (termios.IXON | termios.IXOFF)
        assert not lflag & (termios.ICANON | termios.ECHO)  # raw: bytes pass untouched
        # A Linux pty forces CS8 without parity whatever is asked, so data bits and parity are
        # checked where pyserial holds them.
        port = rig.service.port._serial
        assert (port.baudrate, port.bytesize, port.parity, port.stopbits) == (19200, 7, "E", 2)
        assert (port.rtscts, port.xonxoff) == (True, False)


@pytest_twisted.ensureDeferred
async def test_till_session_over_a_serial_line(ledger, tmp_path):  # noqa: F811
    card = await ledger.issue("gift")
    async with serial_line(ledger, tmp_path) as rig:
        await session(rig.line, card)
        await rig.line.quiet(0.1)


@pytest_twisted.ensureDeferred
async def test_noise_bad_lrc_and_retransmission_on_serial(ledger, tmp_path):  # noqa: F811
    card = await ledger.issue("gift", activate=2000)
    async with serial_line(ledger, tmp_path, retry_interval=0.3) as rig:
        line = rig.line
        redeem = frame(tgl_request(id="7", op="redeem", card=card, amt="500", **TERM))
        line.write(b"\x00\x11\x13\xfe" + redeem[:-1] + bytes([redeem[-1] ^ 0x0F]))
        await line.expect(NAK)
        line.write(redeem)
        await line.expect(ACK)
        first = tgl_fields(await line.read_frame(ack=None))  # our ACK is "lost": no ACK
        line.write(redeem)  # the till gives up waiting and retransmits its request
        await line.expect(ACK)
        payloads = [await line.read_frame(ack=True), await line.read_frame(ack=True)]
        # The gateway retransmitted its unacknowledged response and answered the repeat with
        # the ledger's stored result: the same answer, and one redemption.
        assert all(tgl_fields(p) == first for p in payloads)
        assert (first["rc"], first["bal"]) == ("00", "1500")
        assert (await ledger.show(card)).balance == 1500


@pytest_twisted.ensureDeferred
async def test_device_unplugged_mid_session_is_reopened(ledger, tmp_path, caplog):  # noqa: F811
    card = await ledger.issue("gift", activate=1000)
    async with serial_line(ledger, tmp_path) as rig:
        r = await rig.line.request(tgl_request(id="1", op="redeem", card=card, amt="100", **TERM))
        assert (r["rc"], r["bal"]) == ("00", "900")

        rig.unplug()  # the USB adapter is pulled out
        await until(lambda: not rig.service.is_open)
        await until(lambda: rig.service.open_failures >= 2)  # the device is missing: retried
        assert "lost" in caplog.text and "cannot open" in caplog.text

        line = rig.plug()  # plugged back in (a new tty behind the same name)
        await until(lambda: rig.service.is_open)
        r = await line.request(tgl_request(id="2", op="balance", card=card, **TERM))
        assert (r["rc"], r["bal"]) == ("00", "900")
        assert rig.service.opens == 2


@pytest_twisted.ensureDeferred
async def test_missing_device_at_start_is_not_a_crash(ledger, tmp_path):  # noqa: F811
    async with serial_line(ledger, tmp_path, plugged=False) as rig:
        assert not rig.service.is_open
        await until(lambda: rig.service.open_failures >= 1)
        line = rig.plug()
        await until(lambda: rig.service.is_open)
        r = await line.request(tgl_request(id="1", op="echo", **TERM))
        assert r == {"id": "1", "rc": "00"}


# --- ISO 8583 in STX/ETX frames on a serial line -----------------------------------------------


def iso_message(mti: str, stan: str, **fields: str) -> bytes:
    import iso8583

    from protocols.isospec import SPEC_ASCII

    doc = {"t": mti, "7": "1124101500", "11": stan, "41": "TILL0001", "42": "STORE0000000001",
           **{k.lstrip("f"): v for k, v in fields.items()}}
    data, _ = iso8583.encode(doc, SPEC_ASCII)
    return bytes(data)


def iso_fields(payload: bytes) -> dict[str, str]:
    import iso8583

    from protocols.isospec import SPEC_ASCII

    doc, _ = iso8583.decode(payload, SPEC_ASCII)
    return doc


@pytest_twisted.ensureDeferred
async def test_iso8583_session_over_a_serial_line(ledger, tmp_path):  # noqa: F811
    card = await ledger.issue("gift")
    async with serial_line(ledger, tmp_path, protocol="iso8583") as rig:
        line = rig.line

        async def exchange(message: bytes) -> dict[str, str]:
            line.write(frame(message))
            await line.expect(ACK)
            return iso_fields(await line.read_frame())

        r = await exchange(iso_message("0800", "000001", f70="001"))
        assert (r["t"], r["11"], r["39"]) == ("0810", "000001", "00")
        r = await exchange(iso_message("0200", "000002", f2=card, f3="900060",
                                       f4="000000005000", f49="840"))
        assert (r["t"], r["39"], r["4"]) == ("0210", "00", "000000005000")
        assert r["2"] != card and r["2"].endswith(card[-4:])  # masked echo
        redeem = iso_message("0200", "000003", f2=card, f3="006000", f4="000000001250",
                             f49="840")
        first = await exchange(redeem)
        assert (first["39"], first["4"]) == ("00", "000000001250")
        assert (await exchange(redeem)) == first  # a retransmission: same answer, no change
        assert (await ledger.show(card)).balance == 3750
        r = await exchange(iso_message("0200", "000004", f2=card, f3="316000", f49="840"))
        assert r["39"] == "00" and r["54"].endswith("C000000003750")
        # A message that decodes but cannot be mapped gets 30 with its STAN.
        r = await exchange(iso_message("0200", "000005", f2=card, f3="006000", f49="840"))
        assert (r["t"], r["11"], r["39"]) == ("0210", "000005", "30")
        # One that cannot even be addressed (no MTI, no STAN) is ACKed, logged and not answered.
        line.write(frame(b"NOT AN ISO MESSAGE"))
        await line.expect(ACK)
        await line.quiet(0.2)


@pytest_twisted.ensureDeferred
async def test_ack_nak_stays_on_for_serial_lines(ledger, tmp_path):  # noqa: F811
    async with serial_line(ledger, tmp_path, ack=False) as rig:
        r = await rig.line.request(tgl_request(id="1", op="echo", **TERM))  # expects the ACKs
        assert r == {"id": "1", "rc": "00"}


def test_iso_serial_listener_with_binary_bitmap_is_refused():
    with open("config/tillgate.toml", "rb") as f:
        data = tomllib.load(f)
    data["listeners"].append({"name": "com2", "protocol": "iso8583", "transport": "serial",
                              "device": "/dev/ttyS1", "bitmap": "binary"})
    with pytest.raises(ConfigError, match="bitmap: serial lines frame with STX/ETX"):
        parse_config(data)
    data["listeners"][-1]["bitmap"] = "ascii"
    assert parse_config(data).listeners[-1].device == "/dev/ttyS1"


@pytest_twisted.ensureDeferred
async def test_a_frame_past_its_deadline_is_dropped_and_the_line_stays(ledger,  # noqa: F811
                                                                         tmp_path):
    """Issue 12: a frame begun and never finished (a cable pulled mid-frame, a till that
    trickles) is dropped `frame_timeout` s after its STX; the port stays open for the next."""
    async with serial_line(ledger, tmp_path, frame_timeout=1) as rig:
        rig.line.write(frame(tgl_request(id="1", op="echo", **TERM))[:12])
        line_protocol = next(iter(rig.service.connections))
        await until(lambda: line_protocol.counts.get("frame_timeouts") == 1, timeout=5.0)
        assert not line_protocol.receiver.in_frame
        assert rig.service.is_open
        r = await rig.line.request(tgl_request(id="2", op="echo", **TERM))
        assert r == {"id": "2", "rc": "00"}

"""`tillgate sim <op>`: one request from the command line, against real gateways (the plugin's
subprocess fixtures), over every framing of HOST-SPEC 1, TGL/1, and serial lines (a null-modem
cable made of two real pseudo-terminals)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import tty

import pytest

from gateway.sim import Till
from gateway.sim.target import target_from_config


def sim(gateway, *args: str, config=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "sim", *args,
         "--config", str(config or gateway.config_path)],
        capture_output=True, text=True, timeout=60)


def test_activate_redeem_balance_print_a_masked_table_and_json(tillgate_gateway):
    card = tillgate_gateway.issue_card("gift").number
    activate = sim(tillgate_gateway, "activate", "--card", card, "--amount", "25.00")
    assert activate.returncode == 0, activate.stderr
    redeem = sim(tillgate_gateway, "redeem", "--card", card, "--amount", "12.5")
    assert redeem.returncode == 0, redeem.stderr
    out = redeem.stdout
    assert "00 approved" in out and "balance            12.50" in out
    assert card not in out and f"{card[:6]}*********{card[-4:]}" in out
    balance = sim(tillgate_gateway, "balance", "--card", card, "--json")
    shown = json.loads(balance.stdout)
    assert (shown["rc"], shown["balance"], shown["op"]) == ("00", 1250, "balance")
    assert card not in balance.stdout


def test_declines_exit_1_and_bad_input_exits_2(tillgate_gateway):
    card = tillgate_gateway.issue_card("gift").number
    declined = sim(tillgate_gateway, "redeem", "--card", card, "--amount", "1.00")
    assert declined.returncode == 1 and "78 card not active" in declined.stdout
    for bad in (["redeem", "--card", card, "--amount", "1.005"],
                ["redeem", "--card", card, "--amount", "-1"],
                ["redeem", "--card", card],
                ["redeem", "--card", card, "--amount", "1", "--pin", "12x4"],
                ["void", "--card", card, "--orig", "000001"]):
        result = sim(tillgate_gateway, *bad)
        assert result.returncode == 2 and result.stderr.startswith("tillgate: "), bad
        assert "Traceback" not in result.stderr


def test_tgl_and_a_void_named_from_the_command_line(tillgate_gateway):
    card = tillgate_gateway.issue_card("gift").number
    assert sim(tillgate_gateway, "activate", "--protocol", "tgl", "--card", card,
               "--amount", "10").returncode == 0
    sale = json.loads(sim(tillgate_gateway, "redeem", "--protocol", "tgl", "--card", card,
                          "--amount", "4.00", "--json").stdout)
    assert (sale["rc"], sale["balance"]) == ("00", 600)
    void = sim(tillgate_gateway, "void", "--protocol", "tgl", "--card", card, "--orig",
               sale["seq"], "--json")
    assert json.loads(void.stdout)["balance"] == 1000
    iso_sale = json.loads(sim(tillgate_gateway, "redeem", "--card", card, "--amount", "3",
                              "--json").stdout)
    iso_void = sim(tillgate_gateway, "void", "--card", card, "--amount", "3",
                   "--orig", iso_sale["seq"], "--orig-time", iso_sale["request"]["7"], "--json")
    assert iso_void.returncode == 0, iso_void.stdout + iso_void.stderr
    assert json.loads(iso_void.stdout)["balance"] == 1000


EXTRA_LISTENERS = """
[[listeners]]
name = "iso4a"
protocol = "iso8583"
transport = "tcp"
host = "127.0.0.1"
port = {len4a}
framing = "len4a"

[[listeners]]
name = "isotpdu"
protocol = "iso8583"
transport = "tcp"
host = "127.0.0.1"
port = {tpdu}
framing = "tpdu"
bitmap = "binary"

[[listeners]]
name = "linenoack"
protocol = "line"
transport = "tcp"
host = "127.0.0.1"
port = {noack}
ack = false
"""


@pytest.fixture(scope="module")
def framings_gateway(tmp_path_factory, tillgate_base_config):
    from gateway.embedded_redis import free_port
    from gateway.pytest_plugin import start_gateway

    ports = {"len4a": free_port(), "tpdu": free_port(), "noack": free_port()}
    gateway = start_gateway(tmp_path_factory.mktemp("framings"), tillgate_base_config,
                            EXTRA_LISTENERS.format(**ports))
    yield gateway
    gateway.stop()


@pytest.mark.parametrize("listener", ["iso", "iso4a", "isotpdu", "line", "linenoack"])
def test_every_framing_through_the_cli(framings_gateway, listener):
    card = framings_gateway.issue_card("gift").number
    protocol = "tgl" if listener.startswith("line") else "iso"
    args = ["--listener", listener, "--protocol", protocol, "--json"]
    assert sim(framings_gateway, "activate", "--card", card, "--amount", "9.99",
               *args).returncode == 0
    shown = json.loads(sim(framings_gateway, "balance", "--card", card, *args).stdout)
    assert (shown["rc"], shown["balance"]) == ("00", 999)


class NullModem:
    """Two pseudo-terminals whose masters are joined by a thread: a serial cable between the
    device the gateway opens and the device the simulator opens."""

    def __init__(self):
        self.a_master, self.a_slave = os.openpty()
        self.b_master, self.b_slave = os.openpty()
        for fd in (self.a_slave, self.b_slave):
            tty.setraw(fd)
        self.a_path, self.b_path = os.ttyname(self.a_slave), os.ttyname(self.b_slave)
        self.stop_r, self.stop_w = os.pipe()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        peers = {self.a_master: self.b_master, self.b_master: self.a_master}
        while True:
            ready, _, _ = select.select([*peers, self.stop_r], [], [])
            if self.stop_r in ready:
                return
            for fd in ready:
                try:
                    os.write(peers[fd], os.read(fd, 4096))
                except OSError:
                    pass

    def close(self):
        os.write(self.stop_w, b"x")
        self.thread.join(5)
        for fd in (self.a_master, self.a_slave, self.b_master, self.b_slave, self.stop_r,
                   self.stop_w):
            os.close(fd)


@pytest.mark.parametrize("protocol", ["iso8583", "line"])
def test_serial_lines_iso_and_tgl(tillgate_gateway_factory, protocol):
    modem = NullModem()
    try:
        gateway = tillgate_gateway_factory(extra=f"""
[[listeners]]
name = "com1"
protocol = "{protocol}"
transport = "serial"
device = "{modem.a_path}"
baud = 9600
""")
        target = target_from_config(gateway.config, listener="com1",
                                    protocol="iso" if protocol == "iso8583" else "tgl")
        target = target.with_overrides(device=modem.b_path, retry_interval=1.0)
        assert target.framing == "stxetx" and target.ack
        card = gateway.issue_card("gift").number
        with Till(target, config=gateway.config, timeout=10) as till:
            assert till.activate(card, 1500).reply.rc == "00"
            sale = till.redeem(card, 500)
            assert (sale.reply.rc, sale.reply.balance) == ("00", 1000)
            assert till.link.acks >= 2  # every request was ACKed by the gateway
        result = sim(gateway, "balance", "--card", card, "--listener", "com1", "--protocol",
                     "iso" if protocol == "iso8583" else "tgl", "--device", modem.b_path,
                     "--json")
        assert json.loads(result.stdout)["balance"] == 1000, result.stderr
    finally:
        modem.close()


@pytest.mark.parametrize("protocol, source, make", [
    ("iso", "--track2", lambda c: f";{c}=4912101000000?"),
    ("tgl", "--track2", lambda c: f";{c}=4912101000000?"),
    ("iso", "--barcode", lambda c: f"tillgate:card/{c}"),
    ("tgl", "--barcode", lambda c: f"tillgate:card/{c}"),
    ("tgl", "--swipe", lambda c: f"%B{c}^GIFT/CARD^4912101?;{c}=4912101000000?\r"),
])
def test_card_data_as_a_reader_gives_it(tillgate_gateway, protocol, source, make):
    card = tillgate_gateway.issue_card("gift").number
    assert sim(tillgate_gateway, "activate", "--card", card, "--amount", "3").returncode == 0
    result = sim(tillgate_gateway, "balance", source, make(card), "--protocol", protocol)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "balance            3.00" in result.stdout or "balance        3.00" in result.stdout
    assert card not in result.stdout and "(not shown)" in result.stdout
    as_json = sim(tillgate_gateway, "balance", source, make(card), "--protocol", protocol,
                  "--json")
    assert card not in as_json.stdout and json.loads(as_json.stdout)["balance"] == 300


def test_a_swipe_is_refused_over_iso(tillgate_gateway):
    result = sim(tillgate_gateway, "balance", "--swipe", ";6039530000000000018=49?")
    assert result.returncode == 2 and "not a whole swipe" in result.stderr

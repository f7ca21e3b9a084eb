"""The simulator over TLS (HOST-SPEC 1: a listener may require TLS): a real TLS server on a real
socket, with certificates made by the openssl command for the test; and, where the gateway's own
TLS can run (pyOpenSSL installed), the real gateway."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gateway.sim import Till
from gateway.sim.load import LoadRun, LoadSettings, parse_mix
from gateway.sim.target import Target
from protocols import isocodec
from protocols.framing import Deframer, frame
from protocols.isospec import SPEC_ASCII

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class TlsIsoHost:
    """A TLS listener answering every ISO 8583 request 00 with a balance of 12.34."""

    def __init__(self, cert: Path, key: Path):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(raw,), daemon=True).start()

    def _session(self, raw: socket.socket) -> None:
        try:
            with self.context.wrap_socket(raw, server_side=True) as conn:
                deframer = Deframer("len2b", 65535)
                while data := conn.recv(65536):
                    for f in deframer.feed(data):
                        req = isocodec.decode(f.payload, SPEC_ASCII)
                        resp = {"t": req["t"][:2] + "1" + req["t"][3], "11": req["11"],
                                "41": req["41"], "39": "00", "54": "6002840C000000001234"}
                        conn.sendall(frame(isocodec.encode(resp, SPEC_ASCII)))
        except (ssl.SSLError, OSError):
            pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def tls_host(tmp_path):
    cert, key = self_signed(tmp_path, "host")
    host = TlsIsoHost(cert, key)
    yield host, cert
    host.close()


def test_a_till_and_a_load_run_over_tls(tls_host, tmp_path):
    host, cert = tls_host
    target = Target(protocol="iso", port=host.port).with_overrides(tls_ca=str(cert))
    assert target.tls
    with Till(target) as till:
        reply = till.balance("6039530000000000018").reply
    assert (reply.rc, reply.balance) == ("00", 1234)
    settings = LoadSettings(connections=2, depth=4, duration=0.5, mix=parse_mix("balance"))
    stats = LoadRun(target, settings, [("TILL0001", "STORE0000000001")],
                    ["6039530000000000018"]).run_blocking()
    assert stats.completed > 10 and not stats.errors and set(stats.codes) == {"00"}


def test_an_untrusted_certificate_is_refused(tls_host, tmp_path):
    host, _cert = tls_host
    other, _ = self_signed(tmp_path, "other")
    target = Target(protocol="iso", port=host.port).with_overrides(tls_ca=str(other))
    with pytest.raises(ssl.SSLCertVerificationError):
        Till(target)


def test_the_gateway_itself_over_tls(tillgate_gateway_factory, tmp_path):
    pytest.importorskip("OpenSSL", reason="the gateway's TLS needs pyOpenSSL")
    from gateway.embedded_redis import free_port

    cert, key = self_signed(tmp_path, "gateway")
    gateway = tillgate_gateway_factory(extra=f"""
[[listeners]]
name = "isotls"
protocol = "iso8583"
transport = "tcp"
host = "127.0.0.1"
port = {free_port()}
tls = {{ cert = "{cert}", key = "{key}" }}
""")
    card = gateway.issue_card("gift").number
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "sim", "activate", "--card", card, "--amount",
         "4.00", "--listener", "isotls", "--json", "--config", str(gateway.config_path)],
        capture_output=True, text=True, timeout=60)
    assert json.loads(result.stdout)["balance"] == 400, result.stderr

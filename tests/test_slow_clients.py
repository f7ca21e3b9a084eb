"""Issue 12 part 4: slow and many clients, and requests during shutdown, against a real
`tillgate serve` subprocess over real sockets.

- a frame trickled one byte at a time is cut off `frame_timeout` s after its first byte;
- connections past `max_connections` (per listener) or `max_connections_per_source` are closed
  at once and counted; the listen backlog is the configured one;
- a request that arrives after SIGTERM, on a connection opened before, is answered 91 at once
  (while a request already in flight keeps the gateway draining).
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time

from linetill import STX, tgl_request
from wireclients import LineClient

from gateway.sim.isoclient import IsoClient
from gateway.testing import GatewayProcess
from protocols import isocodec
from protocols.isospec import spec_for_bitmap

SPEC = spec_for_bitmap("ascii")
TERM = {"term": "TILL0001", "merch": "STORE0000000001"}
ECHO = {"t": "0800", "7": "1124030000", "11": "000001", "70": "301"}
SALE = {"t": "0200", "2": "6039530000000000018", "3": "006000", "4": "000000001500",
        "11": "000002", "41": "TILL0001", "42": "STORE0000000001", "49": "840",
        "7": "1124030000", "12": "030000", "13": "1124", "22": "021", "37": "123456789012"}


def _gateway(tmp_path, redis_url: str, iso: str = "", line: str = "") -> GatewayProcess:
    """A gateway whose `iso` and `line` listeners get the extra settings given."""
    gateway = GatewayProcess.prepare(tmp_path, redis_url=redis_url)
    text = gateway.config_path.read_text()
    text = text.replace('name = "iso"\n', f'name = "iso"\n{iso}\n', 1)
    text = text.replace('name = "line"\n', f'name = "line"\n{line}\n', 1)
    gateway.config_path.write_text(text)
    return gateway.start()


def _metric(gateway: GatewayProcess, series: str) -> float:
    status, body = gateway.http_get("/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _metric_lines(gateway: GatewayProcess, family: str) -> list[str]:
    return [line for line in gateway.http_get("/metrics")[1].decode().splitlines()
            if line.startswith(family)]


def _closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> bool:
    """True when the peer closes `sock` within `seconds`; meanwhile a byte of `trickle` is
    sent every 0.3 s (each resets the gateway's idle timer)."""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.3)
    sent = 0
    while time.monotonic() < deadline:
        try:
            if not sock.recv(4096):
                return True
        except TimeoutError:
            pass
        except ConnectionResetError:
            return True
        if sent < len(trickle):
            try:
                sock.sendall(trickle[sent:sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                return True
            sent += 1
    return False


def test_a_frame_trickled_byte_by_byte_is_cut_off_at_its_deadline(tmp_path, redis_url):
    gateway = _gateway(tmp_path, redis_url, iso="frame_timeout = 1", line="frame_timeout = 1")
    try:
        message = isocodec.encode(ECHO, SPEC)
        iso_frame = len(message).to_bytes(2, "big") + message
        line_frame = bytes([STX]) + tgl_request(id="1", op="signon", **TERM)
        for port, trickle in ((gateway.ports["iso"], iso_frame),
                              (gateway.ports["line"], line_frame)):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                started = time.monotonic()
                assert _closed_within(sock, 8.0, trickle), "a trickled frame kept its connection"
                assert 0.9 < time.monotonic() - started < 5.0
        for listener in ("iso", "line"):
            assert _metric(gateway, f'tillgate_connections_closed_total{{listener="{listener}",'
                                    f'reason="frame_timeout"}}') == 1
        # A whole frame in good time is answered as ever.
        with IsoClient("127.0.0.1", gateway.ports["iso"]) as client:
            assert client.exchange(ECHO)["39"] == "00"
    finally:
        assert gateway.stop() == 0, gateway.log[-4000:]


def _answers_iso(sock_owner: IsoClient) -> bool:
    try:
        return sock_owner.exchange(ECHO)["39"] == "00"
    except (ConnectionError, TimeoutError):
        return False


def test_connections_past_each_cap_are_refused_and_counted(tmp_path, redis_url):
    gateway = _gateway(tmp_path, redis_url, iso="max_connections = 3\nbacklog = 777",
                       line="max_connections_per_source = 2")
    iso, line = gateway.ports["iso"], gateway.ports["line"]
    opened: list = []
    try:
        # The listener cap: three connections are served, the fourth is closed at once.
        for _ in range(3):
            opened.append(IsoClient("127.0.0.1", iso, timeout=5))
            assert _answers_iso(opened[-1])
        with socket.create_connection(("127.0.0.1", iso), timeout=5) as sock:
            assert _closed_within(sock, 5.0)
        assert _metric(gateway, 'tillgate_connections_refused_total{listener="iso",'
                                'reason="listener"}') == 1
        opened.pop().close()  # a place is free again
        deadline = time.monotonic() + 5
        while _metric(gateway, 'tillgate_open_connections{listener="iso"}') != 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        opened.append(IsoClient("127.0.0.1", iso, timeout=5))
        assert _answers_iso(opened[-1])

        # The source cap: two connections from 127.0.0.1, a third refused; 127.0.0.2 is
        # another source and is served.
        for i in range(2):
            till = LineClient(line, timeout=5)
            opened.append(till)
            assert till.batch([tgl_request(id=str(i), op="signon", **TERM)])[0]["rc"] == "00"
        with socket.create_connection(("127.0.0.1", line), timeout=5) as sock:
            assert _closed_within(sock, 5.0)
        with socket.create_connection(("127.0.0.1", line), timeout=5,
                                      source_address=("127.0.0.2", 0)) as sock:
            sock.sendall(b"\x02" + tgl_request(id="9", op="signon", **TERM) + b"\x03")
            assert not _closed_within(sock, 0.5)
        assert _metric(gateway, 'tillgate_connections_refused_total{listener="line",'
                                'reason="source"}') == 1

        # The backlog is the configured one (ss shows a listening socket's backlog as Send-Q).
        listing = subprocess.run(["ss", "-Hltn", f"sport = :{iso}"], capture_output=True,
                                 text=True, check=True).stdout
        assert re.search(r"LISTEN\s+\d+\s+777\s", listing), listing
    finally:
        for client in opened:
            client.close()
        assert gateway.stop() == 0, gateway.log[-4000:]


def _wait_for(condition, what, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what()
        time.sleep(0.02)


def test_requests_after_sigterm_are_answered_91_at_once(tmp_path, redis_url, redis_client):
    """Writes to Redis are paused, so one request on each listener stays in flight and keeps the
    stopping gateway draining; a request sent after SIGTERM is answered 91 within a second,
    not when Redis answers again (ISO 8583 and TGL/1)."""
    gateway = _gateway(tmp_path, redis_url)
    iso = IsoClient("127.0.0.1", gateway.ports["iso"], timeout=10)
    till = LineClient(gateway.ports["line"], timeout=10)
    paused = False
    try:
        assert iso.exchange(ECHO)["39"] == "00"
        assert till.batch([tgl_request(id="1", op="signon", **TERM)])[0]["rc"] == "00"
        redis_client.execute_command("CLIENT", "PAUSE", 8000, "WRITE")
        paused = True
        iso.send(SALE)
        till.send(tgl_request(id="2", op="redeem", card="6039530000000000018", amt="100", **TERM))
        _wait_for(lambda: _metric(gateway, 'tillgate_in_flight{listener="iso"}') == 1
                  and _metric(gateway, 'tillgate_in_flight{listener="line"}') == 1,
                  lambda: _metric_lines(gateway, "tillgate_in_flight"))
        assert gateway.process is not None
        gateway.process.send_signal(signal.SIGTERM)
        _wait_for(lambda: "received SIGTERM" in gateway.log, lambda: gateway.log[-4000:])

        started = time.monotonic()
        iso.send({**ECHO, "11": "000003"})
        iso.send({**SALE, "11": "000004"})
        answers = {iso.receive()["11"]: None for _ in range(0)}
        for _ in range(2):
            answer = iso.receive()
            answers[answer["11"]] = answer["39"]
        assert answers == {"000003": "91", "000004": "91"}
        assert time.monotonic() - started < 1.0
        started = time.monotonic()
        till.send(tgl_request(id="3", op="redeem", card="6039530000000000018", amt="100", **TERM))
        assert till.receive() == {"id": "3", "rc": "91"}
        assert time.monotonic() - started < 1.0

        redis_client.execute_command("CLIENT", "UNPAUSE")
        paused = False
        assert iso.receive()["11"] == "000002"  # the requests in flight are still answered
        assert till.receive()["id"] == "2"
    finally:
        if paused:
            redis_client.execute_command("CLIENT", "UNPAUSE")
        iso.close()
        till.close()
        assert gateway.stop() == 0, gateway.log[-4000:]

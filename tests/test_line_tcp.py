"""TGL/1 over real TCP sockets against the real Processor and redis-server.

A till session (sign-on, activate, redeem, void, balance), noise, a bad LRC, retransmissions that
must not double a redemption, a till that never ACKs, and a listener with ACK/NAK off.
"""

from __future__ import annotations

import contextlib
import dataclasses

import pytest_twisted
from linetill import ACK, NAK, TcpTill, frame, tgl_fields, tgl_request
from test_ledger_support import ledger  # noqa: F401  (fixture)
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from gateway.config.model import Listener
from gateway.listeners.line import LineTCPService

TERM = {"term": "TILL0001", "merch": "STORE0000000001"}


@contextlib.asynccontextmanager
async def tcp_line(ledger, **overrides):  # noqa: F811
    """A LineTCPService on a free port (listener `line` with `overrides`) and a till connected
    to it; yields (service, the till's line) and stops the service afterwards."""
    base = next(lst for lst in ledger.config.listeners if lst.protocol == "line")
    listener: Listener = dataclasses.replace(base, port=0, **overrides)
    service = LineTCPService(reactor, listener, ledger.processor, ledger.config)
    await service.start()
    try:
        till = TcpTill(reactor)
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", service.bound_port), till)
        yield service, till.line
    finally:
        await service.stop()


async def session(line, card: str) -> None:
    """The till session every transport must carry the same way."""
    r = await line.request(tgl_request(id="1", op="signon", **TERM))
    assert r == {"id": "1", "rc": "00"}
    r = await line.request(tgl_request(id="2", op="activate", card=card, amt="5000", **TERM))
    assert (r["id"], r["rc"], r["amt"], r["bal"]) == ("2", "00", "5000", "5000")
    assert len(r["auth"]) == 6
    r = await line.request(tgl_request(id="3", op="redeem", card=card, amt="1250", **TERM))
    assert (r["rc"], r["amt"], r["bal"]) == ("00", "1250", "3750")
    r = await line.request(tgl_request(id="4", op="void", card=card, orig="3", **TERM))
    assert (r["rc"], r["bal"]) == ("00", "5000")
    r = await line.request(tgl_request(id="5", op="balance", card=card, **TERM))
    assert (r["id"], r["rc"], r["bal"]) == ("5", "00", "5000")


@pytest_twisted.ensureDeferred
async def test_till_session(ledger):  # noqa: F811
    card = await ledger.issue("gift")
    async with tcp_line(ledger) as (service, line):
        await session(line, card)
        await line.quiet(0.1)


@pytest_twisted.ensureDeferred
async def test_noise_bad_lrc_and_retransmissions_redeem_once(ledger):  # noqa: F811
    card = await ledger.issue("gift", activate=5000)
    async with tcp_line(ledger) as (service, line):
        redeem = frame(tgl_request(id="10", op="redeem", card=card, amt="1000", **TERM))
        # Noise, then the frame with a broken LRC: NAK, nothing redeemed.
        line.write(b"\r\n\x00\xffAT" + redeem[:-1] + bytes([redeem[-1] ^ 0x5A]))
        await line.expect(NAK)
        # The retransmission, sent twice back to back (the till missed our ACK).
        line.write(redeem + redeem)
        await line.expect(ACK)
        await line.expect(ACK)
        first = tgl_fields(await line.read_frame())
        assert (first["rc"], first["bal"]) == ("00", "4000")
        await line.quiet(0.2)  # one request, one answer
        [proto] = service.connections
        assert proto.counts["joined"] == 1 and proto.counts["bad_lrc"] == 1
        # Once more after the answer: the ledger repeats its answer and changes nothing.
        line.write(redeem)
        await line.expect(ACK)
        again = tgl_fields(await line.read_frame())
        assert again == first
        r = await line.request(tgl_request(id="11", op="balance", card=card, **TERM))
        assert r["bal"] == "4000"
        assert (await ledger.show(card)).balance == 4000
        # Same id, other content: 94.
        r = await line.request(tgl_request(id="10", op="redeem", card=card, amt="5", **TERM))
        assert r["rc"] == "94"


@pytest_twisted.ensureDeferred
async def test_unacknowledged_response_is_retried_then_given_up(ledger):  # noqa: F811
    card = await ledger.issue("gift", activate=700)
    async with tcp_line(ledger, retries=2, retry_interval=0.1) as (service, line):
        line.write(frame(tgl_request(id="20", op="balance", card=card, **TERM)))
        await line.expect(ACK)
        sent = [await line.read_frame(ack=None) for _ in range(3)]  # first + 2 retries, no ACK
        assert sent[0] == sent[1] == sent[2]
        assert tgl_fields(sent[0])["bal"] == "700"
        await line.quiet(0.3)  # given up
        [proto] = service.connections
        assert proto.counts["given_up"] == 1
        # The line still works afterwards.
        r = await line.request(tgl_request(id="21", op="balance", card=card, **TERM))
        assert r["rc"] == "00"


@pytest_twisted.ensureDeferred
async def test_nak_of_a_response_gets_it_again(ledger):  # noqa: F811
    card = await ledger.issue("gift", activate=300)
    async with tcp_line(ledger) as (service, line):
        line.write(frame(tgl_request(id="30", op="balance", card=card, **TERM)))
        await line.expect(ACK)
        first = await line.read_frame(ack=False)  # NAK it
        assert await line.read_frame() == first


@pytest_twisted.ensureDeferred
async def test_ack_off_listener(ledger):  # noqa: F811
    card = await ledger.issue("gift")
    async with tcp_line(ledger, ack=False) as (service, line):
        r = await line.request(tgl_request(id="1", op="activate", card=card, amt="900", **TERM),
                               handshake=False)
        assert (r["rc"], r["bal"]) == ("00", "900")
        bad = frame(tgl_request(id="2", op="redeem", card=card, amt="100", **TERM))
        line.write(bad[:-1] + bytes([bad[-1] ^ 1]))  # dropped, no NAK
        await line.quiet(0.2)
        r = await line.request(tgl_request(id="3", op="balance", card=card, **TERM),
                               handshake=False)
        assert r["bal"] == "900"
        await line.quiet(0.1)  # our ACK-less response is never retransmitted


@pytest_twisted.ensureDeferred
async def test_format_error_and_oversize(ledger):  # noqa: F811
    async with tcp_line(ledger, max_frame=256) as (service, line):
        r = await line.request(tgl_request(id="40", op="redeem", card="6039530000000000006",
                                           amt="1.00", **TERM))
        assert r == {"id": "40", "rc": "30"}
        line.write(b"\x02" + b"A" * 300)
        try:
            await line.read_byte()
        except ConnectionError:
            pass
        assert line.closed


def test_the_daemon_serves_tgl_on_its_line_port(tmp_path, redis_url):
    """`tillgate serve` with the default config: TGL/1 with ACK/NAK on the `line` port."""
    import socket

    from gateway.testing import GatewayProcess

    gateway = GatewayProcess.prepare(tmp_path, redis_url=redis_url).start()
    try:
        with socket.create_connection(("127.0.0.1", gateway.ports["line"]), timeout=5) as s:
            def exchange(payload: bytes) -> dict[str, str]:
                s.sendall(frame(payload))
                data = b""
                while len(data) < 2 or data[-2] != 0x03:
                    data += s.recv(4096)
                assert data[:1] == bytes([ACK])
                s.sendall(bytes([ACK]))
                return tgl_fields(data[2:-2])

            assert exchange(tgl_request(id="1", op="signon", **TERM)) == {"id": "1", "rc": "00"}
            r = exchange(tgl_request(id="2", op="balance", card="6039530000000000001", **TERM))
            assert r["id"] == "2" and r["rc"] in ("14", "78")  # a number never issued
        status, body = gateway.http_get("/metrics")
        assert 'tillgate_messages_in_total{listener="line",mti="signon"} 1.0' in body.decode()
    finally:
        assert gateway.stop() == 0, gateway.log

"""ISO 8583 over real TCP sockets into an in-process gateway and the session's redis-server."""

from __future__ import annotations

import socket
import struct

import pytest_twisted
from isohelpers import in_thread, new_card

from gateway.sim.isoclient import IsoClient
from protocols import isocodec
from protocols.framing import frame
from protocols.isobuild import StanCounter, request_fields, reversal_fields
from protocols.isospec import SPEC_ASCII
from protocols.model import Op

TILL = {"terminal": "TILL0001", "merchant": "STORE0000000001"}


@pytest_twisted.async_fixture
async def gateway(tillgate_inprocess_factory, redis_url):
    return (await tillgate_inprocess_factory(redis_url=redis_url)).gateway


def iso_port(gw) -> int:
    return gw.listeners[0].bound_port


def till(gw, **kwargs) -> IsoClient:
    return IsoClient("127.0.0.1", iso_port(gw), **kwargs)


def one_exchange(gw, fields: dict) -> dict:
    """A till that connects, sends one request, reads its answer and hangs up."""
    with till(gw) as c:
        return c.exchange(fields)


@pytest_twisted.ensureDeferred
async def test_sign_on_activate_redeem_balance_over_tcp(gateway):
    card, _ = await new_card(gateway)
    stans = StanCounter()

    def session():
        with till(gateway) as c:
            out = [c.exchange(request_fields(Op.SIGNON, stan=stans.next(), **TILL))]
            out.append(c.exchange(request_fields(Op.ACTIVATE, card=card, amount=5000,
                                                 stan=stans.next(), currency="840", **TILL)))
            out.append(c.exchange(request_fields(Op.REDEEM, card=card, amount=1250,
                                                 stan=stans.next(), **TILL)))
            out.append(c.exchange(request_fields(Op.BALANCE, card=card, stan=stans.next(),
                                                 **TILL)))
            return out

    signon, activate, redeem, balance = await in_thread(session)
    assert (signon["t"], signon["39"]) == ("0810", "00")
    assert (activate["t"], activate["39"]) == ("0210", "00")
    assert redeem["39"] == "00" and len(redeem["38"]) == 6
    assert redeem["4"] == "000000001250"
    assert balance["39"] == "00"
    assert balance["54"].endswith("C000000003750")
    assert balance["2"] != card and balance["2"][:6] == card[:6] and balance["2"][-4:] == card[-4:]
    for response in (activate, redeem, balance):
        assert response["41"] == "TILL0001" and response["42"] == "STORE0000000001"


@pytest_twisted.ensureDeferred
async def test_retransmission_and_reversal_do_not_double(gateway):
    card, _ = await new_card(gateway)

    def session():
        with till(gateway) as c:
            c.exchange(request_fields(Op.ACTIVATE, card=card, amount=2000, stan="000001", **TILL))
            sale = request_fields(Op.REDEEM, card=card, amount=500, stan="000002", **TILL)
            first = c.exchange(sale)
            again = c.exchange(sale)  # the till did not see the first answer
            reversal = c.exchange(reversal_fields(sale, stan="000003"))
            repeat = c.exchange(reversal_fields(sale, stan="000003", repeat=True,
                                                transmitted=reversal["7"]))
            balance = c.exchange(request_fields(Op.BALANCE, card=card, stan="000004", **TILL))
            return first, again, reversal, repeat, balance

    first, again, reversal, repeat, balance = await in_thread(session)
    assert first["39"] == again["39"] == "00" and first["38"] == again["38"]
    assert (reversal["t"], reversal["39"]) == ("0410", "00")
    assert (repeat["t"], repeat["39"]) == ("0410", "00")
    assert balance["54"].endswith("C000000002000")


@pytest_twisted.ensureDeferred
async def test_a_reversal_whose_field_4_differs_is_13(gateway):
    """HOST-SPEC 1.1, 2.6: a reversal of amount 1 must not undo a sale of 4.00."""
    card, _ = await new_card(gateway)

    def session():
        with till(gateway) as c:
            c.exchange(request_fields(Op.ACTIVATE, card=card, amount=2000, stan="000001", **TILL))
            sale = request_fields(Op.REDEEM, card=card, amount=400, stan="000002", **TILL)
            assert c.exchange(sale)["39"] == "00"
            wrong = {**reversal_fields(sale, stan="000003"), "4": "000000000001"}
            refused = c.exchange(wrong)
            right = c.exchange(reversal_fields(sale, stan="000004"))
            return refused, right

    refused, right = await in_thread(session)
    assert (refused["t"], refused["39"]) == ("0410", "13")
    assert right["39"] == "00"
    assert (await _show(gateway, card)).balance == 2000


@pytest_twisted.ensureDeferred
async def test_unknown_terminal_gets_58(gateway):
    card, _ = await new_card(gateway)
    response = await in_thread(lambda: one_exchange(gateway, request_fields(
        Op.BALANCE, card=card, stan="000001", terminal="NOPE0001", merchant="STORE0000000001")))
    assert response["39"] == "58"


@pytest_twisted.ensureDeferred
async def test_malformed_messages_get_30_or_a_closed_connection(gateway):
    def session():
        with till(gateway) as c:
            # Non-numeric amount: MTI and STAN readable -> 30 echoing what it can.
            bad = request_fields(Op.REDEEM, card="6039530000000000018", amount=100,
                                 stan="000009", **TILL)
            payload = isocodec.encode(bad, SPEC_ASCII).replace(b"000000000100", b"00000000010X")
            c.send_raw(payload)
            answered = c.receive()
            # Then garbage with no readable MTI: the connection is closed.
            c.send_raw(b"\xff\xfe garbage")
            try:
                c.receive_frame()
            except (ConnectionError, OSError):
                return answered, True
            return answered, False

    answered, closed = await in_thread(session)
    assert (answered["t"], answered["11"], answered["39"]) == ("0210", "000009", "30")
    assert closed
    # The listener survives: a new connection still answers.
    response = await in_thread(lambda: one_exchange(
        gateway, request_fields(Op.ECHO, stan="000010", **TILL)))
    assert response["39"] == "00"


@pytest_twisted.ensureDeferred
async def test_oversized_and_zero_length_frames_close_the_connection(gateway):
    def closes(header: bytes) -> bool:
        with socket.create_connection(("127.0.0.1", iso_port(gateway)), timeout=5) as s:
            s.sendall(header)
            return s.recv(10) == b""

    assert await in_thread(closes, struct.pack(">H", 5000))
    assert await in_thread(closes, struct.pack(">H", 0))


@pytest_twisted.ensureDeferred
async def test_frames_fed_byte_by_byte(gateway):
    card, _ = await new_card(gateway)

    def session():
        with socket.create_connection(("127.0.0.1", iso_port(gateway)), timeout=5) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            message = frame(isocodec.encode(request_fields(Op.BALANCE, card=card, stan="000001",
                                                           **TILL), SPEC_ASCII))
            for i in range(len(message)):
                s.sendall(message[i:i + 1])
            header = s.recv(2, socket.MSG_WAITALL)
            body = s.recv(struct.unpack(">H", header)[0], socket.MSG_WAITALL)
            return isocodec.decode(body, SPEC_ASCII)

    response = await in_thread(session)
    assert response["39"] == "78"  # issued, not yet active


@pytest_twisted.ensureDeferred
async def test_a_thousand_requests_in_flight_on_one_connection(gateway):
    card, _ = await new_card(gateway)

    def session():
        with till(gateway) as c:
            c.exchange(request_fields(Op.ACTIVATE, card=card, amount=100000, stan="000001",
                                      **TILL))
            for n in range(1000):
                c.send(request_fields(Op.REDEEM, card=card, amount=1, stan=f"{n + 2:06d}",
                                      **TILL))
            return [c.receive() for _ in range(1000)]

    responses = await in_thread(session)
    assert sorted(r["11"] for r in responses) == [f"{n + 2:06d}" for n in range(1000)]
    assert all(r["39"] == "00" for r in responses)
    view = await _show(gateway, card)
    assert view.balance == 100000 - 1000


@pytest_twisted.ensureDeferred
async def test_a_till_that_disconnects_mid_request_loses_nothing(gateway):
    card, _ = await new_card(gateway)

    def session():
        with till(gateway) as c:
            c.exchange(request_fields(Op.ACTIVATE, card=card, amount=1000, stan="000001",
                                      **TILL))
        c = till(gateway)
        sale = request_fields(Op.REDEEM, card=card, amount=300, stan="000002", **TILL)
        c.send(sale)
        c.close()  # gone before the answer
        with till(gateway) as c2:  # it comes back and retransmits
            return c2.exchange(sale)

    response = await in_thread(session)
    assert response["39"] == "00"
    assert (await _show(gateway, card)).balance == 700


@pytest_twisted.ensureDeferred
async def test_tpdu_framing_swaps_source_and_destination(tillgate_inprocess_factory, redis_url):
    gw = (await tillgate_inprocess_factory(redis_url=redis_url, framing="tpdu")).gateway

    def session():
        with till(gw, framing="tpdu", tpdu=bytes.fromhex("6000120034")) as c:
            c.send(request_fields(Op.ECHO, stan="000001", **TILL))
            return c.receive_frame()

    reply = await in_thread(session)
    assert reply.tpdu == bytes.fromhex("6000340012")
    assert isocodec.decode(reply.payload, SPEC_ASCII)["39"] == "00"


@pytest_twisted.ensureDeferred
async def test_load_is_shed_with_91_beyond_max_in_flight(tillgate_inprocess_factory, redis_url):
    gw = (await tillgate_inprocess_factory(redis_url=redis_url, max_in_flight=1)).gateway
    card, _ = await new_card(gw)

    def session():
        with till(gw) as c:
            for n in range(50):
                c.send(request_fields(Op.BALANCE, card=card, stan=f"{n + 1:06d}", **TILL))
            return [c.receive()["39"] for _ in range(50)]

    codes = await in_thread(session)
    assert "91" in codes and set(codes) <= {"91", "78"}


async def _show(gw, card):
    from gateway.ledger.cards import show_card
    from gateway.reactor import deferred_from_coro

    return await deferred_from_coro(show_card(gw.store_service.store, card))

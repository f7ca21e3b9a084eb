"""TLS on the gateway's listeners, with real sockets and certificates made for the test: ISO 8583
over TLS, mutual TLS (a client without a certificate is refused), HTTPS for the admin listener."""

from __future__ import annotations

import asyncio
import json
import ssl

import pytest
import pytest_twisted
from tls_material import make_tls_files

from gateway.reactor import deferred_from_coro
from gateway.sim.isoclient import IsoClient
from protocols import isobuild
from protocols.model import Op


def tls_table(files, ca: bool = False) -> dict[str, str]:
    table = {"cert": str(files.cert), "key": str(files.key)}
    if ca:
        table["ca"] = str(files.ca)
    return table


def client_context(files, with_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(files.ca))
    if with_cert:
        context.load_cert_chain(str(files.client_cert), str(files.client_key))
    return context


def iso_echo(port: int, context: ssl.SSLContext) -> dict[str, str]:
    client = IsoClient("127.0.0.1", port, timeout=5)
    client.sock = context.wrap_socket(client.sock, server_hostname="localhost")
    with client:
        return client.exchange(isobuild.request_fields(
            Op.ECHO, terminal="TILL0001", merchant="STORE0000000001", stan="000001"))


async def in_thread(fn, *args):
    return await deferred_from_coro(asyncio.to_thread(fn, *args))


@pytest_twisted.ensureDeferred
async def test_iso_over_tls(tillgate_inprocess_factory, tmp_path):
    files = make_tls_files(tmp_path)
    gw = await tillgate_inprocess_factory(tls=tls_table(files))
    answer = await in_thread(iso_echo, gw.port("iso"), client_context(files, False))
    assert (answer["t"], answer["39"]) == ("0810", "00")
    plain = ssl.create_default_context()  # the system's roots do not know our test CA
    with pytest.raises(ssl.SSLError):
        await in_thread(iso_echo, gw.port("iso"), plain)


@pytest_twisted.ensureDeferred
async def test_mutual_tls_refuses_a_client_without_a_certificate(tillgate_inprocess_factory,
                                                                  tmp_path):
    files = make_tls_files(tmp_path)
    gw = await tillgate_inprocess_factory(tls=tls_table(files, ca=True))
    answer = await in_thread(iso_echo, gw.port("iso"), client_context(files, True))
    assert answer["39"] == "00"
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        await in_thread(iso_echo, gw.port("iso"), client_context(files, False))


def https_get(port: int, path: str, context: ssl.SSLContext) -> tuple[int, dict]:
    import http.client

    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


@pytest_twisted.ensureDeferred
async def test_admin_http_over_tls(tillgate_inprocess_factory, tmp_path):
    files = make_tls_files(tmp_path)
    extra = f'[http.tls]\ncert = "{files.cert}"\nkey = "{files.key}"\n'
    gw = await tillgate_inprocess_factory(extra=extra)
    port = gw.gateway.http.port.getHost().port
    status, body = await in_thread(https_get, port, "/healthz", client_context(files, False))
    assert (status, body["status"]) == (200, "ok")

"""Listening TCP endpoints, plain or TLS, from a listener's host, port and TLS settings."""

from __future__ import annotations

from twisted.internet import endpoints

from gateway.config import TLSConfig


def server_endpoint(reactor, host: str, port: int, tls: TLSConfig | None = None):
    if tls is None:
        return endpoints.TCP4ServerEndpoint(reactor, port, interface=host)
    from twisted.internet import ssl

    with open(tls.cert, "rb") as f:
        cert_pem = f.read()
    with open(tls.key, "rb") as f:
        key_pem = f.read()
    certificate = ssl.PrivateCertificate.loadPEM(cert_pem + b"\n" + key_pem)
    kwargs = {}
    if tls.ca:
        with open(tls.ca, "rb") as f:
            kwargs["trustRoot"] = ssl.Certificate.loadPEM(f.read())
    options = certificate.options(**({"verify": True, "caCerts": [kwargs["trustRoot"].original]}
                                     if tls.ca else {}))
    return endpoints.SSL4ServerEndpoint(reactor, port, options, interface=host)

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
    authorities = []
    if tls.ca:  # mutual TLS: a client must present a certificate signed by this CA
        with open(tls.ca, "rb") as f:
            authorities.append(ssl.Certificate.loadPEM(f.read()))
    # PrivateCertificate.options(*authorities) turns on verify + requireCertificate for them
    options = certificate.options(*authorities)
    return endpoints.SSL4ServerEndpoint(reactor, port, options, interface=host)

"""Listening TCP endpoints, plain or TLS, from a listener's host, port and TLS settings."""

from __future__ import annotations

from twisted.internet import endpoints

from gateway.config import TLSConfig


def server_tls_options(cert_pem: bytes, key_pem: bytes, ca_pem: bytes | None = None):
    """Twisted server TLS options for a PEM certificate and key (and, for mutual TLS, the CA a
    client's certificate must be signed by).

    The certificate and key go to OpenSSL as `cryptography` objects: pyOpenSSL 24.3 deprecated
    its own X509/PKey there, which is what `PrivateCertificate.options()` still passes."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from twisted.internet import ssl

    trust = None
    if ca_pem is not None:  # a trust root turns on verify + requireCertificate
        trust = ssl.trustRootFromCertificates([ssl.Certificate.loadPEM(ca_pem)])
    # Twisted's annotations still name pyOpenSSL's PKey/X509; it passes these objects through
    # to pyOpenSSL, which takes them (and warns about its own): mypy alone disagrees.
    return ssl.CertificateOptions(
        privateKey=load_pem_private_key(key_pem, password=None),  # type: ignore[arg-type]
        certificate=x509.load_pem_x509_certificate(cert_pem),  # type: ignore[arg-type]
        trustRoot=trust)


def server_endpoint(reactor, host: str, port: int, tls: TLSConfig | None = None):
    if tls is None:
        return endpoints.TCP4ServerEndpoint(reactor, port, interface=host)
    with open(tls.cert, "rb") as f:
        cert_pem = f.read()
    with open(tls.key, "rb") as f:
        key_pem = f.read()
    ca_pem = None
    if tls.ca:  # mutual TLS: a client must present a certificate signed by this CA
        with open(tls.ca, "rb") as f:
            ca_pem = f.read()
    options = server_tls_options(cert_pem, key_pem, ca_pem)
    return endpoints.SSL4ServerEndpoint(reactor, port, options, interface=host)

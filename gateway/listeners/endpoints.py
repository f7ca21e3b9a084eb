"""Listening TCP endpoints, plain or TLS, from a listener's host, port and TLS settings.

In a worker of `tillgate serve --workers N` (`share_ports()` called at its start), every
endpoint is a socket shared with the other workers (gateway/listeners/reuseport.py).
"""

from __future__ import annotations

from twisted.internet import endpoints

from gateway.config.model import TLSConfig
from gateway.listeners.reuseport import SharedPortEndpoint

# Set once, at a worker's start, before any listener starts: a process-wide fact, like the
# reactor itself, rather than a setting threaded through every listener service.
_shared_ports = False


def share_ports() -> None:
    """From now on, listen with SO_REUSEPORT (this process is one of several workers)."""
    global _shared_ports
    _shared_ports = True


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
    # Twisted's annotations still name pyOpenSSL's PKey and X509; it hands both to pyOpenSSL's
    # Context.use_privatekey/use_certificate, which take these objects since 24.3.
    return ssl.CertificateOptions(
        privateKey=load_pem_private_key(key_pem, password=None),  # type: ignore[arg-type]
        certificate=x509.load_pem_x509_certificate(cert_pem),  # type: ignore[arg-type]
        trustRoot=trust)


def server_endpoint(reactor, host: str, port: int, tls: TLSConfig | None = None,
                    backlog: int = 50):
    """`backlog`: the kernel's queue of connections not yet accepted (Twisted's default is 50;
    the kernel caps it at net.core.somaxconn)."""
    if _shared_ports:
        options = None if tls is None else _tls_options(tls)
        return SharedPortEndpoint(reactor, host, port, backlog, options)
    if tls is None:
        return endpoints.TCP4ServerEndpoint(reactor, port, backlog=backlog, interface=host)
    return endpoints.SSL4ServerEndpoint(reactor, port, _tls_options(tls), backlog=backlog,
                                        interface=host)


def _tls_options(tls: TLSConfig):
    with open(tls.cert, "rb") as f:
        cert_pem = f.read()
    with open(tls.key, "rb") as f:
        key_pem = f.read()
    ca_pem = None
    if tls.ca:  # mutual TLS: a client must present a certificate signed by this CA
        with open(tls.ca, "rb") as f:
            ca_pem = f.read()
    return server_tls_options(cert_pem, key_pem, ca_pem)

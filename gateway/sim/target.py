"""Where a simulated till connects, and how it frames: taken from a gateway config (HOST-SPEC 6).

The simulator's defaults are the config's own listeners, so `tillgate sim` against a gateway
started with the same `--config` needs no host or port options. Command-line options override
single values (`--host`, `--port`, `--device`, `--framing`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from gateway.config.model import Config, Listener

PROTOCOLS = ("iso", "tgl")
_LISTENER_PROTOCOL = {"iso": "iso8583", "tgl": "line"}
DEFAULT_TPDU = bytes.fromhex("6000010002")


class TargetError(ValueError):
    """No listener matches what was asked for; the message is one line for the operator."""


@dataclass(frozen=True)
class Target:
    """One listener as a till sees it.

    `framing` is `len2b`, `len4a` or `tpdu` for ISO 8583 over TCP and `stxetx` otherwise (TGL/1
    on any transport, ISO 8583 on a serial line). `ack` is the STX/ETX ACK/NAK handshake, always
    on for serial lines.
    """

    protocol: str  # iso | tgl
    transport: str = "tcp"  # tcp | serial
    host: str = "127.0.0.1"
    port: int = 0
    device: str | None = None
    baud: int = 9600
    framing: str = "len2b"
    bitmap: str = "ascii"
    tpdu: bytes | None = None
    ack: bool = True
    retries: int = 3
    retry_interval: float = 3.0
    max_frame: int = 4096
    tls: bool = False
    tls_ca: str | None = None  # trust anchor for the gateway's certificate (PEM)
    tls_cert: str | None = None  # client certificate, for listeners that require one
    tls_key: str | None = None
    tls_verify: bool = True

    @property
    def stxetx(self) -> bool:
        return self.framing == "stxetx"

    def describe(self) -> str:
        where = self.device if self.transport == "serial" else f"{self.host}:{self.port}"
        tls = ", TLS" if self.tls and self.transport == "tcp" else ""
        return f"{self.protocol} over {self.transport} {where} ({self.framing}{tls})"

    def with_overrides(self, **changes: object) -> Target:
        """A copy with every non-None value of `changes` applied (command-line options)."""
        given = {k: v for k, v in changes.items() if v is not None}
        if given.get("device"):
            given.setdefault("transport", "serial")
        if any(given.get(k) for k in ("tls_ca", "tls_cert")):
            given.setdefault("tls", True)
        target = dataclasses.replace(self, **given)  # type: ignore[arg-type]
        if target.transport == "serial":
            target = dataclasses.replace(target, framing="stxetx", ack=True)
        if target.framing == "tpdu" and target.tpdu is None:
            target = dataclasses.replace(target, tpdu=DEFAULT_TPDU)
        return target


def target_for_listener(listener: Listener) -> Target:
    protocol = "iso" if listener.protocol == "iso8583" else "tgl"
    stxetx = protocol == "tgl" or listener.transport == "serial"
    framing = "stxetx" if stxetx else listener.framing
    return Target(
        protocol=protocol, transport=listener.transport,
        host=_connect_host(listener.host), port=listener.port, device=listener.device,
        baud=listener.baud, framing=framing, bitmap=listener.bitmap,
        tpdu=DEFAULT_TPDU if framing == "tpdu" else None,
        ack=listener.ack or listener.transport == "serial",
        retries=listener.retries, retry_interval=listener.retry_interval,
        max_frame=listener.max_frame,
        # The listener's own certificate is the trust anchor by default: it is what a
        # self-signed deployment has, and what the config next to us names.
        tls=listener.tls is not None, tls_ca=listener.tls.cert if listener.tls else None,
    )


def _connect_host(host: str) -> str:
    # A listener bound to every interface is reached on loopback from the same machine.
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def target_from_config(config: Config, protocol: str = "iso", listener: str | None = None,
                       transport: str | None = None) -> Target:
    """The first listener of `protocol` (a TCP one first), or the one named `listener`."""
    if protocol not in PROTOCOLS:
        raise TargetError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
    kind = _LISTENER_PROTOCOL[protocol]
    candidates = [lst for lst in config.listeners if lst.protocol == kind]
    if listener is not None:
        candidates = [lst for lst in config.listeners if lst.name == listener]
        if not candidates:
            raise TargetError(f"no listener named {listener!r} in the config")
        if candidates[0].protocol != kind:
            raise TargetError(f"listener {listener!r} speaks {candidates[0].protocol}, "
                              f"not {kind}")
    if transport is not None:
        candidates = [lst for lst in candidates if lst.transport == transport]
    candidates.sort(key=lambda lst: lst.transport != "tcp")
    if not candidates:
        raise TargetError(f"the config has no {kind} listener"
                          + (f" over {transport}" if transport else ""))
    return target_for_listener(candidates[0])

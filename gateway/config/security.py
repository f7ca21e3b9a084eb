"""The `[alerts]`, `[email]`, `[imports]` and `[security]` sections of the config
(docs/security.md, docs/card-import.md).

Secrets never sit in the config text: every key, password, token and webhook secret is named
by `<what>_file = "path"` or `<what>_env = "VARIABLE"`, read when the config is loaded (a missing
file or variable is a config error), and kept only in memory. A literal `password = "..."`
is refused with a message saying what to write instead.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from gateway.config.sections import Section
from gateway.issuance.derived import MIN_SECRET_BYTES

# The closed set of scopes the admin API checks; tokens made at run time draw from it too.
SCOPES = ("health", "metrics", "cards:read", "cards:write", "cards:issue", "terminals:read",
          "terminals:write", "alerts:read", "tokens:admin", "config:read", "config:reload",
          "customers:read", "customers:write", "reports:read")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class Secret:
    """Where a secret came from (for messages) and its bytes; repr never shows the bytes."""

    source: str
    value: bytes

    def __repr__(self) -> str:
        return f"Secret({self.source})"

    def text(self) -> str:
        return self.value.decode().strip()


def read_secret(s: Section, what: str, required: bool = True) -> Secret | None:
    """`<what>_file` or `<what>_env` (exactly one); the file's or variable's content."""
    if what in s.data:
        s._seen.add(what)
        s.error(what, f"secrets are never written in the config; use {what}_file or {what}_env")
        return None
    path = s.string(f"{what}_file", None)
    env = s.string(f"{what}_env", None)
    if path and env:
        s.error(f"{what}_file", f"give {what}_file or {what}_env, not both")
        return None
    if path:
        try:
            with open(path, "rb") as f:
                return Secret(f"file {path}", f.read().strip())
        except OSError as e:
            s.error(f"{what}_file", f"cannot read {path!r}: {e.strerror}")
            return None
    if env:
        value = os.environ.get(env)
        if not value:
            s.error(f"{what}_env", f"environment variable {env} is not set")
            return None
        return Secret(f"env {env}", value.strip().encode())
    if required:
        s.error(f"{what}_file", f"is required (or {what}_env)")
    return None


@dataclass(frozen=True, slots=True)
class SMTPConfig:
    host: str = "localhost"
    port: int = 25
    tls: str = "none"  # none | starttls | ssl (implicit TLS, usually port 465)
    ca_file: str | None = None  # trust this CA instead of the system's (private relays, tests)
    username: str | None = None
    password: Secret | None = None
    sender: str = "tillgate@localhost"
    timeout: int = 10


@dataclass(frozen=True, slots=True)
class WebhookSink:
    url: str
    secret: Secret | None  # HMAC-SHA256 key of the X-Tillgate-Signature header
    timeout: int = 10
    ca_file: str | None = None  # https: trust this CA instead of the system's (private receivers)
    retry_initial_ms: int = 1000  # first back-off; doubles up to retry_max_s
    retry_max_s: int = 300


@dataclass(frozen=True, slots=True)
class EmailSink:
    to: tuple[str, ...]  # head office
    merchant: bool = True  # also the merchant's `email`, when it has one
    subject_prefix: str = "[tillgate]"
    retry_initial_ms: int = 1000
    retry_max_s: int = 300


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    log: bool = True
    webhook: WebhookSink | None = None
    email: EmailSink | None = None
    stream_max: int = 100_000  # approximate cap of the alert stream (MAXLEN ~)
    consumer: str = "tillgate"  # consumer name in each sink's group (one per gateway host)
    poll_ms: int = 1000  # how often an idle sink looks for alerts raised by other gateways

    @property
    def sinks(self) -> tuple[str, ...]:
        return tuple(n for n, on in (("log", self.log), ("webhook", self.webhook),
                                     ("email", self.email)) if on)


@dataclass(frozen=True, slots=True)
class ImportsConfig:
    """`cards import`: a batch is applied only with the one-time code e-mailed to `confirm_to`."""

    confirm_to: tuple[str, ...] = ()
    code_minutes: int = 15  # how long a code is good for
    max_tries: int = 3  # wrong codes before the pending batch is dropped
    max_rows: int = 100_000
    # `cards activate`: a batch over either raises the alert large_activation (0: never)
    large_activation_cards: int = 1000
    large_activation_total: int = 0  # minor units (points) loaded by one batch


@dataclass(frozen=True, slots=True)
class Token:
    """An admin HTTP bearer token: only its SHA-256 is kept."""

    id: str
    scopes: frozenset[str]
    sha256: bytes


@dataclass(frozen=True, slots=True)
class PinKeyConfig:
    """A PIN encryption key for one terminal or all terminals of one merchant."""

    terminal: str | None
    merchant: str | None
    algorithm: str  # tdes | aes
    key: Secret


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    tokens: tuple[Token, ...] = ()
    pin_keys: tuple[PinKeyConfig, ...] = ()
    # what numbers and PINs issued over HTTP are drawn from (gateway/issuance/derived.py); None: off
    issue_secret: Secret | None = None


def read_email(s: Section) -> SMTPConfig:
    cfg = SMTPConfig(
        host=s.string("host", "localhost"),
        port=s.integer("port", 25, minimum=1, maximum=65535),
        tls=s.string("tls", "none", choices=("none", "starttls", "ssl")),
        ca_file=s.string("ca_file", None),
        username=s.string("username", None),
        password=read_secret(s, "password", required=False),
        sender=s.string("from", "tillgate@localhost"),
        timeout=s.integer("timeout", 10, minimum=1),
    )
    if cfg.password and not cfg.username:
        s.error("username", "is required with a password")
    if cfg.ca_file and not os.path.exists(cfg.ca_file):
        s.error("ca_file", f"no such file {cfg.ca_file!r}")
    s.reject_unknown()
    return cfg


def _retry(s: Section) -> dict[str, int]:
    return {"retry_initial_ms": s.integer("retry_initial_ms", 1000, minimum=1),
            "retry_max_s": s.integer("retry_max_s", 300, minimum=1)}


def read_alerts(s: Section) -> AlertsConfig:
    webhook = email = None
    w = s.table("webhook")
    if w.data:
        webhook = WebhookSink(
            url=w.string("url", pattern=lambda v: v.startswith(("http://", "https://")),
                         what="an http:// or https:// URL"),
            secret=read_secret(w, "secret", required=False),
            timeout=w.integer("timeout", 10, minimum=1), ca_file=w.string("ca_file", None),
            **_retry(w))
        if webhook.ca_file and not os.path.exists(webhook.ca_file):
            w.error("ca_file", f"no such file {webhook.ca_file!r}")
        w.reject_unknown()
    e = s.table("email")
    if e.data:
        email = EmailSink(to=tuple(e.array("to", [])), merchant=e.boolean("merchant", True),
                          subject_prefix=e.string("subject_prefix", "[tillgate]"), **_retry(e))
        if not email.to and not email.merchant:
            e.error("to", "needs at least one address (or merchant = true)")
        e.reject_unknown()
    cfg = AlertsConfig(
        log=s.boolean("log", True), webhook=webhook, email=email,
        stream_max=s.integer("stream_max", 100_000, minimum=100),
        consumer=s.string("consumer", "tillgate"),
        poll_ms=s.integer("poll_ms", 1000, minimum=10),
    )
    s.reject_unknown()
    return cfg


def read_imports(s: Section) -> ImportsConfig:
    cfg = ImportsConfig(
        confirm_to=tuple(s.array("confirm_to", [])),
        code_minutes=s.integer("code_minutes", 15, minimum=1, maximum=24 * 60),
        max_tries=s.integer("max_tries", 3, minimum=1, maximum=10),
        max_rows=s.integer("max_rows", 100_000, minimum=1),
        large_activation_cards=s.integer("large_activation_cards", 1000, minimum=0),
        large_activation_total=s.integer("large_activation_total", 0, minimum=0),
    )
    for address in cfg.confirm_to:
        if "@" not in address:
            s.error("confirm_to", f"{address!r} is not an e-mail address")
    s.reject_unknown()
    return cfg


def read_security(s: Section, terminals: set[str], merchants: set[str]) -> SecurityConfig:
    import hashlib

    tokens: list[Token] = []
    for t in s.array_of_tables("tokens"):
        tid = t.string("id")
        scopes = t.array("scopes")
        for scope in scopes:
            if scope not in SCOPES:
                t.error("scopes", f"unknown scope {scope!r} (known: {', '.join(SCOPES)})")
        digest = t.string("sha256", None, pattern=_SHA256.match,
                          what="64 lower-case hex digits (SHA-256 of the token)")
        secret = read_secret(t, "token", required=digest is None)
        if digest and secret:
            t.error("sha256", "give sha256 or token_file/token_env, not both")
        value = bytes.fromhex(digest) if digest and _SHA256.match(digest) else (
            hashlib.sha256(secret.value).digest() if secret else b"")
        if any(tok.id == tid for tok in tokens):
            t.error("id", f"token id {tid!r} is used twice")
        tokens.append(Token(id=tid or "", scopes=frozenset(scopes), sha256=value))
        t.reject_unknown()
    keys: list[PinKeyConfig] = []
    for k in s.array_of_tables("pin_keys"):
        terminal = k.string("terminal", None)
        merchant = k.string("merchant", None)
        if (terminal is None) == (merchant is None):
            k.error("terminal", "give a terminal or a merchant (one of them)")
        elif terminal is not None and terminal not in terminals:
            k.error("terminal", f"unknown terminal {terminal!r}")
        elif merchant is not None and merchant not in merchants:
            k.error("merchant", f"unknown merchant {merchant!r}")
        algorithm = k.string("algorithm", "tdes", choices=("tdes", "aes"))
        key = read_secret(k, "key")
        if key is not None:
            problem = key_problem(key, algorithm)
            if problem:
                k.error(f"key_{key.source.split()[0]}", problem)
        if key is not None:
            keys.append(PinKeyConfig(terminal, merchant, algorithm, key))
        k.reject_unknown()
    issue_secret = read_secret(s, "issue_secret", required=False)
    if issue_secret is not None and len(issue_secret.value) < MIN_SECRET_BYTES:
        s.error(f"issue_secret_{issue_secret.source.split()[0]}",
                f"must be at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)")
    s.reject_unknown()
    return SecurityConfig(tokens=tuple(tokens), pin_keys=tuple(keys), issue_secret=issue_secret)


def key_problem(key: Secret, algorithm: str) -> str | None:
    """Keys are hex text: TDES 16 or 24 bytes (2- or 3-key), AES 16, 24 or 32 bytes."""
    text = key.text()
    sizes = (16, 24) if algorithm == "tdes" else (16, 24, 32)
    if not _HEX.match(text) or len(text) // 2 not in sizes or len(text) % 2:
        lengths = " or ".join(str(2 * n) for n in sizes)
        return f"{key.source} must hold {lengths} hex digits for {algorithm}"
    return None

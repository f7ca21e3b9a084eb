"""Where alerts go. Each sink's `deliver(alert, alert_id)` returns when the alert was delivered
and raises `DeliveryError` (or any error) when it was not; the service then retries with back-off.

- log:     a WARNING line on the gateway's log.
- webhook: HTTP POST of the alert as JSON, `X-Tillgate-Signature: sha256=<hex HMAC-SHA256 of the
           body>` and `X-Tillgate-Alert-Id: <stream id>` (a receiver can drop a repeat); any 2xx
           is delivered. Twisted's Agent, so https checks the server's certificate.
- email:   one message to head office and the merchant's address, over SMTP with STARTTLS or
           implicit TLS and AUTH as configured. smtplib blocks, so it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import logging
from email.message import EmailMessage

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.internet.ssl import Certificate
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, FileBodyProducer
from twisted.web.http_headers import Headers

from gateway.config.model import Merchant
from gateway.config.security import EmailSink as EmailSinkConfig
from gateway.config.security import SMTPConfig, WebhookSink
from gateway.issuance.mailer import MailError, new_message, send_email
from gateway.security.alerts.record import Alert

log = logging.getLogger("tillgate.alerts")


class DeliveryError(RuntimeError):
    """The sink did not take the alert; the service retries it later."""


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str) -> bool:
    """For receivers (and tests): constant-time comparison of the signature header."""
    return hmac.compare_digest(signature(secret, body), header)


class LogSink:
    name = "log"

    async def deliver(self, alert: Alert, alert_id: str) -> None:
        log.warning("ALERT %s: %s [merchant %s terminal %s card %s]", alert_id, alert.message,
                    alert.merchant, alert.terminal, alert.card or "-")


class HTTPWebhookSink:
    name = "webhook"

    def __init__(self, reactor, config: WebhookSink):
        self.reactor = reactor
        self.config = config
        kwargs = {}
        if config.ca_file:  # a private receiver: its CA, still with host name checks
            with open(config.ca_file, "rb") as f:
                root = Certificate.loadPEM(f.read())
            kwargs["contextFactory"] = BrowserLikePolicyForHTTPS(trustRoot=root)
        self.agent = Agent(reactor, connectTimeout=config.timeout, **kwargs)

    def body(self, alert: Alert, alert_id: str) -> bytes:
        payload = json.loads(alert.to_json())
        payload.update(id=alert_id, message=alert.message, time_text=alert.time_text)
        return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()

    async def deliver(self, alert: Alert, alert_id: str) -> None:
        body = self.body(alert, alert_id)
        headers = Headers({b"content-type": [b"application/json"],
                           b"user-agent": [b"tillgate-alerts"],
                           b"x-tillgate-alert-id": [alert_id.encode()]})
        if self.config.secret is not None:
            headers.addRawHeader(b"x-tillgate-signature",
                                 signature(self.config.secret.value, body).encode())
        d: Deferred = self.agent.request(b"POST", self.config.url.encode(), headers,
                                         FileBodyProducer(io.BytesIO(body)))
        d.addCallback(self._read)
        d.addTimeout(self.config.timeout, self.reactor)
        code = await d.asFuture(asyncio.get_running_loop())
        if not 200 <= code < 300:
            raise DeliveryError(f"webhook answered HTTP {code}")

    @staticmethod
    def _read(response) -> Deferred:
        done: Deferred = Deferred()
        response.deliverBody(_Discard(done))  # read it all, so the connection is released
        done.addCallback(lambda _: response.code)
        return done


class _Discard(Protocol):
    """Reads a response body to its end and drops it (a receiver's body means nothing)."""

    def __init__(self, done: Deferred):
        self.done = done

    def dataReceived(self, data: bytes) -> None:
        pass

    def connectionLost(self, reason=None) -> None:
        self.done.callback(None)


class SMTPEmailSink:
    name = "email"

    def __init__(self, smtp: SMTPConfig, config: EmailSinkConfig,
                 merchants: dict[str, Merchant]):
        self.smtp = smtp
        self.config = config
        self.merchants = merchants

    def recipients(self, alert: Alert) -> list[str]:
        to = list(self.config.to)
        merchant = self.merchants.get(alert.merchant)
        if self.config.merchant and merchant is not None and merchant.email:
            to.append(merchant.email)
        return to

    def message(self, alert: Alert, alert_id: str) -> EmailMessage:
        lines = [alert.message, "", f"time: {alert.time_text}", f"merchant: {alert.merchant}",
                 f"terminal: {alert.terminal}", f"card: {alert.card or '-'}", f"id: {alert_id}"]
        msg = new_message(self.smtp, self.recipients(alert),
                          f"{self.config.subject_prefix} {alert.rule}: {alert.scope} "
                          f"{alert.value}", "\n".join(lines) + "\n")
        msg["X-Tillgate-Alert-Id"] = alert_id
        return msg

    async def deliver(self, alert: Alert, alert_id: str) -> None:
        if not self.recipients(alert):
            return  # nobody to tell (no head office, merchant without an address)
        try:
            await asyncio.to_thread(send_email, self.smtp, self.message(alert, alert_id))
        except MailError as e:
            raise DeliveryError(str(e)) from None

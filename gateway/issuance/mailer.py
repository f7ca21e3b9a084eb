"""Sending one e-mail over SMTP as the `[email]` section says: STARTTLS or implicit TLS, AUTH.

Shared by the alert e-mail sink and the one-time codes of `cards import`. smtplib blocks:
callers on the reactor run `send_email` in a worker thread (asyncio.to_thread).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from gateway.config.security import SMTPConfig


class MailError(RuntimeError):
    """The SMTP server did not take the message (one line: server and reason)."""


def new_message(smtp: SMTPConfig, to: list[str], subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(to)
    msg.set_content(body)
    return msg


def send_email(smtp: SMTPConfig, msg: EmailMessage) -> None:
    try:
        if smtp.tls == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout,
                                                    context=_context(smtp))
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        with client:
            if smtp.tls == "starttls":
                client.starttls(context=_context(smtp))
            if smtp.username and smtp.password is not None:
                client.login(smtp.username, smtp.password.text())
            client.send_message(msg)
    except (OSError, smtplib.SMTPException) as e:
        raise MailError(f"SMTP {smtp.host}:{smtp.port}: {e}") from None


def _context(smtp: SMTPConfig) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=smtp.ca_file)

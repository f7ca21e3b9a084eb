"""Sending one e-mail as the `[email]` section says: over SMTP (STARTTLS or implicit TLS, AUTH),
or, with no `[email]` section at all (the embedded default), into a maildir under the data
directory (`<data_dir>/mail/new/`, one file per message), logged with its path, so that
`make run` shows a working login code and batch code with no mail server anywhere.

Shared by the alert e-mail sink, the one-time codes of `cards import` and the portal's login
codes: one mail path. smtplib and the maildir block: callers on the reactor run `send_email` in
a worker thread (asyncio.to_thread).
"""

from __future__ import annotations

import logging
import mailbox
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path

from gateway.config.security import SMTPConfig

log = logging.getLogger(__name__)


class MailError(RuntimeError):
    """The SMTP server did not take the message (one line: server and reason).

    `permanent`: the server refused it for good (a 5xx reply to the sender, every recipient or
    the data), so sending it again as it is cannot work; anything else (no connection, a
    timeout, a 4xx) may work later (the e-card queue retries those, gateway/issuance/ecardqueue.py).
    """

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def new_message(smtp: SMTPConfig, to: list[str], subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(to)
    msg.set_content(body)
    return msg


def send_email(smtp: SMTPConfig, msg: EmailMessage) -> None:
    if smtp.maildir is not None:
        _deliver_to_maildir(Path(smtp.maildir), msg)
        return
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
        raise MailError(f"SMTP {smtp.host}:{smtp.port}: {e}", permanent=_permanent(e)) from None


def _permanent(e: Exception) -> bool:
    if isinstance(e, smtplib.SMTPRecipientsRefused):  # per recipient: (code, reason)
        return bool(e.recipients) and all(code >= 500 for code, _ in e.recipients.values())
    return isinstance(e, smtplib.SMTPResponseException) and e.smtp_code >= 500


def _context(smtp: SMTPConfig) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=smtp.ca_file)


def _deliver_to_maildir(path: Path, msg: EmailMessage) -> None:
    """Write the message into the maildir (created on first use; a new file appears whole, as
    maildir's tmp/ then new/ rename guarantees). The log names the file and the subject, never
    the body, which may hold a code."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # Maildir makes only the last level
        box = mailbox.Maildir(path, create=True)
        key = box.add(msg)
    except OSError as e:
        raise MailError(f"maildir {path}: {e}") from None
    log.info("no SMTP relay configured ([email]): mail %r to %s written to %s",
             msg["Subject"], msg["To"], path / "new" / key)

"""The e-mail of an e-card (docs/ecards.md): a plain-text part and an HTML part, both from
Jinja2 templates (gateway/issuance/templates/, HTML autoescaped: a recipient's name or a
message is text, never markup), with the card's QR code and Code 128 barcode as PNG images
inside the message (multipart/related, referred to by Content-ID: mail clients show inline
PNGs, not SVG or data: URLs).

The QR code and the barcode carry the card number alone, what a till's scanner reads
(docs/card-data.md). The number and the PIN go into this message and nowhere else: never into a
log line (the mailer logs subject and recipient only).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import cast

import barcode
import segno
from barcode.writer import ImageWriter
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from gateway.config.security import SMTPConfig
from gateway.ledger.amounts import format_amount

_templates = Environment(loader=PackageLoader("gateway.issuance", "templates"),
                         autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                         keep_trailing_newline=True)


@dataclass(frozen=True, slots=True)
class EcardLetter:
    """What one e-card's e-mail says."""

    order_id: str
    recipient_name: str
    recipient_email: str
    sender_name: str
    message: str
    program: str  # the program's id, shown as the card's name
    loyalty: bool
    amount: int  # minor units (points for loyalty)
    card: str
    pin: str  # "" for a program without PINs
    member_url: str


def qr_png(card: str) -> bytes:
    out = io.BytesIO()
    segno.make_qr(card, error="m").save(out, kind="png", scale=6, border=4)
    return out.getvalue()


def barcode_png(card: str) -> bytes:
    """Code 128 (every character a till's scanner may meet in a number: digits and letters),
    with the number printed under the bars for a cashier to type."""
    out = io.BytesIO()
    barcode.Code128(card, writer=ImageWriter()).write(
        out, options={"module_width": 0.3, "module_height": 12.0, "quiet_zone": 6.0,
                      "font_size": 10, "text_distance": 4.0, "dpi": 200})
    return out.getvalue()


def compose(smtp: SMTPConfig, subject: str, letter: EcardLetter, sends: int) -> EmailMessage:
    """The message. Its Message-ID is the order's and the delivery's (`sends`): a try made
    again after a crash between the server's acceptance and the "sent" mark carries the same
    one, so a mail store that drops duplicates by Message-ID drops it (docs/ecards.md)."""
    qr_cid, bar_cid = make_msgid("qr"), make_msgid("barcode")
    amount = str(letter.amount) + " points" if letter.loyalty else format_amount(letter.amount)
    values = {"l": letter, "amount": amount, "qr_cid": qr_cid[1:-1], "barcode_cid": bar_cid[1:-1]}
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = smtp.sender
    msg["To"] = formataddr((letter.recipient_name, letter.recipient_email))
    msg["Message-ID"] = f"<ecard-{letter.order_id}-{sends}@tillgate>"
    msg.set_content(_templates.get_template("ecard.txt").render(values))
    msg.add_alternative(_templates.get_template("ecard.html").render(values), subtype="html")
    html = cast(EmailMessage, list(msg.iter_parts())[1])  # the HTML alternative
    html.add_related(qr_png(letter.card), "image", "png", cid=qr_cid,
                     filename="card-qr.png", disposition="inline")
    html.add_related(barcode_png(letter.card), "image", "png", cid=bar_cid,
                     filename="card-barcode.png", disposition="inline")
    return msg
